//! `openclaw gateway run`: config → logging → store → listener → serve until a signal.

use crate::paths::{self, LoadError};
use crate::{Global, exit};
use anyhow::{Context, Result};
use openclaw_gateway::{AuditLog, Options};
use openclaw_store::Store;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

pub fn gateway_run(global: &Global, host: Option<String>, port: Option<u16>) -> u8 {
    // Local models run in a child (this binary again, `openclaw model-worker`): its exit gives
    // all of llama.cpp's memory back, and a crash in it costs one answer, not the gateway.
    // Nothing is started here; the first request to a local model starts it.
    #[cfg(feature = "local-model")]
    match std::env::current_exe() {
        Ok(exe) => openclaw_agent::provider::run_local_models_in(exe, vec!["model-worker".into()]),
        Err(e) => {
            eprintln!("openclaw: cannot find this executable ({e}); local models run in-process")
        }
    }
    let (data_dir, _lock) = match claim_data_dir(global) {
        Ok(claimed) => claimed,
        Err(e) => {
            eprintln!("openclaw: {e:#}");
            return exit::FAILURE;
        }
    };
    let loaded = match paths::load_config(global) {
        Ok(l) => l,
        Err(LoadError::Invalid(e)) => {
            eprintln!("{e}");
            eprintln!(
                "openclaw: the configuration is invalid; nothing was started (check it with `openclaw config validate`)"
            );
            return exit::CONFIG;
        }
        Err(LoadError::Read(e)) => {
            eprintln!("openclaw: {e:#}");
            return exit::CONFIG;
        }
    };
    match start(data_dir, loaded, host, port) {
        Ok(()) => exit::OK,
        Err(e) => {
            // The subscriber may not exist yet; stderr always does.
            eprintln!("openclaw: {e:#}");
            exit::FAILURE
        }
    }
}

/// Creates and locks the data dir (held until exit: one gateway per data dir, no restore under a
/// running gateway), then rolls back a restore that was killed half-way — before the config is
/// read, since the config file may be one it replaced.
fn claim_data_dir(global: &Global) -> Result<(PathBuf, std::fs::File)> {
    let data_dir = paths::data_dir(global)?;
    openclaw_fs::create_private_dirs(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    // One made by an older version (or by hand) may be open to every user.
    if let Err(e) = openclaw_fs::make_owner_only(&data_dir) {
        eprintln!(
            "openclaw: warning: cannot make the data dir {} private (0700): {e}",
            data_dir.display()
        );
    }
    let lock = paths::lock_data_dir(&data_dir)?.ok_or_else(|| {
        anyhow::anyhow!(
            "another gateway (or a restore) is using the data dir {}; see `openclaw status`",
            data_dir.display()
        )
    })?;
    if openclaw_backup::recover_interrupted(&data_dir)? {
        eprintln!(
            "openclaw: an interrupted restore was found and rolled back; the data is as it was before it"
        );
    }
    Ok((data_dir, lock))
}

fn start(
    data_dir: PathBuf,
    loaded: paths::Loaded,
    host: Option<String>,
    port: Option<u16>,
) -> Result<()> {
    let mut config = loaded.config;
    if let Some(h) = host {
        config.gateway.host = h;
    }
    if let Some(p) = port {
        config.gateway.port = p;
    }

    let log_file = paths::under_data_dir(
        &data_dir,
        config.logging.file.as_deref(),
        "logs/openclaw.log",
    );
    crate::logging::init(&config.logging, &log_file)?;
    let layout = crate::backup_cmd::layout(&data_dir, &config, loaded.file.clone(), None);
    crate::backup_cmd::sweep_leftovers(&layout)?;

    let ip: IpAddr = match config.gateway.host.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .parse()
            .with_context(|| format!("gateway.host `{h}` is not an IP address"))?,
    };
    let addr = SocketAddr::new(ip, config.gateway.port);
    // Refuse before binding, so a refused bind never accepts a connection.
    openclaw_gateway::check_bind(addr, &config)?;

    let store = if config.memory.persistence {
        let db_dir = paths::under_data_dir(&data_dir, config.memory.storage_path.as_deref(), "");
        openclaw_fs::create_private_dirs(&db_dir)
            .with_context(|| format!("cannot create database directory {}", db_dir.display()))?;
        Store::open_in_dir(&db_dir)?
    } else {
        Store::open_in_memory()?
    };

    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("cannot listen on {addr} (is another gateway running? try `openclaw status`, or pick another port with --port / OPENCLAW_PORT)")
    })?;
    listener.set_nonblocking(true)?;

    let audit = AuditLog::new(config.logging.audit.enabled.then(|| {
        paths::under_data_dir(
            &data_dir,
            config.logging.audit.file.as_deref(),
            "logs/audit.log",
        )
    }))
    .with_rotation(openclaw_gateway::audit::Rotation {
        max_bytes: config.logging.max_size_mb.saturating_mul(1024 * 1024),
        keep: config.logging.max_files as usize,
    });
    let config_digest = match (&loaded.file, &loaded.text) {
        (Some(file), Some(text)) => {
            Some((file.clone(), hex::encode(Sha256::digest(text.as_bytes()))))
        }
        _ => None,
    };
    let backup = if config.backup.enabled {
        let layout = crate::backup_cmd::layout(&data_dir, &config, loaded.file.clone(), None);
        Some(openclaw_gateway::BackupPlan {
            layout,
            include: crate::backup_cmd::include(&config),
            keep: config.backup.max_backups as usize,
        })
    } else {
        None
    };
    let options = Options {
        backup,
        config: Arc::new(config),
        store: Arc::new(store),
        data_dir: data_dir.clone(),
        audit,
        config_digest,
    };

    // One thread: the gateway is I/O-bound. Blocking work (SQLite, file writes) goes to a small
    // pool; the store serialises on one connection, so more threads would only wait.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        tokio::spawn(release_start_up_memory());
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let local = listener.local_addr()?;
        tracing::info!(
            bind = %local,
            data_dir = %data_dir.display(),
            config = %loaded.file.as_ref().map_or_else(|| "(defaults)".into(), |f: &PathBuf| f.display().to_string()),
            version = env!("CARGO_PKG_VERSION"),
            "openclaw gateway listening on http://{local}"
        );
        openclaw_gateway::serve(listener, options, shutdown_signal()).await?;
        Ok(())
    })
}

/// How long after start-up its memory is given back: past the start-up bookkeeping (audit,
/// nodes, the first health checks of a supervisor), short enough to show in an idle gateway.
const RELEASE_START_UP_MEMORY_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

/// Gives back, once, what start-up left mapped: the code of the CLI, the configuration parser,
/// logging set-up and SQLite's open never runs again, yet its pages (and libc's) stay in RSS,
/// 64 KiB per touched window. What the gateway still runs faults back in at its next use (a
/// minor fault: the pages stay in the page cache). On the bench: idle 5.4 MB → 2.3 MB,
/// and after serving requests it settles below where it was.
async fn release_start_up_memory() {
    tokio::time::sleep(RELEASE_START_UP_MEMORY_AFTER).await;
    // About 1.5 ms (the kernel walks every mapping for /proc/self/smaps): off the runtime
    // thread, on a blocking thread start-up's own SQLite work usually left alive.
    let _ = tokio::task::spawn_blocking(|| {
        let started = std::time::Instant::now();
        let released = openclaw_reclaim::release_unused_memory();
        tracing::debug!(%released, took_us = started.elapsed().as_micros() as u64, "start-up memory released");
    })
    .await;
}

/// Completes on SIGTERM (systemd, docker stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
