//! The audit log: an append-only file of security-relevant events (auth failures, pairing,
//! config changes), one JSON object per line, each carrying the SHA-256 of the line before it so
//! that an edited or deleted line breaks the chain.
//!
//! The file is opened on the first event, not at start-up, and every write goes through a
//! blocking thread.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
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
}

#[derive(Debug)]
struct Writer {
    path: PathBuf,
    file: Option<File>,
    last_hash: String,
}

impl AuditLog {
    /// An audit log at `path`; `None` disables auditing (`logging.audit.enabled: false`).
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            inner: path.map(|path| {
                Arc::new(Mutex::new(Writer {
                    path,
                    file: None,
                    last_hash: String::new(),
                }))
            }),
        }
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
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(write);
            }
            Err(_) => write(),
        }
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

impl Writer {
    fn append(&mut self, event: &str, detail: Value) -> Result<(), AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            self.last_hash = last_hash(&self.path)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io)?;
            self.file = Some(file);
        }
        let ts = jiff::Timestamp::now().to_string();
        let body = json!({
            "ts": ts,
            "event": event,
            "detail": detail,
            "prev": self.last_hash,
        });
        let body = body.to_string();
        let hash = hex::encode(Sha256::digest(body.as_bytes()));
        // `hash` covers everything before it; it is appended as the last member.
        let line = format!("{},\"hash\":\"{hash}\"}}\n", &body[..body.len() - 1]);
        if let Some(file) = self.file.as_mut() {
            // One write of the whole line: O_APPEND keeps concurrent writers from interleaving.
            file.write_all(line.as_bytes()).map_err(io)?;
        }
        self.last_hash = hash;
        Ok(())
    }
}

/// The hash of the last line in `path`, or [`GENESIS`] for a missing or empty file.
fn last_hash(path: &Path) -> Result<String, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(GENESIS.into()),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().map_err(io)?.len();
    let tail = len.min(64 * 1024);
    file.seek(SeekFrom::Start(len - tail)).map_err(io)?;
    let mut buf = String::new();
    file.read_to_string(&mut buf).map_err(io)?;
    let Some(line) = buf.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok(GENESIS.into());
    };
    let v: Value = serde_json::from_str(line).map_err(|e| AuditError::Broken {
        path: path.to_owned(),
        line: 0,
        reason: format!("last line is not JSON ({e}); the chain cannot be continued"),
    })?;
    v.get("hash")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| AuditError::Broken {
            path: path.to_owned(),
            line: 0,
            reason: "last line has no hash".into(),
        })
}

/// Checks every line's hash and link; returns the number of events.
pub fn verify(path: &Path) -> Result<usize, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let reader = BufReader::new(File::open(path).map_err(io)?);
    let mut prev = GENESIS.to_owned();
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
        if v.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
            return Err(broken(
                "does not follow the line before it (a line was removed or reordered)".into(),
            ));
        }
        if hex::encode(Sha256::digest(body.as_bytes())) != hash {
            return Err(broken("content does not match its hash (edited)".into()));
        }
        prev = hash.to_owned();
        count += 1;
    }
    Ok(count)
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
    fn disabled_log_writes_nothing() {
        let log = AuditLog::new(None);
        log.record_now("x", json!({})).unwrap();
        assert!(log.path().is_none());
    }
}
