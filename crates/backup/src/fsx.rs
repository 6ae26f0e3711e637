//! File-system helpers shared by create, unpack, restore and the sweep: fsync of files and
//! directories (traced for the ordering test), sealing a staged tree, and scratch directories
//! that say (by a lock) whether a live process still uses them. Owner-only modes and free
//! space are `openclaw_fs`'s.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use openclaw_fs::{DIR_MODE, FILE_MODE, create_private_dir, set_mode};

/// fsync of a directory: makes the names created, renamed or removed in it durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    trace(|| format!("sync dir {}", dir.display()));
    File::open(dir)?.sync_all()
}

/// fsync of the directory holding `path`.
pub(crate) fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

pub(crate) fn sync_file(path: &Path) -> io::Result<()> {
    trace(|| format!("sync file {}", path.display()));
    File::open(path)?.sync_all()
}

/// Makes a staged tree private and durable: every file 0600 and fsynced, every directory 0700
/// and fsynced after its entries.
pub(crate) fn seal_tree(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            seal_tree(&path)?;
        } else if kind.is_file() {
            set_mode(&path, FILE_MODE)?;
            sync_file(&path)?;
        } else {
            // The unpacker writes plain files and directories only.
            return Err(io::Error::other(format!(
                "{} is neither a file nor a directory",
                path.display()
            )));
        }
    }
    set_mode(dir, DIR_MODE)?;
    sync_dir(dir)
}

/// Removes a file or a directory tree; a missing path is fine.
pub(crate) fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sizes for people: `1.5 GiB`.
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `<pid>-<n>`: unique among the temporary names of all processes alive at once, and says
/// which process made a leftover (the kill -9 test looks for its victim's).
pub(crate) fn unique_tag() -> String {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("p{}-{n}", std::process::id())
}

/// A private temporary directory, removed on drop (also when unwinding from an error or a
/// panic). While it lives, its process holds an exclusive lock on it, so a sweep in a directory
/// that others share (the system temp dir) can tell a live scratch from one left by a kill -9:
/// the kernel drops the lock with the process.
#[derive(Debug)]
pub(crate) struct Scratch {
    path: PathBuf,
    _lock: File,
}

impl Scratch {
    /// `parent/<prefix><unique>`; `parent` must exist.
    pub(crate) fn new_in(parent: &Path, prefix: &str) -> io::Result<Self> {
        let stamp = crate::timestamp_name(jiff::Timestamp::now());
        let path = parent.join(format!("{prefix}{stamp}-{}", unique_tag()));
        create_private_dir(&path)?;
        let lock = File::open(&path).and_then(|f| f.try_lock().map(|()| f).map_err(lock_err));
        match lock {
            Ok(lock) => Ok(Self { path, _lock: lock }),
            Err(e) => {
                let _ = fs::remove_dir_all(&path);
                Err(e)
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

pub(crate) fn lock_err(e: fs::TryLockError) -> io::Error {
    match e {
        fs::TryLockError::Error(e) => e,
        fs::TryLockError::WouldBlock => io::Error::from(io::ErrorKind::WouldBlock),
    }
}

// What restore syncs and renames, in order, for the test that checks fsync happens before the
// journal goes (a power cut cannot be simulated in a unit test; the order can be checked).
#[cfg(test)]
thread_local! {
    pub(crate) static TRACE: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
pub(crate) fn trace(event: impl FnOnce() -> String) {
    TRACE.with(|t| t.borrow_mut().push(event()));
}

#[cfg(not(test))]
#[inline(always)]
pub(crate) fn trace(_event: impl FnOnce() -> String) {}
