//! `openclaw gateway run`: the host (config, logging, store, listener, gateway) until a signal.

use crate::paths::{self, LoadError};
use crate::{Global, exit};
use anyhow::{Context, Result};
use openclaw_host::{HostError, HostOptions};

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
    let data_dir = match paths::data_dir(global) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("openclaw: {e:#}");
            return exit::FAILURE;
        }
    };
    let options = HostOptions {
        config_file: paths::config_file(global),
        host,
        port,
        install_logging: true,
        ..HostOptions::new(data_dir)
    };
    let prepared = match openclaw_host::prepare(options) {
        Ok(p) => p,
        Err(HostError::Config(LoadError::Invalid(e))) => {
            eprintln!("{e}");
            eprintln!(
                "openclaw: the configuration is invalid; nothing was started (check it with `openclaw config validate`)"
            );
            return exit::CONFIG;
        }
        Err(e) => {
            // The subscriber may not exist yet; stderr always does.
            eprintln!("openclaw: {e}");
            return if e.is_config() {
                exit::CONFIG
            } else {
                exit::FAILURE
            };
        }
    };
    match serve(prepared) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("openclaw: {e:#}");
            exit::FAILURE
        }
    }
}

/// Serves on one thread until SIGTERM or SIGINT: the gateway is I/O-bound. Blocking work
/// (SQLite, file writes) goes to a small pool; the store serialises on one connection, so more
/// threads would only wait.
fn serve(prepared: openclaw_host::Prepared) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let host = prepared.start()?;
        tokio::spawn(release_start_up_memory());
        shutdown_signal().await;
        host.shutdown().await;
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
