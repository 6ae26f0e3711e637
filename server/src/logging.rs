//! tracing to stderr and to a size-rotated log file.

use anyhow::{Context, Result};
use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
use openclaw_config::{LogLevel, LoggingConfig};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
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

/// The log file writer: rotated once it passes `max_size_mb`, keeping `max_files` old files
/// (`openclaw.log.1` is the newest of them).
fn rotating_writer(config: &LoggingConfig, file: &Path) -> Result<FileRotate<AppendCount>> {
    let dir = file.parent().unwrap_or(Path::new("."));
    openclaw_fs::create_private_dirs(dir)
        .with_context(|| format!("cannot create log directory {}: set logging.file to a writable path, or pass --data-dir", dir.display()))?;
    // Open once ourselves: the rotation crate cannot report an open failure. Logs quote
    // conversations and addresses: owner-only, and so are the rotated files (mode below).
    openclaw_fs::open_append_private(file).with_context(|| {
        format!(
            "cannot open log file {}: set logging.file to a writable path",
            file.display()
        )
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

/// Installs the global subscriber: stderr always, plus the rotated log file.
pub fn init(config: &LoggingConfig, file: &Path) -> Result<()> {
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
        .context("a logger was already installed")?;
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
            format!("{err:#}").contains("cannot create log directory"),
            "{err:#}"
        );
    }
}
