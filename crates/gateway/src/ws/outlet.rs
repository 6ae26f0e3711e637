//! WebChat's way out: a message the assistant starts for a WebChat session goes to every open
//! socket that chatted on that session key.

use crate::conversation::Outlet;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Messages in flight to sockets at once; a socket that falls this far behind misses some
/// (they are in the session's history all the same).
const BACKLOG: usize = 16;

/// One message for the sockets of a session.
#[derive(Debug)]
pub(crate) struct Pushed {
    pub(crate) session: String,
    pub(crate) text: String,
}

#[derive(Debug)]
pub(crate) struct WebChatOutlet {
    tx: broadcast::Sender<Arc<Pushed>>,
    /// Open sockets per session key.
    watching: Mutex<HashMap<String, usize>>,
}

impl WebChatOutlet {
    pub(crate) fn new() -> Self {
        Self {
            tx: broadcast::channel(BACKLOG).0,
            watching: Mutex::new(HashMap::new()),
        }
    }

    fn watching(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.watching.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A socket starts receiving the session's pushed messages; it stops when the guard goes.
    pub(crate) fn watch(self: &Arc<Self>, session: &str) -> Watch {
        *self.watching().entry(session.to_owned()).or_default() += 1;
        Watch {
            outlet: self.clone(),
            session: session.to_owned(),
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Pushed>> {
        self.tx.subscribe()
    }
}

impl Outlet for WebChatOutlet {
    fn deliver<'a>(&'a self, peer: &'a str, text: &'a str) -> BoxFuture<'a, Result<usize, String>> {
        async move {
            let sockets = self.watching().get(peer).copied().unwrap_or(0);
            if sockets > 0 {
                let _ = self.tx.send(Arc::new(Pushed {
                    session: peer.to_owned(),
                    text: text.to_owned(),
                }));
            }
            Ok(sockets)
        }
        .boxed()
    }
}

/// A socket's interest in one session.
#[derive(Debug)]
pub(crate) struct Watch {
    outlet: Arc<WebChatOutlet>,
    pub(crate) session: String,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut w = self.outlet.watching();
        if let Some(n) = w.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                w.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_watched_sessions_get_pushed_messages() {
        let outlet = Arc::new(WebChatOutlet::new());
        assert_eq!(outlet.deliver("a", "hi").await, Ok(0), "nobody watches a");
        let mut rx = outlet.subscribe();
        let watch = outlet.watch("a");
        let twice = outlet.watch("a");
        assert_eq!(outlet.deliver("a", "hi").await, Ok(2));
        let pushed = rx.recv().await.unwrap();
        assert_eq!((pushed.session.as_str(), pushed.text.as_str()), ("a", "hi"));
        drop((watch, twice));
        assert_eq!(outlet.deliver("a", "again").await, Ok(0));
        assert!(outlet.watching().is_empty(), "no counts left behind");
    }
}
