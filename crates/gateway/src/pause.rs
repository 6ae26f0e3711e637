//! The owner's pause switch (the tray app's "Pause assistant", `POST /api/pause`): while it is
//! on, the gateway answers no messages on any way in and calls no device node, and health says
//! `paused`. It lives in memory only: a restarted gateway answers again, as a restarted chat
//! app is not left on "do not disturb" by a crash.
//!
//! Its own module because two others read it and must not read each other for it: the
//! conversation service (refuses turns) and the node router (refuses calls).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared by every part that stops while paused; clones see the same switch.
#[derive(Debug, Clone, Default)]
pub struct Pause(Arc<AtomicBool>);

impl Pause {
    pub fn is_paused(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets the switch; `true` when that changed it.
    pub fn set(&self, paused: bool) -> bool {
        self.0.swap(paused, Ordering::Relaxed) != paused
    }
}

/// What a refused caller is told, everywhere the pause refuses.
pub const PAUSED_MESSAGE: &str = "the assistant is paused: resume it from the app's menu or with POST /api/pause {\"paused\": false}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_switch_and_set_says_whether_it_changed() {
        let pause = Pause::default();
        let seen_elsewhere = pause.clone();
        assert!(!seen_elsewhere.is_paused());
        assert!(pause.set(true));
        assert!(seen_elsewhere.is_paused());
        assert!(!pause.set(true), "already paused");
        assert!(seen_elsewhere.set(false));
        assert!(!pause.is_paused());
    }
}
