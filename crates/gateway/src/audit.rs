//! The audit log: an append-only file of security-relevant events (auth failures, pairing,
//! config changes), one JSON object per line, each carrying the SHA-256 of the line before it so
//! that an edited or deleted line breaks the chain.
//!
//! The file is opened on the first event, not at start-up, and every write goes through a
//! blocking thread.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// `prev` of the first line in a file.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit log {path} line {line}: {reason}")]
    Broken {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

#[derive(Clone, Debug)]
pub struct AuditLog {
    inner: Option<Arc<Mutex<Writer>>>,
    /// Background writes not yet done: a stopping gateway waits for them ([`Self::flushed`]).
    writes: tokio_util::task::TaskTracker,
}

/// When the log moves aside: past `max_bytes` it becomes `audit.log.1` (the older ones
/// `.2` … `.keep`, the oldest dropped), and the new file's first line links to the last line
/// of the old one, so the chain runs on across files.
#[derive(Debug, Clone, Copy)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: usize,
}

#[derive(Debug)]
struct Writer {
    path: PathBuf,
    rotation: Option<Rotation>,
    file: Option<File>,
    last_hash: String,
    /// The file's length after our last write: another length means another process wrote
    /// (the CLI audits pairing and restores too), so the last hash is read again.
    known_len: Option<u64>,
}

impl AuditLog {
    /// An audit log at `path`; `None` disables auditing (`logging.audit.enabled: false`).
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            inner: path.map(|path| {
                Arc::new(Mutex::new(Writer {
                    path,
                    rotation: None,
                    file: None,
                    last_hash: String::new(),
                    known_len: None,
                }))
            }),
            writes: tokio_util::task::TaskTracker::new(),
        }
    }

    /// Rotates the file by size (see [`Rotation`]).
    pub fn with_rotation(self, rotation: Rotation) -> Self {
        if let Some(inner) = &self.inner {
            inner.lock().unwrap_or_else(|p| p.into_inner()).rotation = Some(rotation);
        }
        self
    }

    pub fn path(&self) -> Option<PathBuf> {
        let inner = self.inner.as_ref()?;
        let w = inner.lock().unwrap_or_else(|p| p.into_inner());
        Some(w.path.clone())
    }

    /// Records an event in the background; failures are logged, never raised to the caller
    /// (a full disk must not turn an auth failure into a crash).
    pub fn record(&self, event: &str, detail: Value) {
        let Some(inner) = self.inner.clone() else {
            return;
        };
        let event = event.to_owned();
        let write = move || {
            let mut w = inner.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = w.append(&event, detail) {
                tracing::error!(error = %e, "could not write the audit log");
            }
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            self.writes.spawn_blocking(write);
        } else {
            write();
        }
    }

    /// Completes when every event recorded so far is written.
    pub async fn flushed(&self) {
        self.writes.close();
        self.writes.wait().await;
        self.writes.reopen();
    }

    /// Records an event and waits until it is on disk.
    pub fn record_now(&self, event: &str, detail: Value) -> Result<(), AuditError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let mut w = inner.lock().unwrap_or_else(|p| p.into_inner());
        w.append(event, detail)
    }
}

/// `path` with `.n` appended: the n-th rotated file.
fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

impl Writer {
    fn io(&self) -> impl Fn(std::io::Error) -> AuditError + '_ {
        |source| AuditError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn open(&mut self) -> Result<(), AuditError> {
        if let Some(dir) = self.path.parent() {
            openclaw_fs::create_private_dirs(dir).map_err(self.io())?;
        }
        let file = openclaw_fs::open_append_private(&self.path).map_err(self.io())?;
        self.file = Some(file);
        self.known_len = None;
        Ok(())
    }

    fn append(&mut self, event: &str, detail: Value) -> Result<(), AuditError> {
        if self.file.is_none() {
            self.open()?;
        }
        // One writer at a time across processes, so lines and links stay in order.
        let mut lock = self.lock()?;
        // Another process rotated the file under us: write to the new one.
        if !lock.file().is_some_and(|f| same_file(f, &lock.path)) {
            drop(lock);
            self.open()?;
            lock = self.lock()?;
        }
        let w = &mut *lock;
        let len = w
            .file
            .as_ref()
            .map(|f| f.metadata().map(|m| m.len()))
            .transpose()
            .map_err(w.io())?
            .unwrap_or(0);
        if w.known_len != Some(len) {
            w.last_hash = last_hash(&w.path)?;
        }
        let ts = jiff::Timestamp::now().to_string();
        let body = json!({
            "ts": ts,
            "event": event,
            "detail": detail,
            "prev": w.last_hash,
        });
        let body = body.to_string();
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        // `hash` covers everything before it; it is appended as the last member.
        let line = format!("{},\"hash\":\"{hash}\"}}\n", &body[..body.len() - 1]);
        if let Some(file) = w.file.as_mut() {
            // One write of the whole line: O_APPEND keeps concurrent writers from interleaving.
            file.write_all(line.as_bytes())
                .map_err(|source| AuditError::Io {
                    path: w.path.clone(),
                    source,
                })?;
        }
        w.last_hash = hash;
        w.known_len = Some(len + line.len() as u64);
        if let Some(r) = w.rotation
            && len + line.len() as u64 >= r.max_bytes
        {
            w.rotate(r)?;
        }
        Ok(())
    }

    /// Moves the full file aside (under the lock, which the caller holds).
    fn rotate(&mut self, r: Rotation) -> Result<(), AuditError> {
        let keep = r.keep.max(1);
        let _ = std::fs::remove_file(rotated(&self.path, keep));
        for n in (1..keep).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1)).map_err(self.io())?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1)).map_err(self.io())?;
        // The next event opens a new file; its first line links to our last hash.
        self.file = None;
        self.known_len = None;
        Ok(())
    }

    fn lock(&mut self) -> Result<Locked<'_>, AuditError> {
        #[cfg(unix)]
        if let Some(f) = &self.file {
            rustix::fs::flock(f, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
                AuditError::Io {
                    path: self.path.clone(),
                    source: e.into(),
                }
            })?;
        }
        Ok(Locked(self))
    }
}

/// The writer while it holds the file lock; released when dropped (closing the file, as a
/// rotation does, releases it too).
struct Locked<'a>(&'a mut Writer);

impl Locked<'_> {
    fn file(&self) -> Option<&File> {
        self.0.file.as_ref()
    }
}

impl std::ops::Deref for Locked<'_> {
    type Target = Writer;
    fn deref(&self) -> &Writer {
        self.0
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Writer {
        self.0
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(f) = &self.0.file {
            let _ = rustix::fs::flock(f, rustix::fs::FlockOperation::Unlock);
        }
    }
}

/// The hash of the last line of the log: of `path`, or, when it is missing or empty (just
/// rotated), of `path.1`; [`GENESIS`] when there is neither.
fn last_hash(path: &Path) -> Result<String, AuditError> {
    match last_hash_in(path)? {
        Some(h) => Ok(h),
        None => Ok(last_hash_in(&rotated(path, 1))?.unwrap_or_else(|| GENESIS.into())),
    }
}

fn last_hash_in(path: &Path) -> Result<Option<String>, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().map_err(io)?.len();
    let tail = len.min(64 * 1024);
    file.seek(SeekFrom::Start(len - tail)).map_err(io)?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf).map_err(io)?;
    let buf = String::from_utf8_lossy(&buf);
    let Some(line) = buf.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    let v: Value = serde_json::from_str(line).map_err(|e| AuditError::Broken {
        path: path.to_owned(),
        line: 0,
        reason: format!("last line is not JSON ({e}); the chain cannot be continued"),
    })?;
    v.get("hash")
        .and_then(Value::as_str)
        .map(|h| Some(h.to_owned()))
        .ok_or_else(|| AuditError::Broken {
            path: path.to_owned(),
            line: 0,
            reason: "last line has no hash".into(),
        })
}

/// Checks every line's hash and link across the rotated files (`path.N` … `path.1`, then
/// `path`), each file's first line linking to the last line of the one before; returns the
/// number of events. The oldest file kept may start mid-chain (older ones were rotated away).
pub fn verify(path: &Path) -> Result<usize, AuditError> {
    let mut files = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        files.push(rotated(path, n));
        n += 1;
    }
    files.reverse();
    if path.exists() || files.is_empty() {
        files.push(path.to_owned());
    }
    let mut prev: Option<String> = None;
    let mut count = 0;
    for file in &files {
        let (events, last) = verify_file(file, prev.as_deref())?;
        count += events;
        if let Some(last) = last {
            prev = Some(last);
        }
    }
    Ok(count)
}

/// One file's chain; `prev` is the hash its first line must link to (`None`: the oldest
/// file, whose first link is taken as it is). Returns the events and the last hash.
fn verify_file(path: &Path, prev: Option<&str>) -> Result<(usize, Option<String>), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io)?);
    let mut prev = prev.map(str::to_owned);
    let mut count = 0;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        let broken = |reason: String| AuditError::Broken {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        let Some((body, tail)) = line.rsplit_once(",\"hash\":\"") else {
            return Err(broken("no hash".into()));
        };
        let hash = tail.trim_end_matches("\"}");
        let body = format!("{body}}}");
        let v: Value = serde_json::from_str(&body).map_err(|e| broken(format!("not JSON: {e}")))?;
        let link = v.get("prev").and_then(Value::as_str);
        match &prev {
            Some(expected) if link != Some(expected.as_str()) => {
                return Err(broken(
                    "does not follow the line before it (a line was removed or reordered)".into(),
                ));
            }
            None if link.is_none() => return Err(broken("no link to a previous line".into())),
            _ => {}
        }
        if hex::encode(Sha256::digest(body.as_bytes())) != hash {
            return Err(broken("content does not match its hash (edited)".into()));
        }
        prev = Some(hash.to_owned());
        count += 1;
    }
    Ok((count, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_survives_reopen_and_detects_edits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/audit.log");
        let log = AuditLog::new(Some(path.clone()));
        log.record_now("auth.failure", json!({"remote": "127.0.0.1"}))
            .unwrap();
        log.record_now("config.changed", json!({"to": "abc"}))
            .unwrap();
        // A second writer (a restart) continues the chain.
        let again = AuditLog::new(Some(path.clone()));
        again
            .record_now("pairing.approved", json!({"channel": "telegram"}))
            .unwrap();
        assert_eq!(verify(&path).unwrap(), 3);

        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert!(v["ts"].is_string() && v["event"].is_string() && v["hash"].is_string());
        }

        let edited = text.replacen("127.0.0.1", "10.0.0.1", 1);
        std::fs::write(&path, edited).unwrap();
        let err = verify(&path).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");

        let mut lines: Vec<&str> = text.lines().collect();
        lines.remove(1);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let err = verify(&path).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn rotation_keeps_the_chain_across_files_and_processes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/audit.log");
        let rotation = Rotation {
            max_bytes: 600,
            keep: 3,
        };
        let a = AuditLog::new(Some(path.clone())).with_rotation(rotation);
        // A second writer (the CLI while the gateway runs) on the same file.
        let b = AuditLog::new(Some(path.clone())).with_rotation(rotation);
        for i in 0..12 {
            let log = if i % 3 == 0 { &b } else { &a };
            log.record_now("auth.failure", json!({"n": i, "pad": "x".repeat(80)}))
                .unwrap();
        }
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(
            !rotated(&path, 4).exists(),
            "only `keep` rotated files stay"
        );
        // Every event still on disk verifies, across files and both writers.
        let kept: usize = [
            rotated(&path, 3),
            rotated(&path, 2),
            rotated(&path, 1),
            path.clone(),
        ]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.lines().count())
        .sum();
        assert_eq!(verify(&path).unwrap(), kept);
        assert!(kept < 12, "the oldest file was dropped");

        // The newest rotated file's last line is what the current file links to: removing a
        // line at the seam breaks the chain.
        a.record_now("after.rotation", json!({})).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        let one = rotated(&path, 1);
        let text = std::fs::read_to_string(&one).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines.pop();
        std::fs::write(&one, lines.join("\n") + "\n").unwrap();
        let err = verify(&path).unwrap_err().to_string();
        assert!(err.contains("does not follow"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn the_log_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/audit.log");
        AuditLog::new(Some(path.clone()))
            .record_now("x", json!({}))
            .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    #[test]
    fn disabled_log_writes_nothing() {
        let log = AuditLog::new(None);
        log.record_now("x", json!({})).unwrap();
        assert!(log.path().is_none());
    }
}
