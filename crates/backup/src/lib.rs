//! Backup archives of an OpenClaw data dir: create (the database copied with SQLite's online
//! backup API while the gateway keeps serving), list, verify, restore (atomic: an interrupted
//! restore is rolled back) and retention.
//!
//! An archive is a `.tar.gz` holding `MANIFEST.json` (format version, app version, creation time,
//! parts, and the SHA-256 and size of every file), `db/openclaw.db`, `config/config.yaml` and
//! `channels/…` (channel auth state). Archives are written under a temporary name and renamed
//! when complete, so a partial archive is never left behind. This crate does file I/O only: it
//! knows nothing of the gateway, HTTP or the command line.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

/// Archive format this build writes and the newest it can read.
pub const FORMAT_VERSION: u32 = 1;
pub const MANIFEST: &str = "MANIFEST.json";
const PREFIX: &str = "openclaw-backup-";
const SUFFIX: &str = ".tar.gz";
const JOURNAL: &str = ".restore-journal.json";
/// Suffix of a staged replacement next to its target.
const NEW: &str = ".restore-new";
/// Suffix of the pre-restore original next to its target.
const OLD: &str = ".pre-restore";

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

/// Creates an archive in `layout.backups`. `label` (e.g. `pre-restore`) is appended to the name.
pub fn create(
    layout: &Layout,
    include: Include,
    app_version: &str,
    label: Option<&str>,
    progress: ProgressFn<'_>,
) -> Result<Created> {
    fs::create_dir_all(&layout.backups)
        .map_err(io_err("cannot create backup dir", &layout.backups))?;
    let now = jiff::Timestamp::now();
    let stamp = timestamp_name(now);
    let name = match label {
        Some(l) => format!("{PREFIX}{stamp}-{l}{SUFFIX}"),
        None => format!("{PREFIX}{stamp}{SUFFIX}"),
    };
    let staging = layout.backups.join(format!(".staging-{stamp}"));
    let partial = layout.backups.join(format!(".{name}.partial"));
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
    match result {
        Ok(manifest) => {
            let path = layout.backups.join(&name);
            fs::rename(&partial, &path).map_err(io_err("cannot finish archive", &path))?;
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

fn create_in(
    layout: &Layout,
    include: Include,
    app_version: &str,
    now: jiff::Timestamp,
    staging: &Path,
    partial: &Path,
    progress: ProgressFn<'_>,
) -> Result<Manifest> {
    fs::create_dir_all(staging).map_err(io_err("cannot create", staging))?;
    let mut parts = Vec::new();
    let mut schema_version = None;
    // (archive path, file on disk)
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
        members.push(("db/openclaw.db".into(), copy));
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
        members.push(("config/config.yaml".into(), config.clone()));
        parts.push("config".to_owned());
    }
    if include.channel_auth {
        for rel in files_under(&layout.channels)? {
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            members.push((format!("channels/{name}"), layout.channels.join(&rel)));
        }
        parts.push("channel_auth".to_owned());
    }

    let mut files = Vec::new();
    let mut total = 0u64;
    for (name, path) in &members {
        let (sha256, size) = sha256_file(path)?;
        total += size;
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

    let out = File::create(partial).map_err(io_err("cannot write", partial))?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    let mut header = tar::Header::new_gnu();
    header.set_size(manifest_json.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, MANIFEST, manifest_json.as_slice())
        .map_err(io_err("cannot write", partial))?;
    let mut done = 0u64;
    for (name, path) in &members {
        let mut f = File::open(path).map_err(io_err("cannot read", path))?;
        let size = f.metadata().map_err(io_err("cannot stat", path))?.len();
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, name, &mut f)
            .map_err(io_err("cannot write", partial))?;
        done += size;
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

/// An archive read, checked and unpacked into a directory.
#[derive(Debug)]
pub struct Unpacked {
    pub manifest: Manifest,
    pub dir: PathBuf,
}

/// A safe relative path inside an archive, or why not.
fn safe_path(name: &Path) -> std::result::Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "entry `{}` escapes the archive (absolute or `..`)",
                    name.display()
                ));
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err("an entry has an empty name".into());
    }
    Ok(out)
}

/// Reads `archive` into `into` (created, must not exist), checking every entry's path and kind,
/// every file's size and SHA-256 against the manifest, the format version, and the database
/// copy with `PRAGMA integrity_check`.
pub fn unpack_verified(archive: &Path, into: &Path, progress: ProgressFn<'_>) -> Result<Unpacked> {
    let file = File::open(archive).map_err(io_err("cannot open", archive))?;
    let archive_size = file
        .metadata()
        .map_err(io_err("cannot stat", archive))?
        .len();
    let counting = CountingReader {
        inner: file,
        count: 0,
    };
    let gz = flate2::read::GzDecoder::new(counting);
    let mut tar = tar::Archive::new(gz);
    fs::create_dir(into).map_err(io_err("cannot create", into))?;
    let broken = |e: io::Error| {
        invalid(
            archive,
            format!("the archive is truncated or corrupt ({e})"),
        )
    };
    let mut seen: Vec<FileEntry> = Vec::new();
    let mut manifest_bytes: Option<Vec<u8>> = None;
    let entries = tar.entries().map_err(broken)?;
    for entry in entries {
        let mut entry = entry.map_err(broken)?;
        let raw_name = entry.path().map_err(broken)?.into_owned();
        let rel = safe_path(&raw_name).map_err(|r| invalid(archive, r))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(invalid(
                archive,
                format!(
                    "entry `{}` is a link or device; only plain files are allowed",
                    raw_name.display()
                ),
            ));
        }
        let name = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if name == MANIFEST {
            let mut buf = Vec::new();
            entry
                .by_ref()
                .take(1 << 20)
                .read_to_end(&mut buf)
                .map_err(broken)?;
            manifest_bytes = Some(buf);
            continue;
        }
        let dest = into.join(&rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("cannot create", parent))?;
        }
        let mut out = BufWriter::new(File::create(&dest).map_err(io_err("cannot write", &dest))?);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = entry.read(&mut buf).map_err(broken)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(io_err("cannot write", &dest))?;
            size += n as u64;
        }
        out.flush().map_err(io_err("cannot write", &dest))?;
        if seen.iter().any(|f| f.path == name) {
            return Err(invalid(archive, format!("`{name}` appears twice")));
        }
        seen.push(FileEntry {
            path: name,
            sha256: hex::encode(hasher.finalize()),
            size,
        });
        let read = entry.raw_file_position();
        progress(Stage::Verify, read.min(archive_size), archive_size);
    }
    let manifest_bytes =
        manifest_bytes.ok_or_else(|| invalid(archive, "it has no MANIFEST.json"))?;
    let version: serde_json::Value = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| invalid(archive, format!("MANIFEST.json is not JSON ({e})")))?;
    let found = version["format_version"].as_u64().unwrap_or(0) as u32;
    if found > FORMAT_VERSION {
        return Err(Error::NewerFormat {
            path: archive.to_owned(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    let manifest: Manifest = serde_json::from_value(version)
        .map_err(|e| invalid(archive, format!("MANIFEST.json is malformed ({e})")))?;
    for want in &manifest.files {
        match seen.iter().find(|f| f.path == want.path) {
            None => {
                return Err(invalid(
                    archive,
                    format!("`{}` is listed in the manifest but missing", want.path),
                ));
            }
            Some(got) if got.size != want.size => {
                return Err(invalid(
                    archive,
                    format!(
                        "`{}` is {} bytes, the manifest says {}",
                        want.path, got.size, want.size
                    ),
                ));
            }
            Some(got) if got.sha256 != want.sha256 => {
                return Err(invalid(
                    archive,
                    format!(
                        "`{}` does not match its SHA-256 in the manifest (damaged or altered)",
                        want.path
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = seen
        .iter()
        .find(|f| !manifest.files.iter().any(|w| w.path == f.path))
    {
        return Err(invalid(
            archive,
            format!("`{}` is not listed in the manifest", extra.path),
        ));
    }
    let db = into.join("db/openclaw.db");
    if db.exists() {
        progress(Stage::CheckDatabase, 0, 1);
        let check = openclaw_store::check_file(&db)
            .map_err(|e| invalid(archive, format!("the database copy cannot be opened ({e})")))?;
        if check.integrity != "ok" {
            return Err(invalid(
                archive,
                format!(
                    "the database copy fails integrity_check: {}",
                    check.integrity
                ),
            ));
        }
        if check.schema_version > openclaw_store::SCHEMA_VERSION {
            return Err(invalid(
                archive,
                format!(
                    "its database has schema version {}, newer than this openclaw ({}); upgrade openclaw to restore it",
                    check.schema_version,
                    openclaw_store::SCHEMA_VERSION
                ),
            ));
        }
        progress(Stage::CheckDatabase, 1, 1);
    }
    Ok(Unpacked {
        manifest,
        dir: into.to_owned(),
    })
}

/// Verifies an archive without keeping what it unpacks.
pub fn verify(archive: &Path, scratch: &Path, progress: ProgressFn<'_>) -> Result<Manifest> {
    let dir = scratch.join(format!(
        ".verify-{}",
        timestamp_name(jiff::Timestamp::now())
    ));
    let result = unpack_verified(archive, &dir, progress).map(|u| u.manifest);
    let _ = fs::remove_dir_all(&dir);
    result
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// One swap of a restore, as written in the journal before any rename.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Step {
    /// The live path that is replaced.
    target: PathBuf,
    /// Whether the target existed (and was moved to `target.pre-restore`).
    had_original: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    archive: PathBuf,
    steps: Vec<Step>,
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(io_err("cannot create", to))?;
    for rel in files_under(from)? {
        let dest = to.join(&rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(io_err("cannot create", parent))?;
        }
        fs::copy(from.join(&rel), &dest).map_err(io_err("cannot copy to", &dest))?;
    }
    Ok(())
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    /// The state before the restore, kept as a backup of its own.
    pub pre_restore: Created,
}

/// Rolls back a restore of the data dir `data_dir` that was interrupted (killed, power cut);
/// true if there was one. Needs nothing but the data dir: the journal names every path.
pub fn recover_interrupted(data_dir: &Path) -> Result<bool> {
    let journal_path = data_dir.join(JOURNAL);
    let text = match fs::read_to_string(&journal_path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err("cannot read", &journal_path)(e)),
    };
    let journal: Journal = serde_json::from_str(&text).map_err(|e| {
        Error::Refused(format!(
            "restore journal {} is unreadable ({e}); inspect the *.pre-restore files by hand",
            journal_path.display()
        ))
    })?;
    for step in journal.steps.iter().rev() {
        let old = with_suffix(&step.target, OLD);
        let new = with_suffix(&step.target, NEW);
        if old.exists() {
            remove_any(&step.target).map_err(io_err("cannot roll back", &step.target))?;
            fs::rename(&old, &step.target).map_err(io_err("cannot roll back", &step.target))?;
        } else if !step.had_original && !new.exists() {
            // The new file was already in place but there was nothing before it: take it out.
            remove_any(&step.target).map_err(io_err("cannot roll back", &step.target))?;
        }
        remove_any(&new).map_err(io_err("cannot clean up", &new))?;
    }
    fs::remove_file(&journal_path).map_err(io_err("cannot remove", &journal_path))?;
    Ok(true)
}

/// Restores `archive` over `layout`: verifies it, backs up the current state (kept as its own
/// archive), then replaces config → channel auth → database (memory and sessions). Every
/// replacement is staged next to its target and swapped by rename under a journal, so an
/// interrupted restore is rolled back by [`recover_interrupted`]. The gateway must be stopped.
pub fn restore(
    archive: &Path,
    layout: &Layout,
    app_version: &str,
    progress: ProgressFn<'_>,
) -> Result<Restored> {
    recover_interrupted(&layout.data_dir)?;
    fs::create_dir_all(&layout.data_dir).map_err(io_err("cannot create", &layout.data_dir))?;
    let scratch = layout.data_dir.join(format!(
        ".restore-{}",
        timestamp_name(jiff::Timestamp::now())
    ));
    let result = restore_from(archive, layout, app_version, &scratch, progress);
    let _ = fs::remove_dir_all(&scratch);
    result
}

fn restore_from(
    archive: &Path,
    layout: &Layout,
    app_version: &str,
    scratch: &Path,
    progress: ProgressFn<'_>,
) -> Result<Restored> {
    let unpacked = unpack_verified(archive, scratch, progress)?;
    let parts = &unpacked.manifest.parts;
    let has = |p: &str| parts.iter().any(|x| x == p);

    // What replaces what, in the guide's order: config → channel auth → memory/sessions.
    let mut plan: Vec<(PathBuf, PathBuf)> = Vec::new();
    if has("config") {
        let target = layout.config.clone().ok_or_else(|| {
            Error::Refused("the archive holds a config file but none is in use here: pass --config FILE to say where it goes".into())
        })?;
        plan.push((unpacked.dir.join("config/config.yaml"), target));
    }
    if has("channel_auth") {
        plan.push((unpacked.dir.join("channels"), layout.channels.clone()));
    }
    if has("memory") || has("sessions") {
        plan.push((unpacked.dir.join("db/openclaw.db"), layout.db.clone()));
    }

    // Keep the current state as an archive of its own before touching anything.
    let pre_restore = create(
        layout,
        Include {
            memory: layout.db.exists(),
            sessions: layout.db.exists(),
            config: layout.config.as_ref().is_some_and(|c| c.exists()),
            channel_auth: true,
        },
        app_version,
        Some("pre-restore"),
        &mut |_, _, _| {},
    )?;

    // Stage each replacement beside its target (same directory, so the swap is a rename).
    for (from, target) in &plan {
        let new = with_suffix(target, NEW);
        remove_any(&new).map_err(io_err("cannot clean up", &new))?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_err("cannot create", parent))?;
        }
        if from.is_dir() {
            copy_tree(from, &new)?;
        } else if from.exists() {
            fs::copy(from, &new).map_err(io_err("cannot stage", &new))?;
        } else {
            // channel_auth with no files: an empty directory.
            fs::create_dir_all(&new).map_err(io_err("cannot stage", &new))?;
        }
    }
    // The database's WAL and shared-memory files belong to the old file; move them too.
    let mut steps: Vec<Step> = Vec::new();
    for (_, target) in &plan {
        steps.push(Step {
            target: target.clone(),
            had_original: target.exists(),
        });
    }
    if has("memory") || has("sessions") {
        for side in ["-wal", "-shm"] {
            let p = with_suffix(&layout.db, side);
            if p.exists() {
                steps.push(Step {
                    target: p,
                    had_original: true,
                });
            }
        }
    }
    let journal_path = layout.data_dir.join(JOURNAL);
    let journal = Journal {
        archive: archive.to_owned(),
        steps: steps.clone(),
    };
    let mut jf = File::create(&journal_path).map_err(io_err("cannot write", &journal_path))?;
    jf.write_all(&serde_json::to_vec_pretty(&journal).unwrap_or_default())
        .and_then(|()| jf.sync_all())
        .map_err(io_err("cannot write", &journal_path))?;

    let total = steps.len() as u64;
    for (i, step) in steps.iter().enumerate() {
        let old = with_suffix(&step.target, OLD);
        remove_any(&old).map_err(io_err("cannot clean up", &old))?;
        if step.had_original {
            fs::rename(&step.target, &old).map_err(io_err("cannot move aside", &step.target))?;
        }
        let new = with_suffix(&step.target, NEW);
        if new.exists() {
            fs::rename(&new, &step.target).map_err(io_err("cannot put in place", &step.target))?;
        }
        progress(Stage::Swap, i as u64 + 1, total);
    }
    // Commit point: without the journal there is nothing to roll back.
    fs::remove_file(&journal_path).map_err(io_err("cannot remove", &journal_path))?;
    for step in &steps {
        let _ = remove_any(&with_suffix(&step.target, OLD));
    }
    Ok(Restored {
        manifest: unpacked.manifest,
        pre_restore,
    })
}

#[cfg(test)]
mod tests;
