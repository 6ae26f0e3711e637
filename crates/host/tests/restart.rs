//! The host started, stopped and started again in one process, the way the tray app restarts
//! its gateway: nothing of an old gateway may be left (tasks, threads, file descriptors, the
//! port, the data dir's lock), and memory stays bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_host::{HostOptions, LoadError};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const ROUNDS: usize = 20;

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /health` on a fresh connection, from a blocking thread: the status code.
fn health(addr: SocketAddr) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn options(dir: &std::path::Path, config: &std::path::Path, port: u16) -> HostOptions {
    HostOptions {
        config_file: Some(config.to_owned()),
        host: Some("127.0.0.1".into()),
        port: Some(port),
        install_logging: false,
        ..HostOptions::new(dir)
    }
}

#[test]
fn the_host_starts_and_stops_twenty_times_in_one_process_leaving_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("config.yaml");
    // A short drain, so the rounds that leave a stuck client are cut short quickly.
    std::fs::write(&config, "gateway:\n  drain_timeout_seconds: 1\n").unwrap();
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .thread_keep_alive(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut baseline: Option<(usize, usize, u64)> = None;
    for round in 0..ROUNDS {
        runtime.block_on(async {
            let host = openclaw_host::start(options(&data, &config, port))
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            let gateway = host.gateway().clone();
            assert_eq!(gateway.local_addr(), addr);
            // The data dir is held while it runs.
            let second = openclaw_host::start(options(&data, &config, free_port()));
            assert!(
                matches!(second, Err(openclaw_host::HostError::Busy { .. })),
                "a second host on the same data dir must be refused: {second:?}"
            );
            let code = tokio::task::spawn_blocking(move || health(addr))
                .await
                .unwrap();
            assert_eq!(code, 200, "round {round}: /health");
            assert!(gateway.running_tasks() > 0);
            // Every fourth round a client is stuck half-way through a request head: the
            // drain ends it when its time is up.
            let stuck = (round % 4 == 3).then(|| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    .unwrap();
                s
            });
            // Let that connection be accepted before stopping.
            tokio::time::sleep(Duration::from_millis(20)).await;
            host.shutdown().await;
            drop(stuck);
            assert_eq!(gateway.running_tasks(), 0, "round {round}: tasks left");
            assert_eq!(
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks(),
                0,
                "round {round}: runtime tasks left"
            );
            // The port is free again at once.
            drop(
                std::net::TcpListener::bind(addr)
                    .unwrap_or_else(|e| panic!("round {round}: port still taken: {e}")),
            );
        });
        // Idle blocking threads go after their keep-alive.
        std::thread::sleep(Duration::from_millis(150));
        let now = (fds(), threads(), rss_kib());
        match baseline {
            None => baseline = Some(now),
            Some((fd0, th0, rss0)) => {
                assert!(
                    now.0 <= fd0,
                    "round {round}: {} fds, {fd0} after round 0",
                    now.0
                );
                assert!(
                    now.1 <= th0 + 1,
                    "round {round}: {} threads, {th0} after round 0",
                    now.1
                );
                assert!(
                    now.2 <= rss0 + 8 * 1024,
                    "round {round}: RSS {} KiB, {rss0} KiB after round 0",
                    now.2
                );
            }
        }
    }
}

#[test]
fn a_broken_config_is_a_config_error_and_leaves_the_data_dir_free() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "gateway:\n  port: [nope\n").unwrap();
    let data = dir.path().join("data");
    let err = openclaw_host::start(options(&data, &config, free_port())).unwrap_err();
    assert!(err.is_config(), "{err}");
    assert!(matches!(
        err,
        openclaw_host::HostError::Config(LoadError::Invalid(_))
    ));
    // Nothing kept the lock.
    assert!(
        openclaw_host::paths::lock_data_dir(&data)
            .unwrap()
            .is_some()
    );
}
