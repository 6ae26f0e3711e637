//! Gives the tray process's memory back once the work that needed it is over, as `openclaw`
//! does after its start-up (`openclaw_reclaim`): glibc's free heap pages, and the clean
//! read-only pages of the executable and of the libraries (GTK, WebKit's set-up, SQLite's open,
//! the node's probes) that ran once. What runs again faults back in from the page cache.
//!
//! Twice: a few seconds after start (the gateway, the node's link and the tray have settled),
//! and a moment after the dashboard window's process has exited (what the tray did to show it).

use std::time::Duration;

/// After start: past the node's link (the desktop probes take a second or two).
pub const AFTER_START: Duration = Duration::from_secs(5);

/// After the window's process exited.
pub const AFTER_WINDOW: Duration = Duration::from_secs(1);

/// Waits `delay`, then releases on a blocking thread (reading `/proc/self/smaps` walks every
/// mapping: about a millisecond or two).
pub async fn release_after(delay: Duration, why: &'static str) {
    tokio::time::sleep(delay).await;
    let released = tokio::task::spawn_blocking(openclaw_reclaim::release_unused_memory).await;
    if let Ok(released) = released {
        tracing::debug!(%released, why, "memory given back");
    }
}
