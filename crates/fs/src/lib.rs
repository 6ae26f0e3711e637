//! Owner-only files and directories, and the free space of a file system.
//!
//! What the gateway, its store, its backups and the device node write holds conversations,
//! tokens, keys and channel credentials, so it is created 0600 (directories 0700) whatever the
//! process umask, and what an older version left open is tightened. One place for that, used
//! by every crate that writes such files; it knows nothing of what the files are, and does no
//! durability work (syncing is its callers' policy).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;

/// Files: read and write for the owner only.
pub const FILE_MODE: u32 = 0o600;
/// Directories: the owner only.
pub const DIR_MODE: u32 = 0o700;

/// Sets exactly `mode` on `path`. The umask can only take bits away at creation (a umask of
/// 0277 would leave 0400), so a mode asked for at creation is set again after the fact.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// [`set_mode`] on an open file.
pub fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (file, mode);
        Ok(())
    }
}

/// Takes every group and other bit off `path` (0644 → 0600, 0755 → 0700), leaving the
/// owner's as they are; costs a `stat` when there is nothing to take.
pub fn make_owner_only(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            set_mode(path, mode & !0o077)?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Creates a new file (it must not exist yet), 0600.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    set_file_mode(&file, FILE_MODE)?;
    Ok(file)
}

/// Opens `path` for writing, created or truncated, and makes it 0600 (an existing file keeps
/// its mode on open).
pub fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    let file = options.open(path)?;
    set_file_mode(&file, FILE_MODE)?;
    Ok(file)
}

/// Writes `bytes` to `path` through [`create_private`].
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    create_private(path)?.write_all(bytes)
}

/// How to open a file for appending, creating it 0600 (for code that opens its files itself,
/// such as the log rotation).
pub fn private_append_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Opens `path` for appending, creating it 0600; one that exists is made owner-only.
pub fn open_append_private(path: &Path) -> io::Result<File> {
    let file = private_append_options().open(path)?;
    make_owner_only(path)?;
    Ok(file)
}

/// Creates a new directory (it must not exist yet; its parent must), 0700.
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(path)?;
    set_mode(path, DIR_MODE)
}

/// Creates `path` and its missing parents, each new one 0700. An existing directory is left
/// as it is: [`ensure_private_dir`] also tightens one.
pub fn create_private_dirs(path: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(path)
}

/// Creates `path` (and missing parents) and makes it 0700, also when it existed (an older
/// version made it 0755). A directory this process may not chmod (another owner: a mounted
/// volume, a shared folder) is left as it is: what goes into it is 0600 anyway.
pub fn ensure_private_dir(path: &Path) -> io::Result<()> {
    create_private_dirs(path)?;
    match set_mode(path, DIR_MODE) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

/// Room on a file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes an unprivileged process may still write.
    pub bytes: u64,
    /// The file system's size in bytes.
    pub total: u64,
    /// Files (inodes) that may still be created; `None` when the file system does not count
    /// them (btrfs, some network file systems report zero).
    pub files: Option<u64>,
}

/// [`Space`] of the file system `path` is on (statvfs).
pub fn free_space(path: &Path) -> io::Result<Space> {
    let st = rustix::fs::statvfs(path)?;
    Ok(Space {
        bytes: st.f_bavail.saturating_mul(st.f_frsize),
        total: st.f_blocks.saturating_mul(st.f_frsize),
        files: (st.f_files > 0).then_some(st.f_favail),
    })
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn what_it_creates_is_private_and_what_was_open_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_private(&d.join("a"), b"x").unwrap();
        assert_eq!(mode(&d.join("a")), 0o600);
        fs::write(d.join("b"), b"x").unwrap();
        set_mode(&d.join("b"), 0o644).unwrap();
        write_private(&d.join("b"), b"y").unwrap();
        assert_eq!(
            mode(&d.join("b")),
            0o600,
            "an existing file is made private"
        );
        drop(create_new_private(&d.join("c")).unwrap());
        assert_eq!(mode(&d.join("c")), 0o600);
        assert!(
            create_new_private(&d.join("c")).is_err(),
            "it must not exist"
        );
        set_mode(&d.join("c"), 0o644).unwrap();
        drop(open_append_private(&d.join("c")).unwrap());
        assert_eq!(mode(&d.join("c")), 0o600);

        create_private_dirs(&d.join("x/y")).unwrap();
        assert_eq!((mode(&d.join("x")), mode(&d.join("x/y"))), (0o700, 0o700));
        set_mode(&d.join("x"), 0o755).unwrap();
        ensure_private_dir(&d.join("x")).unwrap();
        assert_eq!(mode(&d.join("x")), 0o700);
        create_private_dir(&d.join("z")).unwrap();
        assert_eq!(mode(&d.join("z")), 0o700);

        set_mode(&d.join("a"), 0o640).unwrap();
        make_owner_only(&d.join("a")).unwrap();
        assert_eq!(mode(&d.join("a")), 0o600);
        set_mode(&d.join("a"), 0o400).unwrap();
        make_owner_only(&d.join("a")).unwrap();
        assert_eq!(
            mode(&d.join("a")),
            0o400,
            "the owner's bits stay as they were"
        );
    }

    #[test]
    fn free_space_of_tmp() {
        let s = free_space(Path::new("/tmp")).unwrap();
        assert!(s.total > 0 && s.bytes <= s.total);
        assert!(free_space(Path::new("/definitely/not/here")).is_err());
    }
}
