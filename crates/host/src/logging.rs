//! tracing to stderr and to a size-rotated log file: installed once per process (a gateway
//! started again in the same process keeps the first one's).

use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
use openclaw_config::{LogLevel, LoggingConfig};
use std::io::IsTerminal;
use std::path::Path;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn level(l: LogLevel) -> LevelFilter {
    match l {
        LogLevel::Trace => LevelFilter::TRACE,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot create log directory {}: {source}: set logging.file to a writable path, or pass --data-dir", dir.display())]
    Directory {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open log file {}: {source}: set logging.file to a writable path", file.display())]
    File {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another logger is installed in this process: start the host with logging left to the embedder"
    )]
    Taken,
}

/// The log file writer: rotated once it passes `max_size_mb`, keeping `max_files` old files
/// (`openclaw.log.1` is the newest of them).
fn rotating_writer(
    config: &LoggingConfig,
    file: &Path,
) -> Result<FileRotate<AppendCount>, LoggingError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    openclaw_fs::create_private_dirs(dir).map_err(|source| LoggingError::Directory {
        dir: dir.to_owned(),
        source,
    })?;
    // Open once ourselves: the rotation crate cannot report an open failure. Logs quote
    // conversations and addresses: owner-only, and so are the rotated files (mode below).
    openclaw_fs::open_append_private(file).map_err(|source| LoggingError::File {
        file: file.to_owned(),
        source,
    })?;
    let max_bytes =
        usize::try_from(config.max_size_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
    Ok(FileRotate::new(
        file,
        AppendCount::new(config.max_files as usize),
        ContentLimit::BytesSurpassed(max_bytes.max(1)),
        Compression::None,
        // Each new log file is created 0600 too.
        Some(openclaw_fs::private_append_options()),
    ))
}

/// The log file of the subscriber this crate installed, once it has.
static INSTALLED: OnceLock<PathBuf> = OnceLock::new();

/// Installs the global subscriber: stderr always, plus the rotated log file. A second call in
/// the same process (a gateway started again) keeps the first subscriber and its file.
pub fn init(config: &LoggingConfig, file: &Path) -> Result<(), LoggingError> {
    if let Some(first) = INSTALLED.get() {
        if first != file {
            tracing::warn!(kept = %first.display(), asked = %file.display(), "logging is already set up in this process; the log file stays where it was");
        }
        return Ok(());
    }
    let rotating = rotating_writer(config, file)?;
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(Mutex::new(rotating));
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    tracing_subscriber::registry()
        .with(level(config.level))
        .with(stderr_layer)
        .with(file_layer)
        .try_init()
        .map_err(|_| LoggingError::Taken)?;
    let _ = INSTALLED.set(file.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rotates_by_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("logs/openclaw.log");
        let config = LoggingConfig {
            max_size_mb: 1,
            max_files: 2,
            ..LoggingConfig::default()
        };
        let mut w = rotating_writer(&config, &file).unwrap();
        let line = [b'x'; 1023];
        for _ in 0..(4 * 1024) {
            w.write_all(&line).unwrap();
            w.write_all(b"\n").unwrap();
        }
        w.flush().unwrap();
        let logs = dir.path().join("logs");
        let mut names: Vec<String> = std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["openclaw.log", "openclaw.log.1", "openclaw.log.2"]);
        for n in &names {
            let len = std::fs::metadata(logs.join(n)).unwrap().len();
            assert!(len <= 1024 * 1024 + 1024, "{n} is {len} bytes");
        }
    }

    #[test]
    fn unwritable_log_path_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let Err(err) =
            rotating_writer(&LoggingConfig::default(), &blocker.join("sub/openclaw.log"))
        else {
            panic!("a log path under a plain file must be refused");
        };
        assert!(
            err.to_string().contains("cannot create log directory"),
            "{err}"
        );
    }
}
