//! Versioned schema migrations. Append only: a released migration is never edited.

use crate::{Error, Result};
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the foundation schema.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE sessions (
        id         INTEGER PRIMARY KEY,
        channel    TEXT NOT NULL,
        peer       TEXT NOT NULL,
        summary    TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (channel, peer)
    );
    CREATE INDEX sessions_updated ON sessions (updated_at);

    CREATE TABLE messages (
        id         INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        role       TEXT NOT NULL,
        content    TEXT NOT NULL,
        tokens     INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX messages_session ON messages (session_id, id);

    CREATE TABLE memories (
        id         INTEGER PRIMARY KEY,
        content    TEXT NOT NULL,
        tags       TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL
    );
    CREATE INDEX memories_created ON memories (created_at);
    CREATE VIRTUAL TABLE memories_fts USING fts5 (
        content, tags, content = 'memories', content_rowid = 'id'
    );
    CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
        INSERT INTO memories_fts (rowid, content, tags) VALUES (new.id, new.content, new.tags);
    END;
    CREATE TRIGGER memories_ad AFTER DELETE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, content, tags)
        VALUES ('delete', old.id, old.content, old.tags);
    END;
    CREATE TRIGGER memories_au AFTER UPDATE ON memories BEGIN
        INSERT INTO memories_fts (memories_fts, rowid, content, tags)
        VALUES ('delete', old.id, old.content, old.tags);
        INSERT INTO memories_fts (rowid, content, tags) VALUES (new.id, new.content, new.tags);
    END;

    -- DM pairing: codes handed to unknown senders, and the senders the owner approved.
    CREATE TABLE pairing_codes (
        channel    TEXT NOT NULL,
        code       TEXT NOT NULL,
        sender     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (channel, code)
    ) WITHOUT ROWID;
    CREATE TABLE paired_senders (
        channel     TEXT NOT NULL,
        sender      TEXT NOT NULL,
        approved_at INTEGER NOT NULL,
        PRIMARY KEY (channel, sender)
    ) WITHOUT ROWID;

    -- Device nodes paired with this gateway.
    CREATE TABLE nodes (
        id               TEXT PRIMARY KEY,  -- hex SHA-256 of the node's Ed25519 public key
        name             TEXT NOT NULL UNIQUE,
        address          TEXT NOT NULL,
        public_key       TEXT NOT NULL,     -- base64url
        cert_fingerprint TEXT NOT NULL,     -- hex SHA-256 of the node's TLS certificate
        priority         INTEGER NOT NULL DEFAULT 100,
        capabilities     TEXT NOT NULL DEFAULT '[]',
        paired_at        INTEGER NOT NULL,
        last_seen        INTEGER
    ) WITHOUT ROWID;

    -- Hourly buckets behind the 24h figures of /health.
    CREATE TABLE counters (
        name  TEXT NOT NULL,
        hour  INTEGER NOT NULL,
        value REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (name, hour)
    ) WITHOUT ROWID;
    "#,
    // 2: compaction keeps summarised messages on disk but out of the model's context.
    r#"
    ALTER TABLE messages ADD COLUMN compacted INTEGER NOT NULL DEFAULT 0;
    "#,
    // 3: DM pairing keeps the name the platform gave a sender, for the owner to recognise it.
    r#"
    ALTER TABLE pairing_codes ADD COLUMN name TEXT;
    ALTER TABLE paired_senders ADD COLUMN name TEXT;
    "#,
];

/// Schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

pub(crate) fn check_version(conn: &Connection, path: &str) -> Result<()> {
    let found = user_version(conn).map_err(|source| Error::Open {
        path: path.into(),
        source,
    })?;
    if found > SCHEMA_VERSION {
        return Err(Error::TooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

pub(crate) fn migrate(conn: &Connection, path: &str) -> Result<()> {
    check_version(conn, path)?;
    let current = user_version(conn)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = i as i64 + 1;
        let apply = || -> rusqlite::Result<()> {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()
        };
        apply().map_err(|source| Error::Migrate { version, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database from before DM pairing kept names (version 2) keeps its codes and senders.
    #[test]
    fn pairing_rows_of_version_2_survive_migration_3() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::DB_FILE);
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..2] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO pairing_codes VALUES ('slack', '123456', 'u1', 10, 4000000000);
                 INSERT INTO paired_senders VALUES ('slack', 'u0', 5);",
            )
            .unwrap();
        }
        let store = crate::Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let pending = store.pending_codes(20).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(
            (pending[0].sender.as_str(), &pending[0].name),
            ("u1", &None)
        );
        assert!(store.is_approved("slack", "u0").unwrap());
        let approved = store.approve_code("slack", "123456", 30).unwrap();
        assert_eq!(approved.sender, "u1");
    }
}
