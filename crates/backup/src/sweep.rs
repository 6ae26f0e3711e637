//! The sweep of leftovers: what a create, verify or restore killed half-way (kill -9, OOM
//! killer, power cut) left under temporary names, removed at the next start.
//!
//! Who may be using what decides where the sweep may look:
//! - the data dir (restore scratch, old verify scratch, the journal's temporary file) and the
//!   files beside the restore targets (`*.restore-new`, `*.pre-restore`) are only made by a
//!   restore, which holds the data-dir lock, as does the gateway: the caller of [`sweep`]
//!   holds it, so nothing there is in use;
//! - the backups dir is written by `backup create` while a gateway runs: every create holds a
//!   shared lock on the directory and the sweep takes it exclusively, or skips the directory;
//! - the system temp dir is shared with everyone: a verify's scratch is locked by its process
//!   while it lives (see `fsx::Scratch`), and only unlocked ones of ours are removed.

use crate::fsx::remove_any;
use crate::restore::{JOURNAL, JOURNAL_TMP, NEW, OLD, with_suffix};
use crate::unpack::VERIFY_PREFIX;
use crate::{Layout, Result, recover_interrupted};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What [`sweep`] did.
#[derive(Debug, Default)]
pub struct Swept {
    /// An interrupted restore was rolled back first.
    pub rolled_back: bool,
    /// Leftovers removed.
    pub removed: Vec<PathBuf>,
    /// Leftovers that could not be removed, and why (worth a warning, not a refusal to start).
    pub failed: Vec<(PathBuf, String)>,
    /// The backups dir was not swept: a `backup create` is writing into it right now.
    pub backups_busy: bool,
}

impl Swept {
    fn remove(&mut self, path: PathBuf) {
        match remove_any(&path) {
            Ok(()) => self.removed.push(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => self.failed.push((path, e.to_string())),
        }
    }
}

/// Rolls back an interrupted restore (a journal says one was in progress: that comes first,
/// since its `.pre-restore` files are the only copy of the old data), then removes the stale
/// leftovers of backups, verifies and restores from the data dir, beside the restore targets,
/// from the backups dir and (ours only) from the system temp dir.
///
/// For a caller that holds the data-dir lock: the gateway at start-up, `backup restore`.
/// Errors only when the roll-back fails; a leftover that cannot be removed is reported in
/// [`Swept::failed`].
pub fn sweep(layout: &Layout) -> Result<Swept> {
    let journal_tmp = layout.data_dir.join(JOURNAL_TMP);
    let had_tmp = fs::symlink_metadata(&journal_tmp).is_ok();
    let rolled_back = recover_interrupted(&layout.data_dir)?;
    let mut swept = sweep_after_recovery(layout);
    swept.rolled_back = rolled_back;
    // Recovery removes a journal that was never finished; it is a leftover all the same.
    if had_tmp {
        swept.removed.push(journal_tmp);
    }
    Ok(swept)
}

/// [`sweep`] once no journal is left.
pub(crate) fn sweep_after_recovery(layout: &Layout) -> Swept {
    let mut swept = Swept::default();
    for name in names_in(&layout.data_dir, &mut swept) {
        // The journal itself is never a leftover: recovery removes it when it is done.
        let ours = name != JOURNAL
            && (name.starts_with(".restore-")
                || name.starts_with(".verify-")
                || name == JOURNAL_TMP);
        if ours {
            swept.remove(layout.data_dir.join(&name));
        }
    }
    let mut targets = vec![layout.db.clone(), layout.channels.clone()];
    targets.extend(["-wal", "-shm"].map(|s| with_suffix(&layout.db, s)));
    targets.extend(layout.config.clone());
    for target in targets {
        for suffix in [NEW, OLD] {
            let p = with_suffix(&target, suffix);
            if fs::symlink_metadata(&p).is_ok() {
                swept.remove(p);
            }
        }
    }
    sweep_backups_into(&layout.backups, &mut swept);
    sweep_temp_dir(&crate::default_scratch(), &mut swept);
    swept
}

fn names_in(dir: &Path, swept: &mut Swept) -> Vec<String> {
    match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            swept
                .failed
                .push((dir.to_owned(), format!("cannot list: {e}")));
            Vec::new()
        }
    }
}

/// A temporary name `create` uses in the backups dir.
fn is_create_leftover(name: &str) -> bool {
    name.starts_with(crate::STAGING_PREFIX)
        || (name.starts_with('.') && name.ends_with(crate::PARTIAL_SUFFIX))
}

/// Sweeps the backups dir if no `create` is writing into it; safe without the data-dir lock.
pub(crate) fn sweep_backups_dir(dir: &Path) -> Swept {
    let mut swept = Swept::default();
    sweep_backups_into(dir, &mut swept);
    swept
}

fn sweep_backups_into(dir: &Path, swept: &mut Swept) {
    let lock = match File::open(dir) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => {
            swept
                .failed
                .push((dir.to_owned(), format!("cannot open: {e}")));
            return;
        }
    };
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            swept.backups_busy = true;
            return;
        }
        // A file system without locks: nobody can tell a live create from a dead one.
        Err(fs::TryLockError::Error(e)) => {
            swept
                .failed
                .push((dir.to_owned(), format!("cannot lock to sweep: {e}")));
            return;
        }
    }
    for name in names_in(dir, swept) {
        if is_create_leftover(&name) {
            swept.remove(dir.join(name));
        }
    }
    drop(lock);
}

/// How old an unlocked verify scratch in the shared temp dir must be before it goes: a verify
/// locks its scratch right after making it, and this leaves that instant alone.
const TEMP_GRACE: Duration = Duration::from_secs(60);

/// Removes verify scratch dirs of ours that no live process holds. Failures are not reported:
/// the temp dir is shared, another user's scratch is theirs to clean.
pub(crate) fn sweep_temp_dir(dir: &Path, swept: &mut Swept) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(VERIFY_PREFIX)
        {
            continue;
        }
        let path = entry.path();
        let old = entry
            .metadata()
            .ok()
            .filter(|m| m.is_dir())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= TEMP_GRACE);
        if !old {
            continue;
        }
        let Ok(lock) = File::open(&path) else {
            continue;
        };
        if lock.try_lock().is_ok() && fs::remove_dir_all(&path).is_ok() {
            swept.removed.push(path);
        }
    }
}

/// Held by a `create` while it writes into the backups dir (shared: creates do not exclude one
/// another, only the sweep).
pub(crate) struct BackupsDirLock {
    _lock: File,
}

impl BackupsDirLock {
    pub(crate) fn shared(dir: &Path) -> io::Result<Self> {
        let f = File::open(dir)?;
        match f.lock_shared() {
            Ok(()) => Ok(Self { _lock: f }),
            // A file system without locks: create goes on (the sweep skips such a directory).
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(Self { _lock: f }),
            Err(e) => Err(e),
        }
    }
}
