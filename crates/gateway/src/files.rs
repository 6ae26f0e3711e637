//! Private files: what the gateway writes holds conversations, tokens and keys, so it is
//! created owner-only (files 0600, directories 0700) whatever the process umask.

use std::io::Write;
use std::path::Path;

/// How to open a file for appending, creating it 0600 if needed (for code that opens files
/// itself, such as the log rotation).
pub fn private_append_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Opens `path` for appending, creating it 0600 if needed.
pub fn append_private(path: &Path) -> std::io::Result<std::fs::File> {
    private_append_options().open(path)
}

/// Writes `bytes` to `path` (created 0600 or truncated).
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An existing file keeps its mode on open: make it private too.
    restrict(path, 0o600)?;
    file.write_all(bytes)
}

/// Creates `dir` and its missing parents, the new ones 0700.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Sets `path`'s permission bits to `mode` (no-op off Unix).
pub fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
        if current != mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}
