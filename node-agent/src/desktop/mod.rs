//! Desktop backends, each behind a cargo feature and each probed at start: a backend that does
//! not work on this host is reported missing with the reason, not advertised.

#[cfg(feature = "camera")]
mod camera;
#[cfg(feature = "notify")]
mod notify;
#[cfg(feature = "screen")]
mod screen;
#[cfg(feature = "speech")]
mod speech;

use crate::capabilities::Capabilities;

/// Detects what this host can do.
pub fn detect() -> Capabilities {
    #[allow(unused_mut)]
    let mut caps = Capabilities::none("this build of openclaw-node was compiled without it");
    #[cfg(feature = "screen")]
    {
        caps.screen = screen::probe();
    }
    #[cfg(feature = "camera")]
    {
        caps.camera = camera::probe();
    }
    #[cfg(feature = "notify")]
    {
        caps.notifier = notify::probe();
    }
    #[cfg(feature = "speech")]
    {
        caps.speech = speech::probe();
    }
    caps
}
