//! The one SQLite database, `openclaw.db`: sessions, messages, long-term memories (FTS5),
//! pairing codes, paired senders, device nodes and the hourly counters behind `/health`.
//!
//! This is the only crate that writes SQL. It opens the file in WAL mode, applies versioned
//! migrations (schema version in `PRAGMA user_version`, each migration in its own transaction)
//! and refuses a database written by a newer version rather than touching it. A new database is
//! written from `src/empty.db`, the migrated schema (kept equal to the migrations by a test),
//! which makes a first start fast. The API is
//! synchronous and cheap per call; async callers run it on a blocking thread, never on the
//! runtime. It knows nothing of HTTP, config files or logging.

mod dm_pairing;
mod migrations;

use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub use dm_pairing::{
    AccessOutcome, CODE_LENGTH_RANGE, CodePolicy, MAX_ID_BYTES, MAX_NAME_CHARS,
    MAX_PENDING_PER_CHANNEL, PairedSender, PairingError, PairingResult, PendingCode,
};
pub use migrations::SCHEMA_VERSION;

/// File name of the database inside its directory.
pub const DB_FILE: &str = "openclaw.db";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}, but this openclaw understands up to {supported}; \
         it was written by a newer openclaw. Upgrade openclaw, or restore a backup made by this version. \
         The file was not modified."
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error(
        "migration to schema version {version} failed (the database was left at the previous version): {source}"
    )]
    Migrate {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create database {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Counter names kept in hourly buckets.
pub mod counter {
    pub const MESSAGES_PROCESSED: &str = "messages_processed";
    pub const MESSAGES_FAILED: &str = "messages_failed";
    pub const TOOL_CALLS: &str = "tool_calls";
    pub const RESPONSE_MS_SUM: &str = "response_ms_sum";
}

/// Totals over a time window, as `/health` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowStats {
    pub messages_processed: u64,
    pub messages_failed: u64,
    pub tool_calls: u64,
    pub response_ms_sum: f64,
}

impl WindowStats {
    pub fn avg_response_ms(&self) -> f64 {
        if self.messages_processed == 0 {
            0.0
        } else {
            self.response_ms_sum / self.messages_processed as f64
        }
    }
    pub fn error_rate(&self) -> f64 {
        if self.messages_processed == 0 {
            0.0
        } else {
            self.messages_failed as f64 / self.messages_processed as f64
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Memory {
    pub id: i64,
    pub content: String,
    pub tags: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub id: i64,
    pub role: String,
    pub content: String,
    pub tokens: i64,
    pub created_at: i64,
}

/// A device node paired with this gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// Hex SHA-256 of the node's public key.
    pub id: String,
    pub name: String,
    /// `host:port` the gateway dials.
    pub address: String,
    /// Raw Ed25519 public key, base64url.
    pub public_key: String,
    /// Hex SHA-256 of the node's TLS certificate.
    pub cert_fingerprint: String,
    /// Lower is preferred.
    pub priority: i64,
    pub capabilities: Vec<String>,
    pub paired_at: i64,
}

/// Counts for `openclaw status`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub sessions: u64,
    pub memories: u64,
    pub nodes: u64,
    pub size_bytes: u64,
}

/// A handle on `openclaw.db`. One connection behind a mutex: SQLite serialises writers anyway,
/// and every call here is short.
pub struct Store {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
    /// The hour whose old counter buckets were last deleted.
    last_prune_hour: std::sync::atomic::AtomicI64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// `openclaw.db` as a first start makes it: the schema of every migration, no rows, WAL mode.
/// Written from the migrations by the test `empty_image_is_the_migrated_schema`
/// (`OPENCLAW_BLESS=1` rewrites it); an image older than the migrations is still correct, as
/// `open` migrates whatever it finds.
const EMPTY_DB: &[u8] = include_bytes!("empty.db");

/// Makes the database at `path` from [`EMPTY_DB`] unless a file is already there.
///
/// Building the schema is most of a first start: SQLite parses it and builds FTS5's tables
/// (0.65 ms of CPU), then syncs six times to switch a new file to WAL. The image is written under
/// a temporary name, synced once and then linked to its name, which fails if another process got
/// there first: 2.3 ms → 0.6 ms here. A crash leaves no database or a whole one, never half of
/// one (at worst an unused `openclaw.db.creating-*` file beside it, safe to delete).
fn create_if_missing(path: &Path) -> Result<()> {
    create_if_missing_linking_with(path, |from, to| std::fs::hard_link(from, to))
}

/// [`create_if_missing`] with the hard-link call given, so tests can stand for a file system
/// without hard links.
fn create_if_missing_linking_with(
    path: &Path,
    hard_link: impl Fn(&Path, &Path) -> std::io::Result<()>,
) -> Result<()> {
    let create_err = |source| Error::Create {
        path: path.to_owned(),
        source,
    };
    if path.try_exists().map_err(create_err)? {
        return Ok(());
    }
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(()); // Not a file path: SQLite's open says what is wrong with it.
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    // Unique to this call: threads of one process may race to create the same file too.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = name.to_owned();
    tmp_name.push(format!(".creating-{}-{call}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let created = (|| -> std::io::Result<()> {
        // Conversations live here: owner-only whatever the umask (SQLite gives its -wal and
        // -shm files the database's mode). Truncated if there: a process that crashed here
        // under the same pid (pid 1 in a container) left it.
        let mut file = openclaw_fs::create_private(&tmp)?;
        std::io::Write::write_all(&mut file, EMPTY_DB)?;
        file.sync_all()?;
        drop(file);
        match hard_link(&tmp, path) {
            Ok(()) => {}
            // Another process made it meanwhile: theirs is the database.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            // A file system without hard links: rename, after one more look.
            Err(_) if !path.try_exists()? => std::fs::rename(&tmp, path)?,
            Err(_) => {}
        }
        std::fs::File::open(dir)?.sync_all()
    })();
    let _ = std::fs::remove_file(&tmp);
    created.map_err(create_err)
}

/// Makes a database (and its -wal and -shm files, when there) owner-only: one made by an
/// older version, or copied in, may be readable by every user. Costs a `stat` per file.
fn make_private(path: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match openclaw_fs::make_owner_only(Path::new(&name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) `dir/openclaw.db` and brings its schema up to date.
    pub fn open_in_dir(dir: &Path) -> Result<Self> {
        Self::open(&dir.join(DB_FILE))
    }

    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self> {
        create_if_missing(path)?;
        make_private(path).map_err(|source| Error::Create {
            path: path.to_owned(),
            source,
        })?;
        let open_err = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(open_err)?;
        // Refuse a newer database before anything (even the WAL switch) writes to it.
        migrations::check_version(&conn, &path.display().to_string())?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrations::migrate(&conn, &path.display().to_string())?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: Some(path.to_owned()),
            last_prune_hour: Default::default(),
        })
    }

    /// A database that lives in RAM only (`memory.persistence: false`).
    pub fn open_in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(|source| Error::Open {
            path: ":memory:".into(),
            source,
        })?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&conn, ":memory:")?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: None,
            last_prune_hour: Default::default(),
        })
    }

    /// The file behind this store; `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back on drop), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// A cheap round trip proving the database answers.
    pub fn ping(&self) -> Result<()> {
        self.conn().query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    // ---- key/value metadata ----

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    // ---- counters (hourly buckets) ----

    /// Adds `delta` to counter `name` in the hour containing `at` (Unix seconds).
    pub fn add_counter(&self, name: &str, delta: f64, at: i64) -> Result<()> {
        self.add_counters(&[(name, delta)], at)
    }

    /// Adds several counters in one transaction; zero deltas are skipped. Buckets older than two
    /// days are forgotten when a new hour starts.
    pub fn add_counters(&self, deltas: &[(&str, f64)], at: i64) -> Result<()> {
        let hour = at.div_euclid(3600);
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO counters (name, hour, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name, hour) DO UPDATE SET value = value + excluded.value",
            )?;
            for (name, delta) in deltas.iter().filter(|(_, d)| *d != 0.0) {
                stmt.execute(params![name, hour, delta])?;
            }
        }
        let last = self
            .last_prune_hour
            .load(std::sync::atomic::Ordering::Relaxed);
        if last != hour {
            tx.execute("DELETE FROM counters WHERE hour < ?1", [hour - 48])?;
            self.last_prune_hour
                .store(hour, std::sync::atomic::Ordering::Relaxed);
        }
        tx.commit()?;
        Ok(())
    }

    /// Totals for the 24 hours before `now` (Unix seconds), to the hour.
    pub fn stats_24h(&self, now: i64) -> Result<WindowStats> {
        let since = now.div_euclid(3600) - 23;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT name, SUM(value) FROM counters WHERE hour >= ?1 GROUP BY name",
        )?;
        let mut stats = WindowStats::default();
        let rows = stmt.query_map([since], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
        })?;
        for row in rows {
            let (name, value) = row?;
            match name.as_str() {
                counter::MESSAGES_PROCESSED => stats.messages_processed = value as u64,
                counter::MESSAGES_FAILED => stats.messages_failed = value as u64,
                counter::TOOL_CALLS => stats.tool_calls = value as u64,
                counter::RESPONSE_MS_SUM => stats.response_ms_sum = value,
                _ => {}
            }
        }
        Ok(stats)
    }

    // ---- sessions and messages ----

    /// The session for `(channel, peer)`, created on first use. Returns its id.
    pub fn upsert_session(&self, channel: &str, peer: &str, now: i64) -> Result<i64> {
        Ok(self.conn().query_row(
            "INSERT INTO sessions (channel, peer, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT(channel, peer) DO UPDATE SET updated_at = excluded.updated_at
             RETURNING id",
            params![channel, peer, now],
            |r| r.get(0),
        )?)
    }

    /// True when the (channel, peer) conversation exists already.
    pub fn session_exists(&self, channel: &str, peer: &str) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE channel = ?1 AND peer = ?2)",
            params![channel, peer],
            |r| r.get(0),
        )?)
    }

    pub fn append_message(
        &self,
        session_id: i64,
        role: &str,
        content: &str,
        tokens: i64,
        now: i64,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO messages (session_id, role, content, tokens, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![session_id, role, content, tokens, now],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Every message of a session, oldest first (compacted ones included).
    pub fn session_messages(&self, session_id: i64) -> Result<Vec<StoredMessage>> {
        self.messages(session_id, false)
    }

    /// The messages still in a session's context (not yet compacted into its summary).
    pub fn session_context(&self, session_id: i64) -> Result<Vec<StoredMessage>> {
        self.messages(session_id, true)
    }

    fn messages(&self, session_id: i64, context_only: bool) -> Result<Vec<StoredMessage>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, role, content, tokens, created_at FROM messages
             WHERE session_id = ?1 AND (?2 = 0 OR compacted = 0) ORDER BY id",
        )?;
        let rows = stmt.query_map(params![session_id, context_only], |r| {
            Ok(StoredMessage {
                id: r.get(0)?,
                role: r.get(1)?,
                content: r.get(2)?,
                tokens: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn session_summary(&self, session_id: i64) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT summary FROM sessions WHERE id = ?1",
                [session_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
    }

    /// Stores a session's new summary and marks the messages it covers as compacted, atomically.
    pub fn compact_session(
        &self,
        session_id: i64,
        summary: &str,
        through_message_id: i64,
    ) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE sessions SET summary = ?2 WHERE id = ?1",
            params![session_id, summary],
        )?;
        let n = tx.execute(
            "UPDATE messages SET compacted = 1 WHERE session_id = ?1 AND id <= ?2 AND compacted = 0",
            params![session_id, through_message_id],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Sessions touched at or after `since` (Unix seconds).
    pub fn active_sessions_since(&self, since: i64) -> Result<u64> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM sessions WHERE updated_at >= ?1",
            [since],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    // ---- long-term memory ----

    pub fn save_memory(&self, content: &str, tags: &str, now: i64) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO memories (content, tags, created_at) VALUES (?1, ?2, ?3)",
            params![content, tags, now],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Full-text search; every word of `query` must match. Best matches first.
    pub fn search_memories(&self, query: &str, limit: usize) -> Result<Vec<Memory>> {
        let Some(fts) = fts_query(query) else {
            return Ok(Vec::new());
        };
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT m.id, m.content, m.tags, m.created_at FROM memories_fts f
             JOIN memories m ON m.id = f.rowid
             WHERE memories_fts MATCH ?1 ORDER BY rank LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![fts, limit as i64], |r| {
            Ok(Memory {
                id: r.get(0)?,
                content: r.get(1)?,
                tags: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes memories created before `before` (Unix seconds); returns how many went.
    pub fn prune_memories(&self, before: i64) -> Result<usize> {
        Ok(self
            .conn()
            .execute("DELETE FROM memories WHERE created_at < ?1", [before])?)
    }

    // ---- device nodes ----

    /// Adds a node, or replaces the one with the same id or name (re-pairing).
    pub fn upsert_node(&self, n: &NodeRecord) -> Result<()> {
        let caps = serde_json::to_string(&n.capabilities).unwrap_or_else(|_| "[]".into());
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM nodes WHERE id = ?1 OR name = ?2",
            params![n.id, n.name],
        )?;
        tx.execute(
            "INSERT INTO nodes (id, name, address, public_key, cert_fingerprint, priority, capabilities, paired_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![n.id, n.name, n.address, n.public_key, n.cert_fingerprint, n.priority, caps, n.paired_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Paired nodes, preferred first.
    pub fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, address, public_key, cert_fingerprint, priority, capabilities, paired_at
             FROM nodes ORDER BY priority, name",
        )?;
        let rows = stmt.query_map([], |r| {
            let caps: String = r.get(6)?;
            Ok(NodeRecord {
                id: r.get(0)?,
                name: r.get(1)?,
                address: r.get(2)?,
                public_key: r.get(3)?,
                cert_fingerprint: r.get(4)?,
                priority: r.get(5)?,
                capabilities: serde_json::from_str(&caps).unwrap_or_default(),
                paired_at: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Whether any node is paired (cheap: used at start-up).
    pub fn has_nodes(&self) -> Result<bool> {
        Ok(self
            .conn()
            .query_row("SELECT EXISTS (SELECT 1 FROM nodes)", [], |r| r.get(0))?)
    }

    /// Forgets a node by name; false when there was none.
    pub fn remove_node(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM nodes WHERE name = ?1", [name])?
            > 0)
    }

    // ---- totals ----

    pub fn totals(&self) -> Result<Totals> {
        let conn = self.conn();
        let count = |table: &str| -> rusqlite::Result<u64> {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
        };
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(Totals {
            sessions: count("sessions")?,
            memories: count("memories")?,
            nodes: count("nodes")?,
            size_bytes: (pages * page_size) as u64,
        })
    }
}

/// What [`check_file`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    pub schema_version: i64,
    /// `ok`, or SQLite's list of problems.
    pub integrity: String,
}

/// Copies the database file at `src` to a new file `dest` with SQLite's online backup API, from
/// a read-only connection of its own, so the gateway (another connection, another process) goes
/// on reading and writing. The copy is one consistent snapshot. `progress(done, total)` counts
/// pages.
pub fn backup_file(src: &Path, dest: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
    use rusqlite::OpenFlags;
    use rusqlite::backup::{Backup, StepResult};
    let open_err = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Open { path, source }
    };
    let source = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err(src))?;
    source.busy_timeout(std::time::Duration::from_secs(30))?;
    migrations::check_version(&source, &src.display().to_string())?;
    let mut target = Connection::open(dest).map_err(open_err(dest))?;
    let backup = Backup::new(&source, &mut target)?;
    // Steps of many pages show progress. A write by another connection between two steps makes
    // SQLite start over; after a few restarts the rest is copied in one step, which holds a
    // read snapshot (WAL: writers are not blocked) and cannot restart.
    const PAGES_PER_STEP: i32 = 4096;
    let mut restarts = 0;
    let mut last_remaining = i64::MAX;
    loop {
        let pages = if restarts >= 3 { -1 } else { PAGES_PER_STEP };
        match backup.step(pages)? {
            StepResult::Done => break,
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => {}
        }
        let p = backup.progress();
        let (remaining, total) = (i64::from(p.remaining), i64::from(p.pagecount));
        if remaining > last_remaining {
            restarts += 1;
        }
        last_remaining = remaining;
        progress((total - remaining).max(0) as u64, total.max(0) as u64);
    }
    let p = backup.progress();
    progress(p.pagecount.max(0) as u64, p.pagecount.max(0) as u64);
    drop(backup);
    // The copy is a plain single file: no WAL to carry along.
    target.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}

/// Opens `path` read-only and runs `PRAGMA integrity_check`; also reports its schema version.
pub fn check_file(path: &Path) -> Result<FileCheck> {
    use rusqlite::OpenFlags;
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
            Error::Open {
                path: path.to_owned(),
                source,
            }
        })?;
    let schema_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let lines: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(FileCheck {
        schema_version,
        integrity: lines.join("; "),
    })
}

/// Quotes each word so user text cannot be read as FTS5 syntax.
fn fts_query(query: &str) -> Option<String> {
    let terms: Vec<String> = query
        .split_whitespace()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    type SchemaRows = Vec<(String, String, Option<String>, i64)>;

    /// Every schema object with its SQL and, for tables, how many rows it holds; and the version.
    fn schema_and_rows(conn: &Connection) -> (SchemaRows, i64) {
        let mut stmt = conn
            .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name")
            .unwrap();
        let objects: Vec<(String, String, Option<String>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let rows = objects
            .into_iter()
            .map(|(kind, name, sql)| {
                let rows = if kind == "table" {
                    conn.query_row(&format!("SELECT COUNT(*) FROM \"{name}\""), [], |r| {
                        r.get(0)
                    })
                    .unwrap()
                } else {
                    0
                };
                (kind, name, sql, rows)
            })
            .collect();
        let version = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        (rows, version)
    }

    /// Temporary files `create_if_missing` left in `dir` (there should be none).
    fn leftover_temporaries(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".creating-"))
            .collect()
    }

    #[test]
    fn empty_image_is_the_migrated_schema() {
        let dir = tempfile::tempdir().unwrap();
        let built = dir.path().join("built.db");
        {
            let conn = Connection::open(&built).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            migrations::migrate(&conn, "built").unwrap();
        } // Closing the last connection checkpoints everything into the file.
        if std::env::var_os("OPENCLAW_BLESS").is_some() {
            // Run-time CARGO_MANIFEST_DIR: a reused test binary's compile-time one may be gone.
            let manifest = std::env::var_os("CARGO_MANIFEST_DIR").unwrap();
            std::fs::copy(&built, Path::new(&manifest).join("src/empty.db")).unwrap();
            return;
        }
        let expected = schema_and_rows(&Connection::open(&built).unwrap());

        // What a first start makes, through the real path.
        let first = tempfile::tempdir().unwrap();
        create_if_missing(&first.path().join(DB_FILE)).unwrap();
        let header = std::fs::read(first.path().join(DB_FILE)).unwrap();
        // As written, before `open` would migrate it.
        let raw = Connection::open(first.path().join(DB_FILE)).unwrap();
        assert_eq!(
            schema_and_rows(&raw),
            expected,
            "src/empty.db is not what the migrations make: rewrite it with \
             `OPENCLAW_BLESS=1 cargo test -p openclaw-store empty_image` and commit it"
        );
        // Already in WAL mode: opening it needs no switch (and none of its syncs).
        assert_eq!(&header[18..20], &[2, 2]);
        drop(raw);
        let store = Store::open_in_dir(first.path()).unwrap();
        let check: String = store
            .conn()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let leftovers = leftover_temporaries(first.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn without_hard_links_the_database_is_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        let unsupported = |_: &Path, _: &Path| Err(std::io::ErrorKind::Unsupported.into());
        create_if_missing_linking_with(&path, unsupported).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), EMPTY_DB);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        // An existing database is never replaced, whatever the link call says.
        store.set_meta("k", "v").unwrap();
        drop(store);
        create_if_missing_linking_with(&path, unsupported).unwrap();
        assert_eq!(
            Store::open(&path).unwrap().meta("k").unwrap().as_deref(),
            Some("v")
        );
        let leftovers = leftover_temporaries(dir.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn threads_racing_to_create_the_database_share_one() {
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<Store> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| Store::open_in_dir(dir.path()).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        stores[0].set_meta("k", "v").unwrap();
        for store in &stores {
            assert_eq!(store.meta("k").unwrap().as_deref(), Some("v"));
        }
        let leftovers = leftover_temporaries(dir.path());
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_database_in_a_missing_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open_in_dir(&dir.path().join("nope")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cannot create database"), "{msg}");
        assert!(msg.contains("nope"), "{msg}");
    }

    #[test]
    fn fresh_database_gets_the_latest_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in_dir(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let mode: String = store
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        for table in [
            "sessions",
            "messages",
            "memories",
            "memories_fts",
            "pairing_codes",
            "paired_senders",
            "nodes",
            "counters",
            "meta",
        ] {
            let n: i64 = store
                .conn()
                .query_row(
                    "SELECT COUNT(*) FROM sqlite_master WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(n, 1, "table {table} missing");
        }
    }

    #[test]
    fn reopening_keeps_data_and_does_not_migrate_again() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open_in_dir(dir.path()).unwrap();
            s.set_meta("k", "v").unwrap();
        }
        let s = Store::open_in_dir(dir.path()).unwrap();
        assert_eq!(s.meta("k").unwrap().as_deref(), Some("v"));
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn newer_database_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 999;")
                .unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(err, Error::TooNew { found: 999, supported, .. } if supported == SCHEMA_VERSION)
        );
        assert!(err.to_string().contains("newer openclaw"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "file was modified");
        assert!(!dir.path().join("openclaw.db-wal").exists());
    }

    #[test]
    fn counters_sum_over_24_hours_only() {
        let s = Store::open_in_memory().unwrap();
        let now = 1_800_000_000;
        s.add_counter(counter::MESSAGES_PROCESSED, 3.0, now)
            .unwrap();
        s.add_counter(counter::MESSAGES_PROCESSED, 1.0, now - 3600)
            .unwrap();
        s.add_counter(counter::MESSAGES_FAILED, 1.0, now).unwrap();
        s.add_counter(counter::RESPONSE_MS_SUM, 400.0, now).unwrap();
        s.add_counter(counter::TOOL_CALLS, 2.0, now).unwrap();
        // 30 hours ago: outside the window.
        s.add_counter(counter::MESSAGES_PROCESSED, 100.0, now - 30 * 3600)
            .unwrap();
        // Several at once, zeros skipped.
        s.add_counters(
            &[(counter::TOOL_CALLS, 0.0), (counter::MESSAGES_FAILED, 0.0)],
            now,
        )
        .unwrap();
        let st = s.stats_24h(now).unwrap();
        assert_eq!(st.messages_processed, 4);
        assert_eq!(st.messages_failed, 1);
        assert_eq!(st.tool_calls, 2);
        assert_eq!(st.avg_response_ms(), 100.0);
        assert_eq!(st.error_rate(), 0.25);
    }

    #[test]
    fn sessions_are_unique_per_channel_and_peer() {
        let s = Store::open_in_memory().unwrap();
        let a = s.upsert_session("telegram", "42", 10).unwrap();
        let b = s.upsert_session("telegram", "42", 20).unwrap();
        let c = s.upsert_session("slack", "42", 20).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        s.append_message(a, "user", "hi", 1, 10).unwrap();
        s.append_message(a, "assistant", "hello", 2, 11).unwrap();
        let msgs = s.session_messages(a).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[1].content, "hello");
        assert_eq!(s.active_sessions_since(15).unwrap(), 2);
        assert_eq!(s.totals().unwrap().sessions, 2);
    }

    #[test]
    fn online_backup_copies_a_consistent_file_while_the_store_is_open() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open_in_dir(dir.path()).unwrap();
        for i in 0..500 {
            s.save_memory(&format!("note {i} {}", "x".repeat(200)), "", i)
                .unwrap();
        }
        let dest = dir.path().join("copy.db");
        let mut calls = 0;
        backup_file(&dir.path().join(DB_FILE), &dest, &mut |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
        assert!(calls >= 1);
        // The live store is still usable, and the copy is whole.
        s.save_memory("after", "", 1).unwrap();
        let check = check_file(&dest).unwrap();
        assert_eq!(check.integrity, "ok");
        assert_eq!(check.schema_version, SCHEMA_VERSION);
        let copy = Store::open(&dest).unwrap();
        assert_eq!(copy.totals().unwrap().memories, 500);
        assert!(
            !dir.path().join("copy.db-wal").exists()
                || std::fs::metadata(dir.path().join("copy.db-wal"))
                    .unwrap()
                    .len()
                    == 0
        );
    }

    #[test]
    fn check_file_reports_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            let s = Store::open(&path).unwrap();
            for i in 0..200 {
                s.save_memory(&"y".repeat(500), "", i).unwrap();
            }
            s.conn()
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;")
                .unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        for b in &mut bytes[len / 2..len / 2 + 4096] {
            *b = 0x5a;
        }
        std::fs::write(&path, bytes).unwrap();
        // Either SQLite refuses the file outright or integrity_check lists the damage.
        if let Ok(c) = check_file(&path) {
            assert_ne!(c.integrity, "ok");
        }
    }

    #[test]
    fn nodes_are_kept_by_priority_and_replaced_on_repair() {
        let s = Store::open_in_memory().unwrap();
        let node = |id: &str, name: &str, priority| NodeRecord {
            id: id.into(),
            name: name.into(),
            address: "100.64.0.2:18790".into(),
            public_key: "pk".into(),
            cert_fingerprint: "fp".into(),
            priority,
            capabilities: vec!["screen.snapshot".into()],
            paired_at: 1,
        };
        s.upsert_node(&node("a", "iphone", 2)).unwrap();
        s.upsert_node(&node("b", "macbook", 1)).unwrap();
        let names: Vec<_> = s.nodes().unwrap().into_iter().map(|n| n.name).collect();
        assert_eq!(names, ["macbook", "iphone"]);
        // Re-pairing the macbook (new key, same name) replaces it.
        s.upsert_node(&node("c", "macbook", 1)).unwrap();
        assert_eq!(s.nodes().unwrap().len(), 2);
        assert_eq!(s.nodes().unwrap()[0].capabilities, ["screen.snapshot"]);
        assert!(s.has_nodes().unwrap());
        assert!(s.remove_node("iphone").unwrap());
        assert!(!s.remove_node("iphone").unwrap());
        assert_eq!(s.totals().unwrap().nodes, 1);
    }

    #[test]
    fn compaction_keeps_messages_but_takes_them_out_of_context() {
        let s = Store::open_in_memory().unwrap();
        let id = s.upsert_session("webchat", "p", 1).unwrap();
        let first = s.append_message(id, "user", "one", 1, 1).unwrap();
        let second = s.append_message(id, "assistant", "two", 1, 2).unwrap();
        s.append_message(id, "user", "three", 1, 3).unwrap();
        assert_eq!(s.session_summary(id).unwrap(), None);
        assert_eq!(s.compact_session(id, "they counted", second).unwrap(), 2);
        assert_eq!(
            s.session_summary(id).unwrap().as_deref(),
            Some("they counted")
        );
        let ctx = s.session_context(id).unwrap();
        assert_eq!(ctx.len(), 1);
        assert_eq!(ctx[0].content, "three");
        assert_eq!(s.session_messages(id).unwrap().len(), 3, "nothing deleted");
        assert!(first < second);
    }

    #[test]
    fn memories_search_and_prune() {
        let s = Store::open_in_memory().unwrap();
        s.save_memory("Alice prefers tea over coffee", "prefs", 100)
            .unwrap();
        s.save_memory("The car is due for service in May", "car", 200)
            .unwrap();
        let hits = s.search_memories("tea", 10).unwrap();
        assert_eq!(hits.len(), 1);
        assert!(hits[0].content.contains("Alice"));
        // FTS syntax in user text is treated as words, not operators.
        assert!(s.search_memories("\"tea OR (", 10).unwrap().is_empty());
        assert!(s.search_memories("   ", 10).unwrap().is_empty());
        assert_eq!(s.prune_memories(150).unwrap(), 1);
        assert!(s.search_memories("tea", 10).unwrap().is_empty());
        assert_eq!(s.search_memories("service", 10).unwrap().len(), 1);
    }
}
