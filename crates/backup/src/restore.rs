//! Restore under a journal, and the roll-back of one that was interrupted.
//!
//! Every replacement is staged beside its target (`<target>.restore-new`, same directory, so
//! the swap is a rename), made durable (file and directory fsync), and only then is the journal
//! written (itself by write-fsync-rename). Each swap moves the original aside
//! (`<target>.pre-restore`) and the staged copy in. When all are done the targets' directories
//! are synced, and deleting the journal (synced too) is the commit: before it, the next start
//! rolls back; after it, the restored state is on disk even if the power goes.

use crate::fsx::{self, Scratch, remove_any, sync_dir, sync_parent};
use crate::unpack::{CHANNELS_DIR, CONFIG_MEMBER, DB_MEMBER, Limits, unpack_from};
use crate::{Created, Error, Include, Layout, Manifest, ProgressFn, Result, Stage, create, io_err};
use openclaw_fs::{create_new_private, create_private_dirs};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub(crate) const JOURNAL: &str = ".restore-journal.json";
/// The journal while it is written: never read, removed by recovery and the sweep.
pub(crate) const JOURNAL_TMP: &str = ".restore-journal.json.tmp";
/// Suffix of a staged replacement next to its target.
pub(crate) const NEW: &str = ".restore-new";
/// Suffix of the pre-restore original next to its target.
pub(crate) const OLD: &str = ".pre-restore";
/// Prefix of the directory a restore unpacks into, in the data dir.
pub(crate) const SCRATCH_PREFIX: &str = ".restore-scratch-";

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

pub(crate) fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub manifest: Manifest,
    /// The state before the restore, kept as a backup of its own.
    pub pre_restore: Created,
}

/// The parent directory of `p`, for fsync (`.` for a bare name).
fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Each distinct directory holding one of `paths`, in first-seen order.
fn parents<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in paths {
        let d = parent_of(p);
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// Rolls back a restore of the data dir `data_dir` that was interrupted (killed, power cut);
/// true if there was one. Needs nothing but the data dir: the journal names every path.
pub fn recover_interrupted(data_dir: &Path) -> Result<bool> {
    // A journal still being written when the process died: no swap had started (they start
    // only once the journal is in place), so there is nothing to roll back.
    let tmp = data_dir.join(JOURNAL_TMP);
    remove_any(&tmp).map_err(io_err("cannot remove", &tmp))?;
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
    // The originals are back under their names on disk before the journal that says how to
    // put them back goes.
    for dir in parents(journal.steps.iter().map(|s| s.target.as_path())) {
        sync_dir(&dir).map_err(io_err("cannot sync", &dir))?;
    }
    fs::remove_file(&journal_path).map_err(io_err("cannot remove", &journal_path))?;
    sync_dir(data_dir).map_err(io_err("cannot sync", data_dir))?;
    Ok(true)
}

/// Restores `archive` over `layout`: verifies it, backs up the current state (kept as its own
/// archive), then replaces config → channel auth → database (memory and sessions). Every
/// replacement is staged next to its target and swapped by rename under a journal, so an
/// interrupted restore is rolled back by [`recover_interrupted`]. The gateway must be stopped
/// and the caller must hold the data-dir lock (the sweep of leftovers relies on it).
pub fn restore(
    archive: &Path,
    layout: &Layout,
    app_version: &str,
    progress: ProgressFn<'_>,
) -> Result<Restored> {
    restore_with_limits(archive, layout, app_version, &Limits::DEFAULT, progress)
}

pub fn restore_with_limits(
    archive: &Path,
    layout: &Layout,
    app_version: &str,
    limits: &Limits,
    progress: ProgressFn<'_>,
) -> Result<Restored> {
    recover_interrupted(&layout.data_dir)?;
    create_private_dirs(&layout.data_dir).map_err(io_err("cannot create", &layout.data_dir))?;
    // What killed restores and backups left would otherwise stay for good.
    crate::sweep::sweep_after_recovery(layout);
    // In the data dir: the staged files are renamed from here into place, which needs the same
    // file system (config elsewhere is copied), and the data dir is swept at the next start.
    let scratch = Scratch::new_in(&layout.data_dir, SCRATCH_PREFIX)
        .map_err(io_err("cannot make a scratch dir in", &layout.data_dir))?;
    restore_from(archive, layout, app_version, limits, &scratch, progress)
}

/// What a restore puts where.
struct Planned {
    /// In the unpacked archive; `None` for channel auth with no files (an empty directory).
    from: Option<PathBuf>,
    target: PathBuf,
    is_dir: bool,
}

/// Moves `from` to `to` (same file system: a rename), or copies it privately when they are on
/// different file systems (a config file outside the data dir).
fn move_or_copy(from: &Path, to: &Path, is_dir: bool) -> Result<()> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            if is_dir {
                copy_tree(from, to)
            } else {
                copy_private(from, to)
            }
        }
        Err(e) => Err(io_err("cannot stage", to)(e)),
    }
}

fn copy_private(from: &Path, to: &Path) -> Result<()> {
    let mut src = File::open(from).map_err(io_err("cannot read", from))?;
    let mut dst = create_new_private(to).map_err(io_err("cannot stage", to))?;
    io::copy(&mut src, &mut dst).map_err(io_err("cannot stage", to))?;
    dst.flush().map_err(io_err("cannot stage", to))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    openclaw_fs::create_private_dir(to).map_err(io_err("cannot stage", to))?;
    for entry in fs::read_dir(from).map_err(io_err("cannot list", from))? {
        let entry = entry.map_err(io_err("cannot list", from))?;
        let kind = entry
            .file_type()
            .map_err(io_err("cannot stat", &entry.path()))?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            copy_private(&entry.path(), &dest)?;
        }
    }
    Ok(())
}

fn restore_from(
    archive: &Path,
    layout: &Layout,
    app_version: &str,
    limits: &Limits,
    scratch: &Scratch,
    progress: ProgressFn<'_>,
) -> Result<Restored> {
    let into = scratch.path().join("archive");
    let file = File::open(archive).map_err(io_err("cannot open", archive))?;
    let size = file
        .metadata()
        .map_err(io_err("cannot stat", archive))?
        .len();
    let unpacked = unpack_from(file, archive, size, &into, limits, progress)?;
    let parts = &unpacked.manifest.parts;
    let has = |p: &str| parts.iter().any(|x| x == p);

    // What replaces what, in the guide's order: config → channel auth → memory/sessions. The
    // unpacker has checked that each listed part has its files; a file target is only ever
    // replaced by a file.
    let mut plan: Vec<Planned> = Vec::new();
    if has("config") {
        let target = layout.config.clone().ok_or_else(|| {
            Error::Refused("the archive holds a config file but none is in use here: pass --config FILE to say where it goes".into())
        })?;
        plan.push(Planned {
            from: Some(unpacked.dir.join(CONFIG_MEMBER)),
            target,
            is_dir: false,
        });
    }
    if has("channel_auth") {
        let from = unpacked.dir.join(CHANNELS_DIR);
        plan.push(Planned {
            from: from.is_dir().then_some(from),
            target: layout.channels.clone(),
            is_dir: true,
        });
    }
    if has("memory") || has("sessions") {
        plan.push(Planned {
            from: Some(unpacked.dir.join(DB_MEMBER)),
            target: layout.db.clone(),
            is_dir: false,
        });
    }
    for p in &plan {
        if let Some(from) = &p.from {
            let meta = fs::symlink_metadata(from).map_err(io_err("cannot stat", from))?;
            if meta.is_dir() != p.is_dir || !(meta.is_dir() || meta.is_file()) {
                return Err(Error::Refused(format!(
                    "the archive's copy of {} is not a {}; nothing was changed",
                    p.target.display(),
                    if p.is_dir { "directory" } else { "file" }
                )));
            }
        }
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

    // Stage each replacement beside its target, private and on disk.
    for p in &plan {
        let new = with_suffix(&p.target, NEW);
        remove_any(&new).map_err(io_err("cannot clean up", &new))?;
        let parent = parent_of(&p.target);
        create_private_dirs(&parent).map_err(io_err("cannot create", &parent))?;
        match &p.from {
            Some(from) => move_or_copy(from, &new, p.is_dir)?,
            None => openclaw_fs::create_private_dir(&new).map_err(io_err("cannot stage", &new))?,
        }
        if p.is_dir {
            fsx::seal_tree(&new).map_err(io_err("cannot sync", &new))?;
        } else {
            openclaw_fs::set_mode(&new, openclaw_fs::FILE_MODE)
                .map_err(io_err("cannot stage", &new))?;
            fsx::sync_file(&new).map_err(io_err("cannot sync", &new))?;
        }
    }
    for dir in parents(plan.iter().map(|p| p.target.as_path())) {
        sync_dir(&dir).map_err(io_err("cannot sync", &dir))?;
    }

    let mut steps: Vec<Step> = plan
        .iter()
        .map(|p| Step {
            target: p.target.clone(),
            had_original: p.target.exists(),
        })
        .collect();
    // The database's WAL and shared-memory files belong to the old file; move them too.
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
    write_journal(
        &layout.data_dir,
        &Journal {
            archive: archive.to_owned(),
            steps: steps.clone(),
        },
    )?;

    let total = steps.len() as u64;
    for (i, step) in steps.iter().enumerate() {
        let old = with_suffix(&step.target, OLD);
        remove_any(&old).map_err(io_err("cannot clean up", &old))?;
        if step.had_original {
            fs::rename(&step.target, &old).map_err(io_err("cannot move aside", &step.target))?;
        }
        let new = with_suffix(&step.target, NEW);
        if new.exists() {
            fsx::trace(|| format!("rename {}", step.target.display()));
            fs::rename(&new, &step.target).map_err(io_err("cannot put in place", &step.target))?;
        }
        progress(Stage::Swap, i as u64 + 1, total);
    }
    // The renames reach the disk before the journal that can undo them is deleted.
    for dir in parents(steps.iter().map(|s| s.target.as_path())) {
        sync_dir(&dir).map_err(io_err("cannot sync", &dir))?;
    }
    // Commit point: without the journal there is nothing to roll back. Synced, so that a power
    // cut after "restored" cannot bring the journal back and roll the restore back.
    fsx::trace(|| "remove journal".to_owned());
    fs::remove_file(&journal_path).map_err(io_err("cannot remove", &journal_path))?;
    sync_dir(&layout.data_dir).map_err(io_err("cannot sync", &layout.data_dir))?;
    for step in &steps {
        let _ = remove_any(&with_suffix(&step.target, OLD));
    }
    Ok(Restored {
        manifest: unpacked.manifest,
        pre_restore,
    })
}

/// Writes the journal whole or not at all: to a temporary name, synced, renamed, the directory
/// synced. A torn journal would stop every later start (it cannot be read to roll back).
fn write_journal(data_dir: &Path, journal: &Journal) -> Result<()> {
    let tmp = data_dir.join(JOURNAL_TMP);
    let path = data_dir.join(JOURNAL);
    let text = serde_json::to_vec_pretty(journal)
        .map_err(|e| Error::Refused(format!("cannot encode the restore journal: {e}")))?;
    remove_any(&tmp).map_err(io_err("cannot clean up", &tmp))?;
    let mut f = create_new_private(&tmp).map_err(io_err("cannot write", &tmp))?;
    f.write_all(&text)
        .and_then(|()| f.sync_all())
        .map_err(io_err("cannot write", &tmp))?;
    drop(f);
    fs::rename(&tmp, &path).map_err(io_err("cannot write", &path))?;
    sync_parent(&path).map_err(io_err("cannot sync", data_dir))?;
    fsx::trace(|| "journal written".to_owned());
    Ok(())
}
