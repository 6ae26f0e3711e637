//! The tray process: the embedded gateway, the tray icon and its menu. The icon and the
//! status line follow the gateway's events (health changes, the pause, turns running), never a
//! poll; menu items act through the same `GatewayHandle` the server binary has.

use crate::dashboard::DashboardProcess;
use crate::embedded::Embedded;
use crate::icon;
use crate::tray_state::{self, ApprovalAction, ApprovalLine, IconState, TrayModel};
use openclaw_host::GatewayEvent;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, RunEvent, Wry};
use tauri_plugin_autostart::ManagerExt as _;
use tauri_plugin_notification::NotificationExt as _;

/// How long a pairing code shown from the menu is good for.
const PAIRING_CODE_VALID: Duration = Duration::from_secs(5 * 60);
/// How long the window process gets to close before it is killed at quit.
const WINDOW_CLOSE_GRACE: Duration = Duration::from_secs(2);
/// The tray icon's id (tests find the StatusNotifierItem by the app, not by this).
const TRAY_ID: &str = "openclaw";

/// Menu item ids: what the D-Bus menu's `Event` calls reach.
mod id {
    pub const STATUS: &str = "status";
    pub const OPEN: &str = "open";
    pub const CHAT: &str = "chat";
    pub const PAIR: &str = "pair";
    pub const PAIR_BY_CODE: &str = "pair-by-code";
    pub const PAUSE: &str = "pause";
    pub const AUTOSTART: &str = "autostart";
    pub const QUIT: &str = "quit";
}

static DISABLED_GL: AtomicBool = AtomicBool::new(false);

/// Whether this process set `GDK_GL=disable` itself (the window process must not inherit it).
pub fn we_disabled_gl() -> bool {
    DISABLED_GL.load(Ordering::Relaxed)
}

/// The menu's items the app changes after building it.
struct Items {
    status: MenuItem<Wry>,
    pair: MenuItem<Wry>,
    pause: CheckMenuItem<Wry>,
    autostart: CheckMenuItem<Wry>,
}

/// Everything the menu handlers and the event task share.
struct App {
    runtime: tokio::runtime::Handle,
    embedded: Mutex<Option<Embedded>>,
    dashboard: tokio::sync::Mutex<DashboardProcess>,
    model: Mutex<TrayModel>,
    /// The code shown from the menu and when it expires.
    pairing: Mutex<Option<(String, Instant)>>,
    items: OnceLock<Items>,
    tray: OnceLock<TrayIcon<Wry>>,
    /// For redrawing from the runtime ([`redraw`]).
    handle: OnceLock<AppHandle>,
    /// The last icon drawn, so an unchanged state is not redrawn (each draw writes a file).
    shown: Mutex<Option<IconState>>,
    /// Chat senders waiting for the owner, as the gateway listed them last.
    approvals: Mutex<Vec<ApprovalLine>>,
    /// The menu, and the approval lines in it now (main thread only, in [`apply`]).
    menu: OnceLock<Menu<Wry>>,
    approval_menu: Mutex<(Vec<ApprovalLine>, Vec<Submenu<Wry>>)>,
    quitting: AtomicBool,
}

/// Where the approval lines go in the menu: after the status line, its separator and the
/// Open Dashboard, Chat, Pair a device… and Pair with a device's code… items.
const APPROVALS_AT: usize = 6;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The pages of `ui/` the window can open on (`--open PAGE`).
pub const PAGES: [&str; 6] = [
    "dashboard",
    "chat",
    "devices",
    "approvals",
    "settings",
    "setup",
];

/// The tray process; with `open`, the window opens on that page once the gateway answers.
pub fn run(open: Option<String>) -> ExitCode {
    disable_gl_here();
    let runtime = match crate::embedded::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("openclaw-app: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // Local models run in a child (this executable, `model-worker`), as under `openclaw`.
    #[cfg(feature = "local-model")]
    match std::env::current_exe() {
        Ok(exe) => openclaw_agent::provider::run_local_models_in(exe, vec!["model-worker".into()]),
        Err(e) => eprintln!(
            "openclaw-app: cannot find this executable ({e}); local models run in-process"
        ),
    }
    // Tauri's own async work runs on the app's runtime: one pool, not two.
    tauri::async_runtime::set(runtime.handle().clone());
    let app = Arc::new(App {
        runtime: runtime.handle().clone(),
        embedded: Mutex::new(None),
        dashboard: tokio::sync::Mutex::new(DashboardProcess::default()),
        model: Mutex::new(TrayModel::default()),
        pairing: Mutex::new(None),
        items: OnceLock::new(),
        tray: OnceLock::new(),
        handle: OnceLock::new(),
        shown: Mutex::new(None),
        approvals: Mutex::new(Vec::new()),
        menu: OnceLock::new(),
        approval_menu: Mutex::new((Vec::new(), Vec::new())),
        quitting: AtomicBool::new(false),
    });
    let (for_instance, for_setup, for_menu) = (app.clone(), app.clone(), app.clone());
    let built = tauri::Builder::default()
        // First: a second launch only tells this one to show its window, then exits.
        .plugin(tauri_plugin_single_instance::init(move |_, argv, _| {
            // The second launch's `--open PAGE`, else the Dashboard.
            let page = argv
                .iter()
                .skip_while(|a| a.as_str() != "--open")
                .nth(1)
                .filter(|p| PAGES.contains(&p.as_str()))
                .map_or("dashboard", String::as_str);
            open_page(&for_instance, page);
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            None,
        ))
        .plugin(tauri_plugin_notification::init())
        .setup(move |tauri_app| setup(tauri_app, for_setup, open))
        .on_menu_event(move |handle, event| on_menu(&for_menu, handle, event.id().as_ref()))
        .build(tauri::generate_context!());
    let tauri_app = match built {
        Ok(a) => a,
        Err(e) => {
            eprintln!("openclaw-app: {e}");
            return ExitCode::FAILURE;
        }
    };
    let for_exit = app.clone();
    tauri_app.run(move |_, event| {
        // The tray app has no window of its own to close: only Quit (or a signal) ends it,
        // after `quit` drained the gateway.
        if let RunEvent::ExitRequested { api, code, .. } = event
            && code.is_none()
            && !for_exit.quitting.load(Ordering::Relaxed)
        {
            api.prevent_exit();
        }
    });
    ExitCode::SUCCESS
}

/// GTK probes GL at start (libLLVM and Mesa's state, about 50 MiB, for good): the tray
/// process draws no GL, so it is turned off here unless the user chose otherwise.
fn disable_gl_here() {
    if std::env::var_os("GDK_GL").is_none() {
        // SAFETY: first thing in `main`'s tray branch, before any other thread exists (the
        // runtime and GTK start after), so nothing reads the environment concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("GDK_GL", "disable");
        }
        DISABLED_GL.store(true, Ordering::Relaxed);
    }
}

fn setup(
    tauri_app: &mut tauri::App,
    app: Arc<App>,
    open_on: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(target_os = "macos")]
    tauri_app.set_activation_policy(tauri::ActivationPolicy::Accessory);
    let handle = tauri_app.handle().clone();
    let _ = app.handle.set(handle.clone());
    let status = MenuItem::with_id(&handle, id::STATUS, "Starting…", false, None::<&str>)?;
    let open = MenuItem::with_id(&handle, id::OPEN, "Open Dashboard", true, None::<&str>)?;
    let chat = MenuItem::with_id(&handle, id::CHAT, "Chat", true, None::<&str>)?;
    let pair = MenuItem::with_id(&handle, id::PAIR, "Pair a device…", true, None::<&str>)?;
    let pair_by_code = MenuItem::with_id(
        &handle,
        id::PAIR_BY_CODE,
        "Pair with a device's code…",
        true,
        None::<&str>,
    )?;
    let pause = CheckMenuItem::with_id(
        &handle,
        id::PAUSE,
        "Pause assistant",
        true,
        false,
        None::<&str>,
    )?;
    let login = handle.autolaunch().is_enabled().unwrap_or(false);
    let autostart = CheckMenuItem::with_id(
        &handle,
        id::AUTOSTART,
        "Start at login",
        true,
        login,
        None::<&str>,
    )?;
    let quit = MenuItem::with_id(&handle, id::QUIT, "Quit OpenClaw", true, None::<&str>)?;
    let menu = Menu::with_items(
        &handle,
        &[
            &status,
            &PredefinedMenuItem::separator(&handle)?,
            &open,
            &chat,
            &pair,
            &pair_by_code,
            &PredefinedMenuItem::separator(&handle)?,
            &pause,
            &autostart,
            &PredefinedMenuItem::separator(&handle)?,
            &quit,
        ],
    )?;
    let tray = TrayIconBuilder::with_id(TRAY_ID)
        .icon(icon_image(IconState::Healthy))
        .tooltip("OpenClaw")
        .menu(&menu)
        .show_menu_on_left_click(true)
        .build(&handle)?;
    let _ = app.tray.set(tray);
    let _ = app.menu.set(menu);
    let _ = app.items.set(Items {
        status,
        pair,
        pause,
        autostart,
    });

    match app.runtime.block_on(Embedded::start()) {
        Ok(mut embedded) => {
            tell_node_error(&app, &handle, &mut embedded);
            let events = embedded.gateway().subscribe();
            tracing::info!(
                node = embedded.node_name(),
                "OpenClaw.app running on http://{}",
                embedded.gateway().local_addr()
            );
            *lock(&app.embedded) = Some(embedded);
            app.runtime
                .spawn(follow_gateway(app.clone(), handle.clone(), events));
            app.runtime
                .spawn(quit_on_signal(app.clone(), handle.clone()));
            app.runtime.spawn(crate::memory::release_after(
                crate::memory::AFTER_START,
                "start-up",
            ));
            // The first run (no provider configured, no setup finished) opens on the setup.
            let first_run = gateway(&app).is_some_and(|g| g.setup_needed());
            match open_on {
                Some(page) if !first_run => open_page(&app, &page),
                _ if first_run => open_page(&app, "setup"),
                _ => {}
            }
            Ok(())
        }
        Err(e) => {
            // Said on stderr and as a notification (a launched app has no terminal); then the
            // app exits 1 rather than sit in the tray with no gateway.
            let text = e.to_string();
            eprintln!("openclaw-app: {text}");
            notify(&handle, "OpenClaw could not start", &text);
            lock(&app.model).fatal = Some(text);
            app.quitting.store(true, Ordering::Relaxed);
            handle.exit(1);
            Ok(())
        }
    }
}

/// Says so, in a notification, when this computer's node cannot be linked (it is linked after
/// the gateway is up, off the start-up path).
fn tell_node_error(app: &Arc<App>, handle: &AppHandle, embedded: &mut Embedded) {
    let Some(error) = embedded.take_node_error() else {
        return;
    };
    let (runtime, app, handle) = (app.runtime.clone(), app.clone(), handle.clone());
    runtime.spawn(async move {
        // A gateway stopped while the link was being made (Quit) is no news.
        if let Ok(text) = error.await
            && !app.quitting.load(Ordering::Relaxed)
        {
            notify(&handle, "This computer's node is not linked", &text);
        }
    });
}

/// Keeps the icon, status line and pause check in step with the gateway.
async fn follow_gateway(
    app: Arc<App>,
    handle: AppHandle,
    mut events: tokio::sync::broadcast::Receiver<GatewayEvent>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let Some(gateway) = gateway(&app) else { return };
    let own_node = lock(&app.embedded)
        .as_ref()
        .map(|e| e.node_name().to_owned());
    refresh_health(&app, &gateway).await;
    // Those waiting already were there before this start: listed, not announced.
    refresh_approvals(&app, &handle, &gateway, false).await;
    let mut last_backup_error: Option<String> = None;
    loop {
        match events.recv().await {
            // Missed some: everything the events carry is read afresh.
            Err(RecvError::Lagged(_))
            | Ok(GatewayEvent::Health { .. } | GatewayEvent::Paused { .. }) => {
                refresh_health(&app, &gateway).await;
            }
            Err(RecvError::Closed) => break,
            Ok(GatewayEvent::ChannelDisconnected { channel, detail }) => {
                notify(
                    &handle,
                    &format!("{} disconnected", tray_state::channel_title(&channel)),
                    &format!("OpenClaw cannot reach {channel}: {detail}"),
                );
            }
            Ok(GatewayEvent::BackupFailed { error }) => {
                // Once per distinct failure: a schedule failing the same way every run says it
                // once, not every run (health keeps saying it).
                if last_backup_error.as_deref() != Some(error.as_str()) {
                    notify(&handle, "Backup failed", &error);
                    last_backup_error = Some(error);
                }
            }
            Ok(GatewayEvent::RestartNeeded { reason }) => {
                tracing::info!("restarting the gateway: {reason}");
                app.runtime
                    .spawn(restart_gateway(app.clone(), handle.clone()));
                break;
            }
            Ok(GatewayEvent::Approvals { .. }) => {
                refresh_approvals(&app, &handle, &gateway, true).await;
            }
            Ok(GatewayEvent::Working { turns }) => {
                lock(&app.model).turns = turns;
                redraw(&app);
            }
            Ok(GatewayEvent::NodePaired { name, .. }) if Some(&name) != own_node.as_ref() => {
                notify(
                    &handle,
                    "Device paired",
                    &format!("{name} is paired with this OpenClaw"),
                );
                // The code shown for it is used up.
                *lock(&app.pairing) = None;
                redraw(&app);
            }
            Ok(_) => {}
        }
        if gateway.is_stopping() {
            break;
        }
    }
}

/// The report, the pause and the turns running, as the gateway has them now.
async fn refresh_health(app: &Arc<App>, gateway: &openclaw_host::GatewayHandle) {
    let report = gateway.health().await;
    {
        let mut model = lock(&app.model);
        model.set_report(&report);
        model.paused = gateway.is_paused();
        model.turns = report.metrics.queued_messages;
    }
    redraw(app);
}

/// Stops the embedded gateway (drained) and starts it again on the config as it is now (the
/// setup changed it), then follows the new one. The window's page reconnects by itself.
// Boxed: it starts a new `follow_gateway`, which may start this again (a named future type
// cannot contain itself).
fn restart_gateway(
    app: Arc<App>,
    handle: AppHandle,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        let old = lock(&app.embedded).take();
        if let Some(old) = old {
            old.shutdown().await;
        }
        if app.quitting.load(Ordering::Relaxed) {
            return;
        }
        match Embedded::start().await {
            Ok(mut embedded) => {
                tell_node_error(&app, &handle, &mut embedded);
                if app.quitting.load(Ordering::Relaxed) {
                    // Quit came while it started: drained like the rest.
                    embedded.shutdown().await;
                    return;
                }
                let events = embedded.gateway().subscribe();
                *lock(&app.embedded) = Some(embedded);
                app.runtime
                    .spawn(follow_gateway(app.clone(), handle.clone(), events));
            }
            Err(e) => {
                let text = e.to_string();
                tracing::error!("the gateway did not start again: {text}");
                notify(&handle, "OpenClaw could not restart", &text);
                lock(&app.model).fatal = Some(text);
                redraw(&app);
            }
        }
    })
}

/// The senders waiting for approval, as the gateway has them now; a notification for each one
/// the owner has not been told of when `announce`.
async fn refresh_approvals(
    app: &Arc<App>,
    handle: &AppHandle,
    gateway: &openclaw_host::GatewayHandle,
    announce: bool,
) {
    let list = match gateway.approvals().await {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the senders waiting for approval");
            return;
        }
    };
    let lines: Vec<ApprovalLine> = list
        .pending
        .iter()
        .map(|p| {
            ApprovalLine::new(
                &p.code.channel,
                &p.code.sender,
                p.code.name.as_deref(),
                &p.code.code,
            )
        })
        .collect();
    let before = std::mem::replace(&mut *lock(&app.approvals), lines.clone());
    if announce {
        for line in tray_state::new_approvals(&before, &lines) {
            notify(
                handle,
                "Someone wants to talk to your assistant",
                &format!(
                    "{} on {} was given the code {}: approve or reject them from the menu or the Approvals page",
                    line.sender, line.channel, line.code
                ),
            );
        }
    }
    redraw(app);
}

/// Approves or rejects a waiting sender from the menu, then says how it went.
fn decide(app: &Arc<App>, action: ApprovalAction, channel: String, code: String) {
    let Some(gateway) = gateway(app) else { return };
    let Some(handle) = app.handle.get().cloned() else {
        return;
    };
    let app2 = app.clone();
    app.runtime.spawn(async move {
        let outcome = match action {
            ApprovalAction::Approve => gateway
                .approve_sender(&channel, &code)
                .await
                .map(|s| format!("{} may talk to the assistant on {channel} now", s.sender)),
            ApprovalAction::Reject => gateway
                .reject_sender(&channel, &code)
                .await
                .map(|c| format!("{} on {channel} was turned down", c.sender)),
        };
        match outcome {
            Ok(said) => tracing::info!("{said}"),
            Err(e) => notify(&handle, "OpenClaw", &e.to_string()),
        }
        // The gateway's Approvals event redraws too; this covers a list that did not change
        // in size (one code replaced by another).
        refresh_approvals(&app2, &handle, &gateway, false).await;
    });
}

/// Makes the menu's approval lines those of `app.approvals` (main thread).
fn sync_approval_lines(app: &App) {
    let (Some(menu), Some(handle)) = (app.menu.get(), app.handle.get()) else {
        return;
    };
    let wanted = lock(&app.approvals).clone();
    let mut shown = lock(&app.approval_menu);
    if shown.0 == wanted {
        return;
    }
    for old in shown.1.drain(..) {
        let _ = menu.remove(&old);
    }
    let mut made = Vec::with_capacity(wanted.len());
    for (i, line) in wanted.iter().enumerate() {
        let built = (|| -> tauri::Result<Submenu<Wry>> {
            let approve = MenuItem::with_id(
                handle,
                line.id(Some(ApprovalAction::Approve)),
                "Approve",
                true,
                None::<&str>,
            )?;
            let reject = MenuItem::with_id(
                handle,
                line.id(Some(ApprovalAction::Reject)),
                "Reject",
                true,
                None::<&str>,
            )?;
            let sub = Submenu::with_id_and_items(
                handle,
                line.id(None),
                line.text(),
                true,
                &[&approve, &reject],
            )?;
            menu.insert(&sub, APPROVALS_AT + i)?;
            Ok(sub)
        })();
        match built {
            Ok(sub) => made.push(sub),
            Err(e) => tracing::warn!(error = %e, "cannot add an approval line to the menu"),
        }
    }
    *shown = (wanted, made);
}

/// [`apply`] on the main thread, from anywhere without waiting: Tauri's tray and menu setters
/// block their caller until the main thread has run them, which must not hold the runtime's
/// one worker.
fn redraw(app: &Arc<App>) {
    if let Some(handle) = app.handle.get() {
        let app = app.clone();
        if let Err(e) = handle.run_on_main_thread(move || apply(&app)) {
            tracing::debug!(error = %e, "the tray is gone: nothing to redraw");
        }
    }
}

/// Draws the model: icon (only when its state changed), status line, pause check, pairing line.
/// On the main thread (see [`redraw`]).
fn apply(app: &App) {
    let model = lock(&app.model).clone();
    let state = model.icon();
    if let Some(tray) = app.tray.get() {
        let mut shown = lock(&app.shown);
        if *shown != Some(state) {
            if let Err(e) = tray.set_icon(Some(icon_image(state))) {
                tracing::warn!(error = %e, "cannot change the tray icon");
            }
            let _ = tray.set_tooltip(Some(format!("OpenClaw: {}", state.as_str())));
            *shown = Some(state);
        }
    }
    let Some(items) = app.items.get() else { return };
    let _ = items.status.set_text(model.status_line());
    let _ = items.pause.set_checked(model.paused);
    let pairing = lock(&app.pairing).clone();
    let text = match pairing {
        Some((code, until)) if until > Instant::now() => {
            tray_state::pairing_line(&code, until - Instant::now())
        }
        _ => "Pair a device…".to_owned(),
    };
    let _ = items.pair.set_text(text);
    sync_approval_lines(app);
}

fn icon_image(state: IconState) -> Image<'static> {
    Image::new_owned(icon::rgba(state), icon::SIZE, icon::SIZE)
}

fn gateway(app: &App) -> Option<openclaw_host::GatewayHandle> {
    lock(&app.embedded).as_ref().map(|e| e.gateway().clone())
}

fn on_menu(app: &Arc<App>, handle: &AppHandle, item: &str) {
    match item {
        id::OPEN => open_page(app, "dashboard"),
        id::CHAT => open_page(app, "chat"),
        id::PAIR => show_pairing_code(app),
        id::PAIR_BY_CODE => open_page(app, "devices"),
        id::PAUSE => {
            let Some(gateway) = gateway(app) else { return };
            // The item toggled itself; the gateway's Paused event confirms it.
            let paused = app
                .items
                .get()
                .is_some_and(|i| i.pause.is_checked().unwrap_or(false));
            gateway.set_paused(paused);
        }
        id::AUTOSTART => set_autostart(app, handle),
        id::QUIT => quit(app.clone(), handle.clone()),
        other => {
            if let Some((action, channel, code)) = tray_state::parse_approval_id(other) {
                decide(app, action, channel, code);
            }
        }
    }
}

fn open_page(app: &Arc<App>, page: &str) {
    let Some(url) = lock(&app.embedded).as_ref().map(|e| e.dashboard_url(page)) else {
        return;
    };
    let app2 = app.clone();
    app.runtime.spawn(async move {
        let mut dashboard = app2.dashboard.lock().await;
        if let Err(e) = dashboard.show(&url) {
            tracing::error!(error = %e, "cannot open the dashboard window");
        }
    });
}

/// Shows a fresh code in the menu with its countdown, for a node that dials this gateway
/// (`openclaw-node pair --gateway HOST:PORT --code NNNNNN`, or the phone app).
fn show_pairing_code(app: &Arc<App>) {
    let Some(gateway) = gateway(app) else { return };
    let code = gateway.show_pairing_code(PAIRING_CODE_VALID, None, 10);
    let until = Instant::now() + PAIRING_CODE_VALID;
    *lock(&app.pairing) = Some((code.clone(), until));
    apply(app);
    let app2 = app.clone();
    app.runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let current = lock(&app2.pairing).as_ref().map(|(c, _)| c.clone());
            if current.as_deref() != Some(code.as_str()) {
                return; // replaced or used
            }
            if Instant::now() >= until {
                *lock(&app2.pairing) = None;
                redraw(&app2);
                return;
            }
            redraw(&app2);
        }
    });
}

fn set_autostart(app: &App, handle: &AppHandle) {
    let Some(items) = app.items.get() else { return };
    let wanted = items.autostart.is_checked().unwrap_or(false);
    let launcher = handle.autolaunch();
    let done = if wanted {
        launcher.enable()
    } else {
        launcher.disable()
    };
    if let Err(e) = done {
        let _ = items.autostart.set_checked(!wanted);
        notify(
            handle,
            "Start at login",
            &format!("could not change it: {e}"),
        );
    }
}

/// Quits: the window process ends, the gateway drains (answers in flight finish within its
/// drain budget), then the app exits 0.
fn quit(app: Arc<App>, handle: AppHandle) {
    if app.quitting.swap(true, Ordering::Relaxed) {
        return;
    }
    let embedded = lock(&app.embedded).take();
    let runtime = app.runtime.clone();
    runtime.spawn(async move {
        app.dashboard.lock().await.close(WINDOW_CLOSE_GRACE).await;
        if let Some(embedded) = embedded {
            embedded.shutdown().await;
        }
        handle.exit(0);
    });
}

/// SIGTERM (logout, `systemctl --user stop`, `kill`) and SIGINT quit the same way.
#[cfg(not(unix))]
async fn quit_on_signal(app: Arc<App>, handle: AppHandle) {
    if tokio::signal::ctrl_c().await.is_ok() {
        quit(app, handle);
    }
}

/// SIGTERM (logout, `systemctl --user stop`, `kill`) and SIGINT quit the same way.
#[cfg(unix)]
async fn quit_on_signal(app: Arc<App>, handle: AppHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    quit(app, handle);
}

fn notify(handle: &AppHandle, title: &str, body: &str) {
    if let Err(e) = handle
        .notification()
        .builder()
        .title(title)
        .body(body)
        .show()
    {
        tracing::warn!(error = %e, "cannot show a notification");
    }
}
