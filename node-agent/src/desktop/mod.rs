//! Desktop backends, each behind a cargo feature and each probed at start: a backend that does
//! not work on this host is reported missing with the reason, not advertised.

#[cfg(feature = "notify")]
mod notify;

use crate::capabilities::{Backend, Capabilities};

/// Detects what this host can do.
pub fn detect() -> Capabilities {
    let mut caps = Capabilities::none("this build of openclaw-node has no backend for it yet");
    caps.camera = Backend::Missing("no camera backend in this build".into());
    #[cfg(feature = "notify")]
    {
        caps.notifier = notify::probe();
    }
    caps
}
