//! Backup and restore of a large database (release build), and what a running backup does to the
//! gateway's latency.
//!
//! Builds a database of BENCH_DB_MB megabytes (default 1024) of conversation messages, starts the
//! gateway on it, measures `/health` latency idle and while `openclaw backup create` runs, then
//! times `backup verify` and (gateway stopped) `backup restore`, and reports the archive size.
//!
//! Run: `cargo build --release -p openclaw-server && cargo bench -p openclaw-tests --bench backup`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_tests::{GatewayProcess, base_command, http_get};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[(((v.len() - 1) as f64) * p).round() as usize]
}

/// `/health` round trips until `stop` (bounded to 10 minutes and 10 million requests).
fn probe(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let mut lat = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && lat.len() < 10_000_000 {
        let t = Instant::now();
        if http_get(addr, "/health", None).is_some() {
            lat.push(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    lat
}

fn main() {
    let mb: u64 = std::env::var("BENCH_DB_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("openclaw.db");

    let t = Instant::now();
    {
        let store = openclaw_store::Store::open(&db).unwrap();
        let session = store.upsert_session("webchat", "bench", 0).unwrap();
        drop(store);
        let mut conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "synchronous", "OFF").unwrap();
        let words = [
            "alpha", "meeting", "tomorrow", "remember", "budget", "paris", "invoice", "dentist",
            "flight", "garden", "piano", "report",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let rows = mb * 1024; // ~1 KiB per message
        let tx = conn.transaction().unwrap();
        {
            let mut stmt = tx
                .prepare("INSERT INTO messages (session_id, role, content, tokens, created_at) VALUES (?1, 'user', ?2, 250, ?3)")
                .unwrap();
            let mut text = String::with_capacity(1100);
            for i in 0..rows {
                text.clear();
                while text.len() < 1000 {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    text.push_str(words[(seed % words.len() as u64) as usize]);
                    text.push_str(&format!(" {} ", seed % 10_000));
                }
                stmt.execute(rusqlite::params![session, text, i as i64])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let size = std::fs::metadata(&db).unwrap().len();
    println!(
        "database: {:.0} MB ({} s to build)",
        size as f64 / 1e6,
        t.elapsed().as_secs()
    );

    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "agent:\n  name: Bench\n").unwrap();
    let data = tempfile::TempDir::new_in(dir.path()).unwrap();
    std::fs::rename(&db, data.path().join("openclaw.db")).unwrap();
    let mut gw = GatewayProcess::start_in(data, Some("agent:\n  name: Bench\n"), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(30)).unwrap();
    let cfg = gw.config.clone().unwrap();

    // Baseline latency.
    let stop = Arc::new(AtomicBool::new(false));
    let h = {
        let (stop, addr) = (stop.clone(), gw.addr);
        std::thread::spawn(move || probe(addr, stop))
    };
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    let mut idle = h.join().unwrap();

    // During a backup.
    let stop = Arc::new(AtomicBool::new(false));
    let h = {
        let (stop, addr) = (stop.clone(), gw.addr);
        std::thread::spawn(move || probe(addr, stop))
    };
    let t = Instant::now();
    let out = base_command(gw.data_dir(), Some(&cfg))
        .args(["backup", "create", "--json"])
        .output()
        .unwrap();
    let backup_time = t.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut during = h.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let archive = v["path"].as_str().unwrap().to_owned();
    let archive_size = v["size_bytes"].as_u64().unwrap();
    println!(
        "/health while idle:      n={:<6} p50 {:.3} ms  p99 {:.3} ms",
        idle.len(),
        ms(pct(&mut idle, 0.5)),
        ms(pct(&mut idle, 0.99))
    );
    println!(
        "/health during backup:   n={:<6} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        during.len(),
        ms(pct(&mut during, 0.5)),
        ms(pct(&mut during, 0.99)),
        ms(pct(&mut during, 1.0))
    );
    println!(
        "backup create: {:.1} s, archive {:.0} MB ({:.0}% of the database)",
        backup_time.as_secs_f64(),
        archive_size as f64 / 1e6,
        archive_size as f64 * 100.0 / size as f64
    );

    let t = Instant::now();
    let out = base_command(gw.data_dir(), Some(&cfg))
        .args(["backup", "verify", &archive])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("backup verify: {:.1} s", t.elapsed().as_secs_f64());

    gw.terminate(Duration::from_secs(30)).unwrap();
    let t = Instant::now();
    let out = base_command(gw.data_dir(), Some(&cfg))
        .args(["backup", "restore", &archive])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "backup restore (verify + pre-restore backup + swap): {:.1} s",
        t.elapsed().as_secs_f64()
    );
}
