//! Every task a gateway starts goes through [`Tasks`], so that stopping the gateway can wait
//! for all of them: an embedder (the tray app, a test) stops and starts gateways in one
//! process, and nothing of an old one may keep running, holding a socket, a file or the store.

use std::future::Future;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The gateway's tasks: tracked, and cut short together once the drain time is over.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
    /// Cancelled when the drain time is over: every task still running is dropped at its next
    /// await (a connection mid-reply, a node reconnect waiting out its backoff).
    cut: CancellationToken,
}

impl Tasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` until it ends or the gateway's drain time is over.
    pub fn spawn<F>(&self, task: F) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cut = self.cut.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                biased;
                () = cut.cancelled() => {}
                () = task => {}
            }
        })
    }

    /// Runs blocking work (SQLite, file writes) on the runtime's blocking pool, tracked. It
    /// cannot be cut short: each piece is short, and stopping waits for it.
    pub fn spawn_blocking<F, T>(&self, work: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.tracker.spawn_blocking(work)
    }

    /// `task`, counted as one of the gateway's while it runs, wherever it is spawned (a
    /// WebSocket session runs in the task axum's upgrade starts).
    pub fn guard<F>(&self, task: F) -> impl Future<Output = ()> + Send + use<F>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let token = self.tracker.token();
        let cut = self.cut.clone();
        async move {
            let _token = token;
            tokio::select! {
                biased;
                () = cut.cancelled() => {}
                () = task => {}
            }
        }
    }

    /// The tracker itself, for a library that spawns its own tasks (a node link's reader and
    /// writer): they are waited for, though not cut short (they end when their link closes).
    pub fn tracker(&self) -> tokio_util::task::TaskTracker {
        self.tracker.clone()
    }

    /// Tasks running now.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Drops every task still running at its next await.
    pub(crate) fn cut_short(&self) {
        self.cut.cancel();
    }

    /// Completes when every task has ended. New tasks may still be spawned meanwhile (a
    /// request finishing its reply); they are waited for too.
    pub(crate) async fn ended(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn ended_waits_for_tasks_and_cut_short_ends_stuck_ones() {
        let tasks = Tasks::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _ = rx.await;
        });
        tasks.spawn(std::future::pending());
        let guarded = tasks.guard(std::future::pending());
        let outside = tokio::spawn(guarded);
        assert_eq!(tasks.len(), 3);
        // Not ended while they run.
        let early = tokio::time::timeout(Duration::from_millis(50), tasks.ended()).await;
        assert!(early.is_err(), "ended() must wait for running tasks");
        tx.send(()).unwrap();
        tasks.cut_short();
        tokio::time::timeout(Duration::from_secs(5), tasks.ended())
            .await
            .expect("every task ends once cut short");
        assert!(tasks.is_empty());
        outside.await.unwrap();
    }

    #[tokio::test]
    async fn blocking_work_is_waited_for() {
        let tasks = Tasks::new();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        tasks.spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(50));
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        tasks.ended().await;
        assert!(done.load(std::sync::atomic::Ordering::SeqCst));
    }
}
