//! `system.notify` through the freedesktop Notifications service on the session D-Bus
//! (notify-rust): dunst, GNOME Shell, KDE Plasma, mako …

use crate::capabilities::{Backend, CapabilityError, Notifier};
use openclaw_protocol::node::NotifyParams;
use std::sync::Arc;

struct DbusNotifier;

impl Notifier for DbusNotifier {
    fn notify(&self, p: &NotifyParams) -> Result<(), CapabilityError> {
        let urgency = match p.urgency.as_deref() {
            Some("low") => notify_rust::Urgency::Low,
            Some("critical") => notify_rust::Urgency::Critical,
            _ => notify_rust::Urgency::Normal,
        };
        notify_rust::Notification::new()
            .appname("OpenClaw")
            .summary(&p.title)
            .body(&p.body)
            .urgency(urgency)
            .show()
            .map(|_| ())
            .map_err(|e| {
                CapabilityError::Failed(format!("the notification service refused it: {e}"))
            })
    }
}

/// Ready when a notification service answers on the session bus.
pub fn probe() -> Backend<dyn Notifier> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return Backend::Missing(
            "no session D-Bus (DBUS_SESSION_BUS_ADDRESS is not set): run the node inside a desktop session".into(),
        );
    }
    match notify_rust::get_server_information() {
        Ok(info) => {
            let _ = info;
            Backend::Ready(Arc::new(DbusNotifier))
        }
        Err(e) => Backend::Missing(format!(
            "no notification service on the session D-Bus ({e}): start one (dunst, your desktop's)"
        )),
    }
}
