//! Reading an archive: every entry checked before a byte of it is written, every file's size
//! enforced while it streams, the whole bounded before it starts (entries, bytes, free space).
//!
//! `MANIFEST.json` is the first entry of every archive `create` writes, so it is read first and
//! everything after it is held to it: a member it does not list is refused before it is
//! written, a member whose size differs from its entry is refused before it is written, and no
//! member is read past that size. The decompressed stream as a whole is held to what the
//! manifest declares (plus tar's own headers), which also bounds what the tar reader keeps in
//! memory for long names and extended headers.

use crate::fsx::{self, human};
use crate::{Error, FileEntry, MANIFEST, Manifest, ProgressFn, Result, Stage, invalid, io_err};
use openclaw_fs::{Space, create_new_private, create_private_dir, create_private_dirs};
use sha2::{Digest, Sha256};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// Files an archive may hold. A WhatsApp session keeps a few thousand small files (pre-keys,
/// sender keys); this is twenty times more, and keeps the manifest's file list (held in memory)
/// to tens of megabytes.
pub const MAX_FILES: u64 = 100_000;
/// Bytes of files an archive may declare. A personal assistant's database is megabytes to a
/// few gigabytes (the bench restores 1 GB); this leaves room for years of that while refusing
/// a manifest that asks for a disk array. The free-space check below is the finer guard.
pub const MAX_TOTAL_BYTES: u64 = 64 << 30;
/// Size of `MANIFEST.json` that is read: about 330 bytes for each of [`MAX_FILES`] entries.
pub const MAX_MANIFEST_BYTES: u64 = 32 << 20;
/// Left free on the destination after unpacking: room for the running gateway's WAL and logs to
/// go on growing, so that a verify or restore never takes the last bytes of the disk the
/// database is on.
pub const FREE_SPACE_MARGIN: u64 = 128 << 20;
/// Inodes left free after unpacking, for the same reason.
const FREE_FILES_MARGIN: u64 = 1024;

/// Tar's bytes around a member: its 512-byte header, padding to 512, and room for a GNU long
/// name or pax header (paths longer than 100 bytes).
const PER_ENTRY_OVERHEAD: u64 = 512 + 512 + 8192;
/// Room for directory entries and the end-of-archive blocks, which no manifest lists.
const STREAM_SLACK: u64 = 1 << 20;

/// Bounds on reading an archive. [`Limits::DEFAULT`] is what the command line and the gateway
/// use; tests and fuzzing may lower them.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_files: u64,
    pub max_total_bytes: u64,
    /// Bytes kept free on the destination's file system.
    pub free_space_margin: u64,
    /// Free room on the file system of a directory ([`crate::free_space`], statvfs); a
    /// parameter so a test can play a full disk.
    pub free_space: fn(&Path) -> io::Result<Space>,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_files: MAX_FILES,
        max_total_bytes: MAX_TOTAL_BYTES,
        free_space_margin: FREE_SPACE_MARGIN,
        free_space: openclaw_fs::free_space,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An archive read, checked and unpacked into a directory.
#[derive(Debug)]
pub struct Unpacked {
    pub manifest: Manifest,
    pub dir: PathBuf,
}

/// Where each part's files live in an archive.
pub(crate) const DB_MEMBER: &str = "db/openclaw.db";
pub(crate) const CONFIG_MEMBER: &str = "config/config.yaml";
pub(crate) const CHANNELS_DIR: &str = "channels";
const PARTS: [&str; 4] = ["memory", "sessions", "config", "channel_auth"];

/// The part a member path belongs to (`db`, `config`, `channels`), or `None` when it is not a
/// path an archive holds.
fn member_kind(path: &str) -> Option<&'static str> {
    if path == DB_MEMBER {
        return Some("db");
    }
    if path == CONFIG_MEMBER {
        return Some("config");
    }
    let rest = path.strip_prefix("channels/")?;
    let clean = !rest.is_empty()
        && rest
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'));
    clean.then_some("channels")
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

fn slash_joined(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Checks a manifest against the format and the limits before anything it lists is written:
/// version, file count, declared total, member paths, and that every part it lists has its
/// files (a `config` part without `config/config.yaml` would otherwise restore as an empty
/// directory where the config file was).
fn check_manifest(archive: &Path, bytes: &[u8], limits: &Limits) -> Result<Manifest> {
    #[derive(serde::Deserialize)]
    struct Version {
        format_version: Option<serde_json::Value>,
    }
    let version: Version = serde_json::from_slice(bytes)
        .map_err(|e| invalid(archive, format!("MANIFEST.json is not JSON ({e})")))?;
    if let Some(found) = version.format_version.as_ref().and_then(|v| v.as_u64())
        && found > u64::from(crate::FORMAT_VERSION)
    {
        return Err(Error::NewerFormat {
            path: archive.to_owned(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
            supported: crate::FORMAT_VERSION,
        });
    }
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| invalid(archive, format!("MANIFEST.json is malformed ({e})")))?;
    let count = manifest.files.len() as u64;
    if count > limits.max_files {
        return Err(invalid(
            archive,
            format!(
                "its manifest lists {count} files; at most {} are accepted",
                limits.max_files
            ),
        ));
    }
    let total = manifest
        .files
        .iter()
        .try_fold(0u64, |sum, f| sum.checked_add(f.size));
    match total {
        Some(t) if t <= limits.max_total_bytes => {}
        _ => {
            return Err(invalid(
                archive,
                format!(
                    "its manifest declares {} of files; at most {} are accepted",
                    total.map_or_else(|| "more than 16 EiB".into(), human),
                    human(limits.max_total_bytes)
                ),
            ));
        }
    }
    for part in &manifest.parts {
        if !PARTS.contains(&part.as_str()) {
            return Err(invalid(
                archive,
                format!(
                    "its manifest lists the part `{part}`, which this openclaw does not know (known: {})",
                    PARTS.join(", ")
                ),
            ));
        }
    }
    let has = |p: &str| manifest.parts.iter().any(|x| x == p);
    let mut paths = HashSet::new();
    for f in &manifest.files {
        let kind = member_kind(&f.path).ok_or_else(|| {
            invalid(
                archive,
                format!(
                    "its manifest lists `{}`, which is not a file an openclaw archive holds",
                    f.path
                ),
            )
        })?;
        let owned = match kind {
            "db" => has("memory") || has("sessions"),
            "config" => has("config"),
            _ => has("channel_auth"),
        };
        if !owned {
            return Err(invalid(
                archive,
                format!(
                    "its manifest lists `{}` but not the part it belongs to",
                    f.path
                ),
            ));
        }
        if !paths.insert(f.path.as_str()) {
            return Err(invalid(
                archive,
                format!("its manifest lists `{}` twice", f.path),
            ));
        }
    }
    for part in &manifest.parts {
        let member = match part.as_str() {
            "memory" | "sessions" => DB_MEMBER,
            "config" => CONFIG_MEMBER,
            // Channel auth may be no files at all.
            _ => continue,
        };
        if !paths.contains(member) {
            return Err(invalid(
                archive,
                format!(
                    "its manifest lists the part `{part}` but not its file `{member}`; the archive is incomplete, take a new backup"
                ),
            ));
        }
    }
    Ok(manifest)
}

/// Refuses to start when the files would not fit on `dir`'s file system with the margin left.
fn check_space(dir: &Path, manifest: &Manifest, limits: &Limits) -> Result<()> {
    let declared: u64 = manifest.files.iter().map(|f| f.size).sum();
    let space = (limits.free_space)(dir).map_err(io_err("cannot read the free space of", dir))?;
    let needed = declared.saturating_add(limits.free_space_margin);
    if space.bytes < needed {
        return Err(Error::NoSpace {
            dir: dir.to_owned(),
            needed: human(needed),
            free: human(space.bytes),
            declared: human(declared),
            margin: human(limits.free_space_margin),
        });
    }
    // Each file and (at most) one directory per file, and the margin.
    let files = (manifest.files.len() as u64)
        .saturating_mul(2)
        .saturating_add(FREE_FILES_MARGIN);
    if let Some(free) = space.files
        && free < files
    {
        return Err(Error::Refused(format!(
            "not enough free inodes on the file system of {}: unpacking needs {files}, {free} are free; free some there or unpack elsewhere",
            dir.display()
        )));
    }
    Ok(())
}

/// The decompressed tar stream, cut off once it passes what the manifest allows: a member's
/// contents are already held to their sizes, this bounds what tar itself reads (headers, long
/// names, pax records, skipped padding) so no crafted archive makes it inflate without end.
struct Budget<R> {
    inner: R,
    left: Rc<Cell<u64>>,
    tripped: Rc<Cell<bool>>,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = self.left.get();
        if left == 0 {
            self.tripped.set(true);
            return Err(io::Error::other(
                "the archive unpacks to more than its manifest declares",
            ));
        }
        let max = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left.set(left - n as u64);
        Ok(n)
    }
}

struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get().saturating_add(n as u64));
        Ok(n)
    }
}

/// Reads `archive` into `into` (created 0700; it must not exist, its parent must), checking
/// every entry's path and kind, every file's size and SHA-256 against the manifest, the format
/// version, and the database copy with `PRAGMA integrity_check`. Bounded by [`Limits::DEFAULT`].
pub fn unpack_verified(archive: &Path, into: &Path, progress: ProgressFn<'_>) -> Result<Unpacked> {
    unpack_with_limits(archive, into, &Limits::DEFAULT, progress)
}

pub fn unpack_with_limits(
    archive: &Path,
    into: &Path,
    limits: &Limits,
    progress: ProgressFn<'_>,
) -> Result<Unpacked> {
    let (file, size) = open_archive(archive)?;
    unpack_from(file, archive, size, into, limits, progress)
}

/// The archive file and its size (the progress bars' total).
fn open_archive(archive: &Path) -> Result<(File, u64)> {
    let file = File::open(archive).map_err(io_err("cannot open", archive))?;
    let size = file
        .metadata()
        .map_err(io_err("cannot stat", archive))?
        .len();
    Ok((file, size))
}

/// [`unpack_with_limits`] from any reader; `name` is what errors call it, `size` its length in
/// bytes for progress (0 when unknown). What a fuzzer drives: it must fail, never panic.
pub(crate) fn unpack_from(
    source: impl Read,
    name: &Path,
    size: u64,
    into: &Path,
    limits: &Limits,
    progress: ProgressFn<'_>,
) -> Result<Unpacked> {
    let archive = name;
    let compressed = Rc::new(Cell::new(0u64));
    let first_budget = MAX_MANIFEST_BYTES + 2 * PER_ENTRY_OVERHEAD + STREAM_SLACK;
    let left = Rc::new(Cell::new(first_budget));
    let tripped = Rc::new(Cell::new(false));
    let gz = flate2::read::GzDecoder::new(Counting {
        inner: source,
        count: compressed.clone(),
    });
    let mut tar = tar::Archive::new(Budget {
        inner: gz,
        left: left.clone(),
        tripped: tripped.clone(),
    });
    create_private_dir(into).map_err(io_err("cannot create", into))?;
    let broken = |e: io::Error| {
        if tripped.get() {
            invalid(
                archive,
                "it unpacks to more than its manifest declares (a damaged or hostile archive, such as a decompression bomb); reading stopped there",
            )
        } else {
            invalid(
                archive,
                format!("the archive is truncated or corrupt ({e})"),
            )
        }
    };
    let mut manifest: Option<Manifest> = None;
    let mut expected: HashMap<String, FileEntry> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut entries = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    for entry in tar.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        entries += 1;
        // Directories and the manifest are entries too; a stream of empty directory entries
        // must end somewhere.
        if entries > limits.max_files.saturating_add(STREAM_SLACK / 512) {
            return Err(invalid(
                archive,
                format!(
                    "it has more than {} entries; at most {} files are accepted",
                    entries - 1,
                    limits.max_files
                ),
            ));
        }
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
                    "entry `{}` is a link, device or other special entry; only plain files are allowed",
                    raw_name.display()
                ),
            ));
        }
        let member = slash_joined(&rel);
        if manifest.is_none() {
            if member != MANIFEST {
                return Err(invalid(
                    archive,
                    format!(
                        "it has no MANIFEST.json as its first entry (it starts with `{member}`); every openclaw archive starts with one"
                    ),
                ));
            }
            let len = entry.size();
            if len > MAX_MANIFEST_BYTES {
                return Err(invalid(
                    archive,
                    format!(
                        "its MANIFEST.json is {}; at most {} is accepted",
                        human(len),
                        human(MAX_MANIFEST_BYTES)
                    ),
                ));
            }
            let mut bytes = Vec::new();
            (&mut entry)
                .take(len)
                .read_to_end(&mut bytes)
                .map_err(broken)?;
            if bytes.len() as u64 != len {
                return Err(broken(io::ErrorKind::UnexpectedEof.into()));
            }
            let m = check_manifest(archive, &bytes, limits)?;
            check_space(into, &m, limits)?;
            // From here the stream may hold what the manifest declares, and tar's framing.
            let declared: u64 = m.files.iter().map(|f| f.size).sum();
            let allowed = declared
                .saturating_add((m.files.len() as u64 + 2).saturating_mul(PER_ENTRY_OVERHEAD))
                .saturating_add(STREAM_SLACK);
            let used = first_budget - left.get();
            left.set(allowed.saturating_sub(used));
            expected = m
                .files
                .iter()
                .map(|f| (f.path.clone(), f.clone()))
                .collect();
            manifest = Some(m);
            continue;
        }
        if member == MANIFEST {
            return Err(invalid(archive, "MANIFEST.json appears twice"));
        }
        let Some(want) = expected.get(&member) else {
            return Err(invalid(
                archive,
                format!("`{member}` is not listed in the manifest"),
            ));
        };
        if !seen.insert(member.clone()) {
            return Err(invalid(archive, format!("`{member}` appears twice")));
        }
        let len = entry.size();
        if len != want.size {
            return Err(invalid(
                archive,
                format!(
                    "`{member}` is {len} bytes, the manifest says {}; nothing of it was written",
                    want.size
                ),
            ));
        }
        let dest = into.join(&rel);
        if let Some(parent) = dest.parent() {
            create_private_dirs(parent).map_err(io_err("cannot create", parent))?;
        }
        let mut out =
            BufWriter::new(create_new_private(&dest).map_err(io_err("cannot write", &dest))?);
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        // Never more than the manifest's size, whatever the header said.
        let mut contents = (&mut entry).take(want.size);
        loop {
            let n = contents.read(&mut buf).map_err(broken)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(io_err("cannot write", &dest))?;
            written += n as u64;
        }
        out.flush().map_err(io_err("cannot write", &dest))?;
        if written != want.size {
            return Err(broken(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("`{member}` ends after {written} of {} bytes", want.size),
            )));
        }
        if hex::encode(hasher.finalize()) != want.sha256 {
            return Err(invalid(
                archive,
                format!(
                    "`{member}` does not match its SHA-256 in the manifest (damaged or altered)"
                ),
            ));
        }
        progress(Stage::Verify, compressed.get().min(size), size);
    }
    // Read what follows the end of the tar (padding to the record size) to the end of the
    // gzip stream: only there is its CRC checked, and a cut-off trailer is a damaged archive.
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(broken)?;
    let manifest = manifest.ok_or_else(|| invalid(archive, "it has no MANIFEST.json"))?;
    if let Some(missing) = manifest.files.iter().find(|f| !seen.contains(&f.path)) {
        return Err(invalid(
            archive,
            format!("`{}` is listed in the manifest but missing", missing.path),
        ));
    }
    let db = into.join(DB_MEMBER);
    if db.exists() {
        check_database(archive, &db, progress)?;
    }
    Ok(Unpacked {
        manifest,
        dir: into.to_owned(),
    })
}

fn check_database(archive: &Path, db: &Path, progress: ProgressFn<'_>) -> Result<()> {
    progress(Stage::CheckDatabase, 0, 1);
    let check = openclaw_store::check_file(db)
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
    Ok(())
}

/// Prefix of the directory a verify unpacks into, inside the scratch dir it is given.
pub(crate) const VERIFY_PREFIX: &str = ".openclaw-verify-";

/// Where `openclaw backup verify` (and `doctor`) unpack: the system temp dir (`$TMPDIR`).
///
/// Not the data dir: a verify runs while the gateway serves, and must neither take the disk
/// the database writes to nor leave anything among the live files. Not the backups dir
/// either: it is `<data dir>/backups` by default, the same disk. The temp dir is cleaned by the
/// OS (boot, systemd-tmpfiles) even when a verify is killed and nothing of ours runs again;
/// the free-space check refuses a verify that does not fit there, and says to set `TMPDIR`.
pub fn default_scratch() -> PathBuf {
    std::env::temp_dir()
}

/// Verifies an archive without keeping what it unpacks: unpacks into a private directory made
/// inside `scratch` (see [`default_scratch`]), removed afterwards, also on error.
pub fn verify(archive: &Path, scratch: &Path, progress: ProgressFn<'_>) -> Result<Manifest> {
    verify_with_limits(archive, scratch, &Limits::DEFAULT, progress)
}

pub fn verify_with_limits(
    archive: &Path,
    scratch: &Path,
    limits: &Limits,
    progress: ProgressFn<'_>,
) -> Result<Manifest> {
    let (file, size) = open_archive(archive)?;
    verify_from(file, archive, size, scratch, limits, progress)
}

/// Verifies an archive read from `source` (any bytes: this is what the fuzzer calls; it returns
/// an error for anything that is not a good archive and never panics). `name` is what errors
/// call it.
pub fn verify_reader(
    source: impl Read,
    name: &Path,
    scratch: &Path,
    limits: &Limits,
) -> Result<Manifest> {
    verify_from(source, name, 0, scratch, limits, &mut |_, _, _| {})
}

fn verify_from(
    source: impl Read,
    name: &Path,
    size: u64,
    scratch: &Path,
    limits: &Limits,
    progress: ProgressFn<'_>,
) -> Result<Manifest> {
    let dir = fsx::Scratch::new_in(scratch, VERIFY_PREFIX)
        .map_err(io_err("cannot make a scratch dir in", scratch))?;
    let into = dir.path().join("archive");
    unpack_from(source, name, size, &into, limits, progress).map(|u| u.manifest)
}
