//! `openclaw backup create | list | verify | restore`.

use crate::output::{self, Style};
use crate::paths::{self, LoadError};
use crate::{Global, exit};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use openclaw_backup::{Include, Layout, Stage};
use openclaw_config::Config;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The data layout a backup reads and a restore writes, from the data dir and config.
pub fn layout(
    data_dir: &Path,
    config: &Config,
    file: Option<PathBuf>,
    out: Option<PathBuf>,
) -> Layout {
    openclaw_host::DataLayout::resolve(data_dir, config).backup(file, out)
}

fn layout_for(
    global: &Global,
    loaded: &paths::Loaded,
    out: Option<PathBuf>,
) -> anyhow::Result<Layout> {
    Ok(layout(
        &paths::data_dir(global)?,
        &loaded.config,
        loaded.file.clone(),
        out,
    ))
}

pub fn include(config: &Config) -> Include {
    openclaw_host::layout::backup_include(config)
}

/// A progress bar on a terminal (stderr), nothing otherwise or with --json.
struct Bars {
    bar: Option<ProgressBar>,
    stage: Option<Stage>,
}

impl Bars {
    fn new(enabled: bool) -> Self {
        let bar = (enabled && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Self { bar, stage: None }
    }

    fn update(&mut self, stage: Stage, done: u64, total: u64) {
        let Some(bar) = &self.bar else { return };
        if self.stage != Some(stage) {
            self.stage = Some(stage);
            let (label, template) = match stage {
                Stage::CopyDatabase => (
                    "copying database",
                    "{msg:>20} [{bar:30}] {percent:>3}% {eta}",
                ),
                Stage::Pack => (
                    "writing archive",
                    "{msg:>20} [{bar:30}] {bytes}/{total_bytes} {eta}",
                ),
                Stage::Verify => (
                    "checking archive",
                    "{msg:>20} [{bar:30}] {bytes}/{total_bytes} {eta}",
                ),
                Stage::CheckDatabase => ("integrity_check", "{msg:>20} {spinner}"),
                Stage::Swap => ("swapping in", "{msg:>20} [{bar:30}] {pos}/{len}"),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label);
            bar.reset();
        }
        bar.set_length(total);
        bar.set_position(done);
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn load(global: &Global) -> Result<paths::Loaded, u8> {
    match paths::load_config(global) {
        Ok(l) => Ok(l),
        Err(LoadError::Invalid(e)) => {
            eprintln!("{e}");
            Err(exit::FAILURE)
        }
        Err(e @ LoadError::Read { .. }) => {
            eprintln!("openclaw: {e:#}");
            Err(exit::FAILURE)
        }
    }
}

/// Config and layout for a command, or the exit code after saying what went wrong.
fn prepare(
    global: &Global,
    out: Option<PathBuf>,
    json_out: bool,
) -> Result<(paths::Loaded, Layout), u8> {
    let loaded = load(global)?;
    let layout = layout_for(global, &loaded, out).map_err(|e| fail(json_out, format!("{e:#}")))?;
    Ok((loaded, layout))
}

fn fail(json_out: bool, e: impl std::fmt::Display) -> u8 {
    if json_out {
        println!("{}", json!({"ok": false, "error": e.to_string()}));
    }
    eprintln!("openclaw: {e}");
    exit::FAILURE
}

pub fn create(global: &Global, out: Option<PathBuf>, json_out: bool) -> u8 {
    let (loaded, layout) = match prepare(global, out, json_out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut bars = Bars::new(!json_out);
    let started = std::time::Instant::now();
    let result = openclaw_backup::create(
        &layout,
        include(&loaded.config),
        env!("CARGO_PKG_VERSION"),
        None,
        &mut |s, d, t| bars.update(s, d, t),
    );
    bars.finish();
    let created = match result {
        Ok(c) => c,
        Err(e) => return fail(json_out, e),
    };
    let pruned =
        match openclaw_backup::prune(&layout.backups, loaded.config.backup.max_backups as usize) {
            Ok(p) => p,
            Err(e) => return fail(json_out, e),
        };
    if json_out {
        println!(
            "{}",
            json!({"ok": true, "path": created.path, "size_bytes": created.size, "manifest": created.manifest,
                   "seconds": started.elapsed().as_secs_f64(), "pruned": pruned})
        );
    } else {
        let s = Style::stdout();
        println!(
            "{} {} ({}, {} files, {:.1} s)",
            s.ok("✓"),
            created.path.display(),
            output::bytes(created.size),
            created.manifest.files.len(),
            started.elapsed().as_secs_f64()
        );
        for p in pruned {
            println!(
                "  removed {} (backup.max_backups = {})",
                p.display(),
                loaded.config.backup.max_backups
            );
        }
    }
    exit::OK
}

pub fn list(global: &Global, out: Option<PathBuf>, json_out: bool) -> u8 {
    let (_, layout) = match prepare(global, out, json_out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let archives = match openclaw_backup::list(&layout.backups) {
        Ok(a) => a,
        Err(e) => return fail(json_out, e),
    };
    if json_out {
        println!("{}", json!({"dir": layout.backups, "archives": archives}));
    } else if archives.is_empty() {
        println!("no backups in {}", layout.backups.display());
    } else {
        for a in &archives {
            println!("{:>10}  {}", output::bytes(a.size), a.path.display());
        }
    }
    exit::OK
}

/// `backup verify`: unpacks into the system temp dir, never the data dir (see
/// `openclaw_backup::default_scratch`), so it is safe while the gateway runs.
pub fn verify(_global: &Global, archive: &Path, json_out: bool) -> u8 {
    let scratch = openclaw_backup::default_scratch();
    let mut bars = Bars::new(!json_out);
    let result = openclaw_backup::verify(archive, &scratch, &mut |s, d, t| bars.update(s, d, t));
    bars.finish();
    if let Err(e @ openclaw_backup::Error::NoSpace { .. }) = &result {
        return fail(
            json_out,
            format!("{e} (verify unpacks into $TMPDIR: point TMPDIR at a directory with room)"),
        );
    }
    match result {
        Ok(m) => {
            if json_out {
                println!("{}", json!({"ok": true, "archive": archive, "manifest": m}));
            } else {
                let s = Style::stdout();
                println!(
                    "{} {} is intact: {} files match their SHA-256, database integrity_check ok (made {} by openclaw {}; parts: {})",
                    s.ok("✓"),
                    archive.display(),
                    m.files.len(),
                    m.created_at,
                    m.app_version,
                    m.parts.join(", ")
                );
            }
            exit::OK
        }
        Err(e) => fail(json_out, e),
    }
}

pub fn restore(global: &Global, archive: &Path, json_out: bool) -> u8 {
    let (loaded, layout) = match prepare(global, None, json_out) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(e) = std::fs::create_dir_all(&layout.data_dir) {
        return fail(
            json_out,
            format!("cannot create {}: {e}", layout.data_dir.display()),
        );
    }
    // The gateway holds this lock while it runs; holding it here keeps one from starting mid-restore.
    let _lock = match paths::lock_data_dir(&layout.data_dir) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            return fail(
                json_out,
                format!(
                    "a gateway is running on the data dir {}: stop it first (systemctl stop openclaw / docker compose stop gateway), then restore",
                    layout.data_dir.display()
                ),
            );
        }
        Err(e) => return fail(json_out, format!("{e:#}")),
    };
    // For the crash test only: stop for a while after a given swap so the test can kill -9.
    let pause_after: Option<u64> = std::env::var("OPENCLAW_TEST_PAUSE_AFTER_SWAP")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut bars = Bars::new(!json_out);
    let result = openclaw_backup::restore(
        archive,
        &layout,
        env!("CARGO_PKG_VERSION"),
        &mut |s, d, t| {
            bars.update(s, d, t);
            if s == Stage::Swap && Some(d) == pause_after {
                std::thread::sleep(Duration::from_secs(30));
            }
        },
    );
    bars.finish();
    match result {
        Ok(r) => {
            // Replacing the data is a security-relevant event.
            if loaded.config.logging.audit.enabled {
                let path = paths::under_data_dir(
                    &layout.data_dir,
                    loaded.config.logging.audit.file.as_deref(),
                    "logs/audit.log",
                );
                let audit = openclaw_gateway::AuditLog::new(Some(path));
                if let Err(e) = audit.record_now(
                    "backup.restored",
                    json!({"archive": archive, "parts": r.manifest.parts, "pre_restore_backup": r.pre_restore.path}),
                ) {
                    eprintln!("openclaw: restored, but the audit log could not be written: {e}");
                }
            }
            if json_out {
                println!(
                    "{}",
                    json!({"ok": true, "restored": r.manifest.parts, "pre_restore_backup": r.pre_restore.path})
                );
            } else {
                let s = Style::stdout();
                println!(
                    "{} restored {} from {}",
                    s.ok("✓"),
                    r.manifest.parts.join(", "),
                    archive.display()
                );
                println!(
                    "  the previous state is kept in {}",
                    r.pre_restore.path.display()
                );
            }
            exit::OK
        }
        Err(e) => fail(json_out, e),
    }
}
