//! The HTTP/1.1 accept loop. `axum::serve` gives hyper no timer, so hyper's header-read
//! timeout never fires (one slow client per socket holds it forever: slowloris), and it
//! accepts without bound. This loop sets both:
//! - a deadline for each request head (hyper starts it again while a kept-alive connection
//!   waits for its next request, so it is also the idle time-out between requests);
//! - a cap on open connections: past it, the loop stops accepting until one closes (the
//!   kernel's backlog holds the rest), so a flood costs sockets, not memory.
//!
//! A WebSocket leaves this count once upgraded (hyper hands its socket over); the WebSocket
//! has its own budgets (`ws`).

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// A client must send a whole request head within this time (and a kept-alive connection
/// closes after this long without one).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head (and read buffer) per connection.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Serves `app` until `stop` turns true, then lets open connections finish (hyper's graceful
/// shutdown: answers in flight complete, idle connections close). Returns when every
/// connection has ended; the caller bounds that wait with its drain budget.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    max_connections: usize,
    mut stop: watch::Receiver<bool>,
    tasks: crate::tasks::Tasks,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    // Each connection task holds a receiver; when all are dropped, the drain is done.
    let (open_tx, open_rx) = watch::channel(());
    loop {
        let permit = tokio::select! {
            () = crate::stopped(&mut stop) => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (tcp, remote) = tokio::select! {
            () = crate::stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: wait a moment instead of spinning on the error.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Streamed replies are many small frames: send each at once, not after Nagle's delay.
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let mut stop = stop.clone();
        let open = open_rx.clone();
        tasks.spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                app.clone().oneshot(req.map(Body::new))
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES);
            let conn = builder
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    result = conn.as_mut() => {
                        if let Err(e) = result {
                            tracing::debug!(%remote, error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    () = crate::stopped(&mut stop), if !shutting_down => {
                        shutting_down = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(permit);
            drop(open);
        });
    }
    // Stop listening now: new clients are refused at once instead of waiting in the
    // backlog of a gateway that will not accept them, and the port is free for the next one.
    drop(listener);
    drop(open_rx);
    // Wait for every connection task (each holds a receiver) to finish.
    open_tx.closed().await;
}

/// Connections beyond the WebSocket clients' (whose upgrade requests pass through here), for
/// health checks, scrapes and API calls.
pub const EXTRA_HTTP_CONNECTIONS: usize = 64;

/// The connection cap for a gateway with `max_connections` WebSocket clients.
pub fn connection_cap(max_connections: u32) -> usize {
    max_connections as usize + crate::ws::PRE_AUTH_BUDGET as usize + EXTRA_HTTP_CONNECTIONS
}
