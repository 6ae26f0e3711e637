//! OpenClaw.app: the menu-bar (tray) app. One executable, three roles chosen by its first
//! argument:
//! - none, or `--open PAGE`: the tray process (with `--open`, the dashboard window opens on
//!   PAGE once the gateway answers: dashboard, chat, devices, approvals or settings). It embeds the gateway (the same host, data dir, config and lock as
//!   `openclaw gateway run`), the agent and this computer's node (linked in-process, paired
//!   without a code), and shows the tray icon and menu. It makes no webview, so WebKit never
//!   loads into the process that stays running.
//! - `--dashboard-window URL`: the dashboard window, a child of the tray process. It shows
//!   `ui/` from the embedded gateway over loopback (the page carries the gateway's token, as
//!   WebChat does) and exits when its window closes, so WebKit's memory goes with it.
//! - `model-worker`: a local model's worker, started by the gateway on first use (see
//!   `openclaw_agent::provider::run_local_models_in`).

mod dashboard;
mod embedded;
mod icon;
mod local_node;
mod memory;
mod tray;
mod tray_state;

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match args.next().as_ref().and_then(|a| a.to_str()) {
        Some("model-worker") => openclaw_agent::provider::run_model_worker(),
        Some(dashboard::WINDOW_ARG) => dashboard::run_window(args.next()),
        Some("--open") => match args.next().and_then(|p| p.into_string().ok()) {
            Some(page) if tray::PAGES.contains(&page.as_str()) => tray::run(Some(page)),
            other => {
                eprintln!(
                    "openclaw-app: --open takes a page: {} (got {})",
                    tray::PAGES.join(", "),
                    other.as_deref().unwrap_or("nothing")
                );
                ExitCode::from(64)
            }
        },
        Some("--version") => {
            println!("openclaw-app {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) if other.starts_with('-') && other != "--" => {
            eprintln!(
                "openclaw-app: unknown option {other}\nusage: openclaw-app [--open PAGE]   (the tray app; set OPENCLAW_DATA_DIR, OPENCLAW_CONFIG, OPENCLAW_PORT to choose where it runs)"
            );
            ExitCode::from(64)
        }
        _ => tray::run(None),
    }
}
