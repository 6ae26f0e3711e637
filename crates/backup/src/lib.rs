//! Backup archives of an OpenClaw data dir: create (the database copied with SQLite's online
//! backup API while the gateway keeps serving), list, verify, restore (atomic: an interrupted
//! restore is rolled back), retention, and the sweep of what interrupted runs leave behind.
//!
//! An archive is a `.tar.gz` holding `MANIFEST.json` first (format version, app version,
//! creation time, parts, and the SHA-256 and size of every file), then `db/openclaw.db`,
//! `config/config.yaml` and `channels/…` (channel auth state). Archives are written under a
//! temporary name, synced and renamed when complete, so a partial archive is never left under
//! an archive's name. Reading one is bounded before it starts (files, bytes, free space) and
//! every member is held to the manifest while it streams. Everything written is private (0600
//! files, 0700 directories) whatever the umask: it holds conversations, tokens and channel
//! credentials. This crate does file I/O only: it knows nothing of the gateway, HTTP or the
//! command line.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

mod fsx;
mod restore;
mod sweep;
mod unpack;

pub use openclaw_fs::{Space, free_space};
pub use restore::{Restored, recover_interrupted, restore, restore_with_limits};
pub use sweep::{Swept, sweep};
pub use unpack::{
    FREE_SPACE_MARGIN, Limits, MAX_FILES, MAX_MANIFEST_BYTES, MAX_TOTAL_BYTES, Unpacked,
    default_scratch, unpack_verified, unpack_with_limits, verify, verify_reader,
    verify_with_limits,
};

/// Archive format this build writes and the newest it can read.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "MANIFEST.json";
const PREFIX: &str = "openclaw-backup-";
const SUFFIX: &str = ".tar.gz";
/// Temporary names of `create` in the backups dir: a directory for the database copy, and the
/// archive until it is complete (`.<name>.<tag>.partial`).
pub(crate) const STAGING_PREFIX: &str = ".staging-";
pub(crate) const PARTIAL_SUFFIX: &str = ".partial";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Database(#[from] openclaw_store::Error),
    #[error("{path} is not a usable backup: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(
        "{path} was written in archive format {found}, newer than this openclaw understands ({supported}); upgrade openclaw to restore it"
    )]
    NewerFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "not enough free space on the file system of {dir}: this needs {needed} ({declared} of files and {margin} left free for the running gateway), and {free} is free; free some space there or use a file system with room"
    )]
    NoSpace {
        dir: PathBuf,
        needed: String,
        free: String,
        declared: String,
        margin: String,
    },
    #[error("{0}")]
    Refused(String),
}

pub type Result<T> = std::result::Result<T, Error>;

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io { what, path, source }
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::Invalid {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub app_version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// `memory`, `sessions`, `config`, `channel_auth`.
    pub parts: Vec<String>,
    /// Schema version of the database copy, when there is one.
    pub schema_version: Option<i64>,
    pub files: Vec<FileEntry>,
}

/// Where the live data is.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `openclaw.db`.
    pub db: PathBuf,
    /// The config file, when one is in use.
    pub config: Option<PathBuf>,
    /// Channel auth state (bot sessions, WhatsApp credentials).
    pub channels: PathBuf,
    /// Where archives go.
    pub backups: PathBuf,
    /// Where restore keeps its journal.
    pub data_dir: PathBuf,
}

/// What goes into an archive (`backup.include`). Memory and sessions share one database, so
/// asking for either includes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Include {
    pub memory: bool,
    pub sessions: bool,
    pub config: bool,
    pub channel_auth: bool,
}

impl Include {
    pub const ALL: Include = Include {
        memory: true,
        sessions: true,
        config: true,
        channel_auth: true,
    };

    fn db(&self) -> bool {
        self.memory || self.sessions
    }
}

/// Long-running steps, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Copying the database: pages done / total.
    CopyDatabase,
    /// Writing the archive: bytes done / total.
    Pack,
    /// Reading and checking an archive: bytes read / archive size.
    Verify,
    /// Checking the database copy (`PRAGMA integrity_check`).
    CheckDatabase,
    /// Restore: step `done` of `total` swaps done.
    Swap,
}

pub type ProgressFn<'a> = &'a mut dyn FnMut(Stage, u64, u64);

#[derive(Debug, Clone)]
pub struct Created {
    pub path: PathBuf,
    pub size: u64,
    pub manifest: Manifest,
}

fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut f = File::open(path).map_err(io_err("cannot read", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io_err("cannot read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// Regular files under `dir`, as paths relative to it, sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(io_err("cannot list", &d))? {
            let entry = entry.map_err(io_err("cannot list", &d))?;
            let kind = entry
                .file_type()
                .map_err(io_err("cannot stat", &entry.path()))?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file()
                && let Ok(rel) = entry.path().strip_prefix(dir)
            {
                out.push(rel.to_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn timestamp_name(now: jiff::Timestamp) -> String {
    now.strftime("%Y%m%dT%H%M%S%.3fZ")
        .to_string()
        .replace('.', "")
}

/// Creates an archive in `layout.backups` (a private directory, see below; the archive is 0600). `label` (e.g.
/// `pre-restore`) is appended to the name. May run while a gateway serves; first removes what
/// killed creates left in the backups dir, unless another create is writing there.
pub fn create(
    layout: &Layout,
    include: Include,
    app_version: &str,
    label: Option<&str>,
    progress: ProgressFn<'_>,
) -> Result<Created> {
    // The default `<data dir>/backups` is this program's own and is made 0700 even when an
    // older version left it 0755. A directory given elsewhere (`--out`, `backup.path`) may be
    // shared, `/tmp` or a NAS folder: made 0700 when it is created, left alone when it exists;
    // the archives in it are 0600 either way.
    let backups_dir = if layout.backups.starts_with(&layout.data_dir) {
        openclaw_fs::ensure_private_dir(&layout.backups)
    } else {
        openclaw_fs::create_private_dirs(&layout.backups)
    };
    backups_dir.map_err(io_err("cannot create backup dir", &layout.backups))?;
    sweep::sweep_backups_dir(&layout.backups);
    // Shared with other creates, exclusive with the sweep: what this create stages is not
    // swept from under it.
    let _lock = sweep::BackupsDirLock::shared(&layout.backups)
        .map_err(io_err("cannot lock", &layout.backups))?;
    check_room_for_backup(layout, include)?;
    let now = jiff::Timestamp::now();
    let stamp = timestamp_name(now);
    let name = match label {
        Some(l) => format!("{PREFIX}{stamp}-{l}{SUFFIX}"),
        None => format!("{PREFIX}{stamp}{SUFFIX}"),
    };
    let tag = fsx::unique_tag();
    let staging = layout
        .backups
        .join(format!("{STAGING_PREFIX}{stamp}-{tag}"));
    let partial = layout
        .backups
        .join(format!(".{name}.{tag}{PARTIAL_SUFFIX}"));
    let result = create_in(
        layout,
        include,
        app_version,
        now,
        &staging,
        &partial,
        progress,
    );
    let _ = fs::remove_dir_all(&staging);
    let finished = result.and_then(|manifest| {
        let path = layout.backups.join(&name);
        if path.exists() {
            // Two creates in the same millisecond: never replace an archive.
            return Err(Error::Refused(format!(
                "{} already exists; run the backup again",
                path.display()
            )));
        }
        fs::rename(&partial, &path).map_err(io_err("cannot finish archive", &path))?;
        // The archive's name is on disk before anyone is told it exists.
        fsx::sync_dir(&layout.backups).map_err(io_err("cannot sync", &layout.backups))?;
        Ok((path, manifest))
    });
    match finished {
        Ok((path, manifest)) => {
            let size = fs::metadata(&path)
                .map_err(io_err("cannot stat", &path))?
                .len();
            Ok(Created {
                path,
                size,
                manifest,
            })
        }
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Refuses a backup that would fill the disk (often the database's own): it needs a copy of
/// the database (staged) and the archive, which is at most about the size of what it packs.
fn check_room_for_backup(layout: &Layout, include: Include) -> Result<()> {
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut db = 0;
    if include.db() {
        db = size(&layout.db).saturating_add(size(&restore::with_suffix(&layout.db, "-wal")));
    }
    let mut others = 0u64;
    if include.config
        && let Some(c) = &layout.config
    {
        others = size(c);
    }
    if include.channel_auth {
        for rel in files_under(&layout.channels)? {
            others = others.saturating_add(size(&layout.channels.join(rel)));
        }
    }
    // The copies of config and channel files are staged too.
    let declared = db
        .saturating_mul(2)
        .saturating_add(others.saturating_mul(2));
    let margin = FREE_SPACE_MARGIN;
    let space = free_space(&layout.backups)
        .map_err(io_err("cannot read the free space of", &layout.backups))?;
    let needed = declared.saturating_add(margin);
    if space.bytes < needed {
        return Err(Error::NoSpace {
            dir: layout.backups.clone(),
            needed: fsx::human(needed),
            free: fsx::human(space.bytes),
            declared: fsx::human(declared),
            margin: fsx::human(margin),
        });
    }
    Ok(())
}

/// Copies a live file (config, channel auth) into staging, so that what is hashed for the
/// manifest is what is packed, even when the gateway rewrites the file meanwhile.
fn snapshot(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        openclaw_fs::create_private_dirs(parent).map_err(io_err("cannot create", parent))?;
    }
    let mut src = File::open(from).map_err(io_err("cannot read", from))?;
    let mut dst = openclaw_fs::create_new_private(to).map_err(io_err("cannot write", to))?;
    io::copy(&mut src, &mut dst).map_err(io_err("cannot copy to", to))?;
    Ok(())
}

fn create_in(
    layout: &Layout,
    include: Include,
    app_version: &str,
    now: jiff::Timestamp,
    staging: &Path,
    partial: &Path,
    progress: ProgressFn<'_>,
) -> Result<Manifest> {
    openclaw_fs::create_private_dir(staging).map_err(io_err("cannot create", staging))?;
    let mut parts = Vec::new();
    let mut schema_version = None;
    // (archive path, its copy in staging)
    let mut members: Vec<(String, PathBuf)> = Vec::new();
    if include.db() {
        if !layout.db.exists() {
            return Err(Error::Refused(format!(
                "there is no database at {} to back up (is --data-dir right?)",
                layout.db.display()
            )));
        }
        let copy = staging.join("openclaw.db");
        openclaw_store::backup_file(&layout.db, &copy, &mut |done, total| {
            progress(Stage::CopyDatabase, done, total)
        })?;
        schema_version = Some(openclaw_store::check_file(&copy)?.schema_version);
        members.push((unpack::DB_MEMBER.into(), copy));
        if include.memory {
            parts.push("memory".to_owned());
        }
        if include.sessions {
            parts.push("sessions".to_owned());
        }
    }
    if include.config
        && let Some(config) = layout.config.as_ref().filter(|c| c.exists())
    {
        let copy = staging.join("config.yaml");
        snapshot(config, &copy)?;
        members.push((unpack::CONFIG_MEMBER.into(), copy));
        parts.push("config".to_owned());
    }
    if include.channel_auth {
        for rel in files_under(&layout.channels)? {
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let copy = staging.join("channels").join(&rel);
            snapshot(&layout.channels.join(&rel), &copy)?;
            members.push((format!("channels/{name}"), copy));
        }
        parts.push("channel_auth".to_owned());
    }

    let mut files = Vec::new();
    let mut total = 0u64;
    for (name, path) in &members {
        let (sha256, size) = sha256_file(path)?;
        total = total.saturating_add(size);
        files.push(FileEntry {
            path: name.clone(),
            sha256,
            size,
        });
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        app_version: app_version.to_owned(),
        created_at: now.to_string(),
        parts,
        schema_version,
        files,
    };
    let manifest_json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Refused(format!("cannot encode the manifest: {e}")))?;

    let out = openclaw_fs::create_new_private(partial).map_err(io_err("cannot write", partial))?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    // The manifest goes first: a reader holds every later member to it before writing it.
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest_json.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, manifest_json.as_slice())
        .map_err(io_err("cannot write", partial))?;
    let mut done = 0u64;
    for ((name, path), entry) in members.iter().zip(&manifest.files) {
        let f = File::open(path).map_err(io_err("cannot read", path))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(entry.size);
        header.set_mode(0o600);
        header.set_cksum();
        // The staged copy does not change; `take` holds the member to its header regardless.
        tar.append_data(&mut header, name, f.take(entry.size))
            .map_err(io_err("cannot write", partial))?;
        done = done.saturating_add(entry.size);
        progress(Stage::Pack, done, total);
    }
    let gz = tar.into_inner().map_err(io_err("cannot write", partial))?;
    let buf = gz.finish().map_err(io_err("cannot write", partial))?;
    let file = buf.into_inner().map_err(|e| Error::Io {
        what: "cannot write",
        path: partial.to_owned(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err("cannot sync", partial))?;
    Ok(manifest)
}

/// An archive in a backup dir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

/// Archives in `dir`, oldest first (names sort by time).
pub fn list(dir: &Path) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    for entry in fs::read_dir(dir).map_err(io_err("cannot list", dir))? {
        let entry = entry.map_err(io_err("cannot list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(PREFIX) && name.ends_with(SUFFIX) {
            let size = entry
                .metadata()
                .map_err(io_err("cannot stat", &entry.path()))?
                .len();
            out.push(Listed {
                name,
                path: entry.path(),
                size,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Deletes all but the `keep` newest archives; returns what went.
pub fn prune(dir: &Path, keep: usize) -> Result<Vec<PathBuf>> {
    let all = list(dir)?;
    let excess = all.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for old in all.into_iter().take(excess) {
        fs::remove_file(&old.path).map_err(io_err("cannot delete", &old.path))?;
        removed.push(old.path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
