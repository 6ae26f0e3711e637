//! The dashboard window, in a child process of the tray app (this executable with
//! [`WINDOW_ARG`]). A webview made in the tray process would keep WebKit's network process and
//! its GL state (about 140 MiB) after the window closed; a child that exits with its window
//! gives all of it back, and the tray process never loads WebKit at all.
//!
//! The child loads the page from the embedded gateway over loopback, which puts the gateway's
//! token in it (as WebChat's page), and talks to the gateway like any client. The tray sends it
//! lines on stdin (`show URL`: bring the window up on that page); the child exits when its
//! window closes or its stdin ends (the tray quit or died), so it never outlives the tray.

use std::ffi::OsString;
use std::io::BufRead;
use std::process::{ExitCode, Stdio};
use tauri::{Manager, WebviewUrl, WebviewWindowBuilder};
use tokio::sync::{mpsc, oneshot};

/// The argument that makes this executable the window process.
pub const WINDOW_ARG: &str = "--dashboard-window";
/// The window's label and title.
const LABEL: &str = "dashboard";
const TITLE: &str = "OpenClaw";

/// The window process's `main`.
pub fn run_window(url: Option<OsString>) -> ExitCode {
    let Some(url) = url.and_then(|u| u.into_string().ok()) else {
        eprintln!("openclaw-app: {WINDOW_ARG} needs the page's URL");
        return ExitCode::from(64);
    };
    let url = match loopback_url(&url) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("openclaw-app: {e}");
            return ExitCode::from(64);
        }
    };
    let app = tauri::Builder::default()
        .setup(move |app| {
            WebviewWindowBuilder::new(app, LABEL, WebviewUrl::External(url))
                .title(TITLE)
                .inner_size(1000.0, 720.0)
                .min_inner_size(480.0, 360.0)
                // Menu-bar app: the window is reached from the tray, not the taskbar.
                .skip_taskbar(true)
                .build()?;
            let handle = app.handle().clone();
            std::thread::Builder::new()
                .name("tray-commands".into())
                .spawn(move || follow_tray(handle))?;
            Ok(())
        })
        .build(tauri::generate_context!());
    match app {
        Ok(app) => {
            app.run(|_, _| {});
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("openclaw-app: cannot open the dashboard window: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Only the embedded gateway's pages, on loopback: the window never shows another site.
fn loopback_url(url: &str) -> Result<tauri::Url, String> {
    let parsed = tauri::Url::parse(url).map_err(|e| format!("bad dashboard URL {url}: {e}"))?;
    let loopback = match parsed.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    };
    if parsed.scheme() != "http" || !loopback {
        return Err(format!(
            "the dashboard URL must be the embedded gateway's, http on loopback: {url}"
        ));
    }
    Ok(parsed)
}

/// Reads the tray's commands until its end of the pipe closes, then exits the window.
fn follow_tray(app: tauri::AppHandle) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if let Some(url) = line.strip_prefix("show ") {
            match loopback_url(url.trim()) {
                Ok(url) => show(&app, url),
                Err(e) => eprintln!("openclaw-app: {e}"),
            }
        }
    }
    app.exit(0);
}

fn show(app: &tauri::AppHandle, url: tauri::Url) {
    if let Some(window) = app.get_webview_window(LABEL) {
        let same_page = window.url().ok().is_some_and(|u| u == url);
        if !same_page && let Err(e) = window.navigate(url) {
            eprintln!("openclaw-app: cannot open that page: {e}");
        }
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// The tray's side: the window process while it runs, watched by a task on the app's runtime
/// that waits for it (no zombie when its window is closed) and passes the tray's commands on.
#[derive(Default)]
pub struct DashboardProcess {
    running: Option<Running>,
}

struct Running {
    commands: mpsc::UnboundedSender<Command>,
}

enum Command {
    Show(String),
    /// End the window (its stdin closes; killed after the grace time), then say so.
    Close(std::time::Duration, oneshot::Sender<()>),
}

impl DashboardProcess {
    /// Shows `url` in the window, starting the window process if it is not running. Call on
    /// the app's runtime (its watcher is a task there).
    pub fn show(&mut self, url: &str) -> std::io::Result<()> {
        if let Some(running) = &self.running
            && running.commands.send(Command::Show(url.to_owned())).is_ok()
        {
            return Ok(());
        }
        let exe = std::env::current_exe()?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg(WINDOW_ARG)
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // The tray turned GL off for itself (see `tray::run`); the webview may use it.
        if crate::tray::we_disabled_gl() {
            cmd.env_remove("GDK_GL");
        }
        let mut child = cmd.spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("the window process has no stdin"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(watch(child, stdin, rx));
        self.running = Some(Running { commands: tx });
        Ok(())
    }

    /// Closes the window and waits for its process to end (killed if it has not within
    /// `grace`).
    pub async fn close(&mut self, grace: std::time::Duration) {
        let Some(running) = self.running.take() else {
            return;
        };
        let (done_tx, done_rx) = oneshot::channel();
        if running
            .commands
            .send(Command::Close(grace, done_tx))
            .is_ok()
        {
            let _ = done_rx.await;
        }
    }
}

async fn watch(
    mut child: tokio::process::Child,
    mut stdin: tokio::process::ChildStdin,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    use tokio::io::AsyncWriteExt;
    loop {
        tokio::select! {
            status = child.wait() => {
                tracing::debug!(?status, "the dashboard window closed");
                // Its own task: a Show sent meanwhile must find this watcher gone, not asleep.
                tokio::spawn(crate::memory::release_after(
                    crate::memory::AFTER_WINDOW,
                    "the window closed",
                ));
                break;
            }
            command = commands.recv() => match command {
                Some(Command::Show(url)) => {
                    let line = format!("show {url}\n");
                    if stdin.write_all(line.as_bytes()).await.is_err() {
                        // It is exiting; a later show starts a new one.
                        let _ = child.wait().await;
                        break;
                    }
                }
                Some(Command::Close(grace, done)) => {
                    drop(stdin);
                    if tokio::time::timeout(grace, child.wait()).await.is_err() {
                        let _ = child.kill().await;
                    }
                    let _ = done.send(());
                    return;
                }
                None => {
                    drop(stdin);
                    let _ = child.kill().await;
                    break;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_shows_only_the_gateways_pages_on_loopback() {
        assert!(loopback_url("http://127.0.0.1:18789/#dashboard").is_ok());
        assert!(loopback_url("http://[::1]:18789/").is_ok());
        assert!(loopback_url("http://localhost:18789/").is_ok());
        for bad in [
            "https://example.com/",
            "http://192.168.1.2:18789/",
            "file:///etc/passwd",
            "http://127.0.0.1.example.com/",
            "not a url",
        ] {
            assert!(loopback_url(bad).is_err(), "{bad}");
        }
    }
}
