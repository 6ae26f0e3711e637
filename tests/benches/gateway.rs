//! Whole-process benchmark of the `openclaw` gateway (release build):
//! - exec → first `GET /health` 200, on a fresh data dir (first start: creates the database) and
//!   on an existing one (warm start);
//! - resident memory and threads after 20 s idle: past the gateway's one-time release of its
//!   start-up memory (at 5 s) and its blocking threads' 10 s keep-alive;
//! - `/health` latency on one keep-alive connection and throughput with several;
//! - side by side, when it is there, the leanest peer (NullClaw, `../shared/peers/nullclaw`, or
//!   `BENCH_PEER`): its start-ups interleaved with ours round by round, its idle RSS over the
//!   same wait, and the ratios.
//!
//! Run: `cargo build --release -p openclaw-server && cargo bench -p openclaw-tests --bench gateway`
//! Knobs: BENCH_RUNS (start-ups per kind, default 15), BENCH_IDLE_SECS (default 20),
//! BENCH_LOAD_SECS (per load phase, default 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_tests::{base_command, env_num, free_port, rss_kib, thread_count};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn spawn(data_dir: &std::path::Path, port: u16) -> Child {
    base_command(data_dir, None)
        .args(["gateway", "run"])
        .env("OPENCLAW_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openclaw")
}

/// Polls with a fresh connection until `/health` answers 200; returns time since `start`.
fn time_to_health(addr: SocketAddr, start: Instant, child: &mut Child) -> Duration {
    loop {
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_nodelay(true).ok();
            if s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .is_ok()
            {
                let mut buf = Vec::new();
                if s.read_to_end(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.1 200") {
                    return start.elapsed();
                }
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "gateway exited");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no answer in 30 s"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn stop(mut child: Child) {
    openclaw_tests::signal(child.id(), "TERM").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.wait().ok();
}

/// The peer to compare with: `BENCH_PEER`, else NullClaw beside the repository.
fn peer() -> Option<std::path::PathBuf> {
    let path = match std::env::var_os("BENCH_PEER") {
        Some(p) => std::path::PathBuf::from(p),
        None => openclaw_tests::repo_root().join("../shared/peers/nullclaw"),
    };
    path.is_file().then_some(path)
}

/// A home for NullClaw holding its config (it refuses to start without a default model).
fn peer_home(peer: &std::path::Path) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".nullclaw")).unwrap();
    let config = peer.with_file_name("nullclaw.config.json");
    std::fs::copy(&config, home.path().join(".nullclaw/config.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", config.display()));
    home
}

fn spawn_peer(peer: &std::path::Path, home: &std::path::Path, port: u16) -> Child {
    std::process::Command::new(peer)
        .args(["gateway", "--port", &port.to_string()])
        .env("HOME", home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the peer")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    percentile(&v, 0.5)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name:<34} n={:<3} min {:>7.2} ms  median {:>7.2} ms  p90 {:>7.2} ms  max {:>7.2} ms",
        v.len(),
        ms(v[0]),
        ms(percentile(&v, 0.5)),
        ms(percentile(&v, 0.9)),
        ms(v[v.len() - 1])
    );
}

/// A keep-alive HTTP/1.1 client for `GET /health`.
struct KeepAlive {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl KeepAlive {
    fn connect(addr: SocketAddr) -> Self {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Self {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    fn get(&mut self, req: &[u8]) -> u16 {
        self.writer.write_all(req).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let mut len = 0usize;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line
                .to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(str::trim)
                .map(str::to_owned)
            {
                len = v.parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).unwrap();
        status
    }
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

fn main() {
    // `cargo bench` passes --bench; no filtering here.
    let runs = env_num("BENCH_RUNS", 15) as usize;
    let idle = env_num("BENCH_IDLE_SECS", 20);
    let load_secs = env_num("BENCH_LOAD_SECS", 3);
    let bin = openclaw_tests::openclaw_bin();
    println!(
        "binary: {} ({} bytes)",
        bin.display(),
        std::fs::metadata(&bin).unwrap().len()
    );
    symbol_order_coverage(&bin);

    // Start-up: first start (no database yet) and warm start (existing database), interleaved
    // round by round with the peer's (a fresh home, then the same home again).
    let peer = peer();
    let mut first = Vec::new();
    let mut warm = Vec::new();
    let mut peer_first = Vec::new();
    let mut peer_warm = Vec::new();
    for _ in 0..runs {
        let dir = tempfile::tempdir().unwrap();
        for kind in [&mut first, &mut warm] {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let start = Instant::now();
            let mut child = spawn(dir.path(), port);
            kind.push(time_to_health(addr, start, &mut child));
            stop(child);
        }
        if let Some(peer) = &peer {
            let home = peer_home(peer);
            for kind in [&mut peer_first, &mut peer_warm] {
                let port = free_port();
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let start = Instant::now();
                let mut child = spawn_peer(peer, home.path(), port);
                kind.push(time_to_health(addr, start, &mut child));
                stop(child);
            }
        }
    }
    let (first_median, warm_median) = (median(first.clone()), median(warm.clone()));
    summary("ready, first start (creates db)", first);
    summary("ready, warm start (existing db)", warm);
    if let Some(peer) = &peer {
        println!("peer: {}", peer.display());
        let (pf, pw) = (median(peer_first.clone()), median(peer_warm.clone()));
        summary("peer ready, first start", peer_first);
        summary("peer ready, warm start", peer_warm);
        println!(
            "start-up, openclaw / peer (medians): first {:.2} / {:.2} ms = {:.2}x, warm {:.2} / {:.2} ms = {:.2}x",
            ms(first_median),
            ms(pf),
            ms(first_median) / ms(pf),
            ms(warm_median),
            ms(pw),
            ms(warm_median) / ms(pw)
        );
    }

    // Idle footprint of a restart (the database exists, as at every start but a deployment's
    // first), then load on the same process. A first start also reads the empty-database image
    // out of the binary (80 KiB of .rodata): its RSS is shown next to the restart's.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    let mut child = spawn(dir.path(), port);
    time_to_health(addr, start, &mut child);
    println!(
        "first start, after first /health: RSS {} KiB",
        rss_kib(child.id()).unwrap()
    );
    stop(child);
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    let mut child = spawn(dir.path(), port);
    time_to_health(addr, start, &mut child);
    let pid = child.id();
    println!(
        "restart, after first /health: RSS {} KiB, {} threads",
        rss_kib(pid).unwrap(),
        thread_count(pid).unwrap()
    );
    // The peer idles over the same wait, on its second start (its home exists).
    let peer_idle = peer.as_ref().map(|peer| {
        let home = peer_home(peer);
        let start_peer = |home: &std::path::Path| {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let start = Instant::now();
            let mut child = spawn_peer(peer, home, port);
            time_to_health(addr, start, &mut child);
            child
        };
        stop(start_peer(home.path()));
        (start_peer(home.path()), home)
    });
    std::thread::sleep(Duration::from_secs(idle));
    let idle_rss = rss_kib(pid).unwrap();
    println!(
        "idle {idle} s: RSS {idle_rss} KiB ({:.2} MB), {} threads",
        idle_rss as f64 / 1024.0,
        thread_count(pid).unwrap()
    );
    if let Some((child, _home)) = peer_idle {
        let peer_rss = rss_kib(child.id()).unwrap();
        println!(
            "peer idle {idle} s: RSS {peer_rss} KiB ({:.2} MB), {} threads; openclaw / peer = {:.2}",
            peer_rss as f64 / 1024.0,
            thread_count(child.id()).unwrap(),
            idle_rss as f64 / peer_rss as f64
        );
        stop(child);
    }

    // Latency: one connection, sequential requests.
    let mut c = KeepAlive::connect(addr);
    for _ in 0..200 {
        assert_eq!(c.get(HEALTH), 200);
    }
    let mut lat = Vec::new();
    let until = Instant::now() + Duration::from_secs(load_secs);
    while Instant::now() < until && lat.len() < 1_000_000 {
        let t = Instant::now();
        assert_eq!(c.get(HEALTH), 200);
        lat.push(t.elapsed());
    }
    let n = lat.len();
    lat.sort();
    println!(
        "/health, 1 connection: {n} requests, {:.0} req/s, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        n as f64 / load_secs as f64,
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(lat[n - 1])
    );

    // Throughput: several connections in parallel.
    for conns in [4usize, 16] {
        let until = Instant::now() + Duration::from_secs(load_secs);
        let handles: Vec<_> = (0..conns)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut c = KeepAlive::connect(addr);
                    let mut done = 0u64;
                    while Instant::now() < until && done < 10_000_000 {
                        assert_eq!(c.get(HEALTH), 200);
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        println!(
            "/health, {conns} connections: {:.0} req/s",
            total as f64 / load_secs as f64
        );
    }
    println!(
        "after load: RSS {} KiB, {} threads",
        rss_kib(pid).unwrap(),
        thread_count(pid).unwrap()
    );
    std::thread::sleep(Duration::from_secs(idle));
    println!(
        "idle {idle} s after load: RSS {} KiB, {} threads",
        rss_kib(pid).unwrap(),
        thread_count(pid).unwrap()
    );
    stop(child);
}

/// How much of server/symbol-order.txt the binary still has. Cargo features and dependency
/// changes rename a crate's symbols (their hash), and a list that no longer matches costs idle
/// RSS silently: a low figure means "run scripts/symbol-order.sh".
fn symbol_order_coverage(bin: &std::path::Path) {
    let list = openclaw_tests::repo_root().join("server/symbol-order.txt");
    let Ok(listed) = std::fs::read_to_string(&list) else {
        println!("symbol order: {} missing", list.display());
        return;
    };
    let Ok(out) = std::process::Command::new("nm")
        .arg("--defined-only")
        .arg(bin)
        .output()
    else {
        println!("symbol order: nm not found, coverage not checked");
        return;
    };
    let present: std::collections::HashSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    let listed: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
    let found = listed
        .iter()
        .filter(|name| present.contains(**name))
        .count();
    println!(
        "symbol order: {found} of {} listed functions are in this binary (fresh: about three in four, the rest being the lean build's; clearly fewer means: run scripts/symbol-order.sh)",
        listed.len()
    );
}
