//! The tray app (`openclaw-app`) as a user meets it, in a private X display and session bus
//! (`openclaw_tests::desktop`): it embeds the gateway and this computer's node (paired with no
//! code), its icon is read through `org.kde.StatusNotifierItem` (the PNG the tray exports) and
//! its menu is clicked through `com.canonical.dbusmenu`, as a panel would. Pause → health says
//! paused and the icon turns; Pair a device… → a code is shown that a real `openclaw-node`
//! pairs by; Start at login → an autostart entry; Open Dashboard → a window process of its
//! own; a second launch opens the window instead of a second gateway; Quit → drained, exit 0,
//! the window process gone with it. A server already on the data dir gets a clear refusal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openclaw_testkit::FakeLlm;
use openclaw_tests::desktop::DesktopSession;
use openclaw_tests::{
    GatewayProcess, child_pids, free_port, http_get, screenshot_dir, seed_sender_code,
    workspace_bin,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A helper process (the window manager), killed when dropped.
/// The app, killed when dropped (a failed assertion must not leave it running).
struct App {
    child: Option<Child>,
    addr: SocketAddr,
    data: PathBuf,
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            for pid in descendants(c.id()) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl App {
    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn token(&self) -> String {
        std::fs::read_to_string(self.data.join("gateway.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn health(&self) -> Value {
        let (_, body) = http_get(self.addr, "/health", Some(&self.token())).unwrap();
        serde_json::from_str(&body).unwrap()
    }

    fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A config whose provider is the fake (the app is healthy only with a provider).
fn config_with(fake: &FakeLlm, dir: &Path) -> PathBuf {
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        format!(
            "providers:\n  anthropic:\n    api_key: sk-tray\n    base_url: \"{}\"\n    timeout_seconds: 10\n",
            fake.anthropic_url()
        ),
    )
    .unwrap();
    file
}

fn app_command(session: &DesktopSession, data: &Path, port: u16) -> Command {
    let mut cmd = session.command(workspace_bin("openclaw-app"));
    cmd.env("OPENCLAW_DATA_DIR", data)
        .env("OPENCLAW_PORT", port.to_string())
        .env("OPENCLAW_CONFIG", data.join("config.yaml"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Starts the app and waits (30 s at most) until its gateway answers `/health`.
fn start_app(session: &DesktopSession, data: &Path) -> App {
    let port = free_port();
    let child = app_command(session, data, port)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut app = App {
        child: Some(child),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        data: data.to_owned(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(app.addr, "/health", None).is_none() {
        if let Some(status) = app.child.as_mut().unwrap().try_wait().unwrap() {
            app.child = None;
            panic!("the app exited before its gateway answered: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "the app's gateway never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    app
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in child_pids(p) {
            all.push(c);
            todo.push(c);
        }
    }
    all
}

/// The app's dashboard window processes (children run with `--dashboard-window`).
fn window_processes(app: u32) -> Vec<u32> {
    child_pids(app)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("--dashboard-window"))
        })
        .collect()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Polls `what` every 50 ms until it gives `Some`, for `within` at most.
fn wait_for<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where libayatana-appindicator (the tray's Linux backend) exports StatusNotifierItems.
const ITEMS: &str = "/org/ayatana/NotificationItem";

/// The tray as the bus shows it: the app's bus name and its item and menu paths.
struct Tray<'a> {
    session: &'a DesktopSession,
    name: String,
    item_path: String,
    menu_path: String,
}

impl<'a> Tray<'a> {
    /// Finds the StatusNotifierItem the app exports (within 20 s).
    fn find(session: &'a DesktopSession, pid: u32) -> Self {
        wait_for(
            Duration::from_secs(20),
            "the app's StatusNotifierItem",
            || {
                for name in session.names_of(pid).ok()? {
                    // libayatana-appindicator exports items under this path (one call, bounded
                    // by busctl's timeout: `tree` would walk connections that never answer).
                    let Ok(xml) = session.busctl(&[
                        "call",
                        "--",
                        &name,
                        ITEMS,
                        "org.freedesktop.DBus.Introspectable",
                        "Introspect",
                    ]) else {
                        continue;
                    };
                    let xml = xml["data"][0].as_str().unwrap_or("").to_owned();
                    let children = xml
                        .split("<node name=\"")
                        .skip(1)
                        .filter_map(|rest| rest.split('"').next())
                        .map(|child| format!("{ITEMS}/{child}"));
                    for path in children {
                        let path = path.as_str();
                        let Ok(menu) = session.busctl(&[
                            "get-property",
                            "--",
                            &name,
                            path,
                            "org.kde.StatusNotifierItem",
                            "Menu",
                        ]) else {
                            continue;
                        };
                        let menu_path = menu["data"].as_str()?.to_owned();
                        return Some(Tray {
                            session,
                            name: name.clone(),
                            item_path: path.to_owned(),
                            menu_path,
                        });
                    }
                }
                None
            },
        )
    }

    fn property(&self, prop: &str) -> Value {
        self.session
            .busctl(&[
                "get-property",
                "--",
                &self.name,
                &self.item_path,
                "org.kde.StatusNotifierItem",
                prop,
            ])
            .unwrap()["data"]
            .clone()
    }

    /// The icon's PNG file, as a panel would load it (`IconThemePath` + `IconName`); `None`
    /// while the tray swaps it (the old file goes before the property names the new one).
    fn icon_file(&self) -> Option<PathBuf> {
        let name = self.property("IconName").as_str()?.to_owned();
        let theme = self
            .property("IconThemePath")
            .as_str()
            .unwrap_or("")
            .to_owned();
        [
            PathBuf::from(&name),
            Path::new(&theme).join(&name),
            Path::new(&theme).join(format!("{name}.png")),
        ]
        .into_iter()
        .find(|p| p.is_absolute() && p.exists())
    }

    /// The RGBA of the icon's pixel at (x, y), read with ImageMagick.
    fn icon_pixel(&self, x: u32, y: u32) -> Option<[u8; 4]> {
        let file = self.icon_file()?;
        let out = Command::new("convert")
            .arg(&file)
            .args(["-crop", &format!("1x1+{x}+{y}"), "-depth", "8", "rgba:-"])
            .output()
            .expect("ImageMagick's convert (Debian package `imagemagick`)");
        if !out.status.success() {
            // Swapped while reading.
            assert!(
                !file.exists() || out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        out.stdout.get(..4)?.try_into().ok()
    }

    /// The menu's items: (id, label, toggle-state), in order.
    fn items(&self) -> Vec<(i64, String, Option<i64>)> {
        let layout = self
            .session
            .busctl(&[
                "call",
                "--",
                &self.name,
                &self.menu_path,
                "com.canonical.dbusmenu",
                "GetLayout",
                "iias",
                "0",
                "-1",
                "0",
            ])
            .unwrap();
        let mut items = Vec::new();
        collect_items(&layout["data"][1], &mut items);
        items
    }

    fn item(&self, starts_with: &str) -> (i64, String, Option<i64>) {
        self.items()
            .into_iter()
            .find(|(_, label, _)| label.starts_with(starts_with))
            .unwrap_or_else(|| panic!("no menu item {starts_with:?} in {:?}", self.items()))
    }

    fn click(&self, starts_with: &str) {
        let (id, _, _) = self.item(starts_with);
        self.click_id(id);
    }

    /// Clicks the item labelled exactly `label` (the first, in menu order).
    fn click_exact(&self, label: &str) {
        let id = self
            .items()
            .into_iter()
            .find(|(_, l, _)| l == label)
            .map(|(id, _, _)| id)
            .unwrap_or_else(|| panic!("no menu item {label:?} in {:?}", self.items()));
        self.click_id(id);
    }

    fn click_id(&self, id: i64) {
        self.session
            .busctl(&[
                "call",
                "--",
                &self.name,
                &self.menu_path,
                "com.canonical.dbusmenu",
                "Event",
                "isvu",
                &id.to_string(),
                "clicked",
                "i",
                "0",
                "0",
            ])
            .unwrap();
    }
}

/// dbusmenu's layout `(ia{sv}av)`: busctl's JSON gives `[id, {prop: {type, data}}, [children]]`
/// with each child a variant `{type, data}`.
fn collect_items(node: &Value, out: &mut Vec<(i64, String, Option<i64>)>) {
    let Some(parts) = node.as_array() else { return };
    let id = parts.first().and_then(Value::as_i64).unwrap_or(-1);
    let props = &parts[1];
    if let Some(label) = props["label"]["data"].as_str() {
        // GTK's mnemonic marker is not part of what a user reads (`__` is a real `_`).
        let label = label
            .replace("__", "\u{0}")
            .replace('_', "")
            .replace('\u{0}', "_");
        out.push((id, label, props["toggle-state"]["data"].as_i64()));
    }
    for child in parts.get(2).and_then(Value::as_array).into_iter().flatten() {
        collect_items(&child["data"], out);
    }
}

const GREEN: [u8; 3] = [0x16, 0xa3, 0x4a];
const GREY: [u8; 3] = [0x6b, 0x72, 0x80];

#[test]
fn the_tray_app_embeds_the_gateway_and_its_node_and_its_menu_drives_them() {
    let session = DesktopSession::start().unwrap();
    // A window manager, to deliver the close button's request to the dashboard window.
    let _wm = session.spawn_quiet("openbox", &[]);
    let data = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start_in_thread();
    config_with(&fake, data.path());
    let mut app = start_app(&session, data.path());
    let tray = Tray::find(&session, app.pid());

    // This computer's node is paired and linked in-process with no code typed.
    let nodes = wait_for(Duration::from_secs(10), "the app's own node", || {
        let (_, body) = http_get(app.addr, "/api/nodes", Some(&app.token()))?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (v["nodes"][0]["connected"] == true).then_some(v)
    });
    assert_eq!(
        nodes["nodes"][0]["detail"], "connected (in-process)",
        "{nodes}"
    );
    assert_eq!(app.health()["status"], "healthy");
    // Its device key went to the desktop's keyring (GNOME Keyring here), not to a file.
    let items = session.keyring_items("openclaw").unwrap();
    assert!(
        items.contains("attribute.username = node.device-key."),
        "no device key in the keyring: {items}"
    );
    assert!(!data.path().join("node/device.key").exists());
    assert!(data.path().join("node/tls.crt").exists());

    // The menu: a status line naming no problem, the actions, the toggles, Quit.
    let labels: Vec<String> = tray.items().into_iter().map(|(_, l, _)| l).collect();
    for wanted in [
        "OpenClaw is running",
        "Open Dashboard",
        "Chat",
        "Pair a device…",
        "Pair with a device's code…",
        "Pause assistant",
        "Start at login",
        "Quit OpenClaw",
    ] {
        assert!(
            labels.iter().any(|l| l == wanted),
            "{wanted:?} not in {labels:?}"
        );
    }
    // The icon is the healthy one: a filled green disc.
    wait_for(Duration::from_secs(5), "the healthy icon", || {
        (tray.icon_pixel(16, 16)? == [GREEN[0], GREEN[1], GREEN[2], 255]).then_some(())
    });

    // Pause: health says so, the check is on, the icon is a grey ring.
    tray.click("Pause assistant");
    wait_for(Duration::from_secs(5), "health saying paused", || {
        (app.health()["status"] == "paused").then_some(())
    });
    wait_for(Duration::from_secs(5), "the paused icon", || {
        let rim = tray.icon_pixel(16, 2)?;
        (rim[..3] == GREY && tray.icon_pixel(16, 16)?[3] == 0).then_some(())
    });
    assert_eq!(tray.item("Pause assistant").2, Some(1));
    let status_line = tray.items()[0].1.clone();
    assert_eq!(status_line, "Paused: not answering");
    tray.click("Pause assistant");
    wait_for(Duration::from_secs(5), "health healthy again", || {
        (app.health()["status"] == "healthy").then_some(())
    });

    // Pair a device…: the menu shows a code with its countdown, and a node pairs by it.
    tray.click("Pair a device…");
    let line = wait_for(Duration::from_secs(5), "the pairing code line", || {
        let (_, label, _) = tray.item("Pairing code");
        Some(label)
    });
    let digits: String = line
        .trim_start_matches("Pairing code ")
        .chars()
        .take(7)
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(digits.len(), 6, "{line}");
    assert!(line.contains(":") && line.ends_with("left)"), "{line}");
    let node_state = tempfile::tempdir().unwrap();
    openclaw_tests::pair_node_by_code(app.addr, &digits, "phone", node_state.path());
    wait_for(Duration::from_secs(5), "the code line to go", || {
        tray.items()
            .iter()
            .any(|(_, l, _)| l == "Pair a device…")
            .then_some(())
    });
    let (_, body) = http_get(app.addr, "/api/nodes", Some(&app.token())).unwrap();
    assert!(body.contains("\"phone\""), "{body}");

    // A chat sender waiting for approval: a line of its own in the menu, approved from there.
    // Seeded in the store from this process, as a channel driver's code would be; the list
    // read through the API makes the gateway tell the tray (an in-process driver tells it
    // when it hands the code out).
    let code = seed_sender_code(data.path(), "telegram", "42", Some("Ada"));
    let store = openclaw_store::Store::open_in_dir(data.path()).unwrap();
    let (status, _) = http_get(app.addr, "/api/approvals", Some(&app.token())).unwrap();
    assert_eq!(status, 200);
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    wait_for(Duration::from_secs(10), "the approval line", || {
        tray.items()
            .iter()
            .any(|(_, l, _)| l == &format!("Approve Ada (42) on telegram? (code {spaced})"))
            .then_some(())
    });
    tray.click_exact("Approve");
    wait_for(Duration::from_secs(10), "the sender approved", || {
        store
            .paired_senders()
            .ok()?
            .iter()
            .any(|s| s.sender == "42")
            .then_some(())
    });
    wait_for(Duration::from_secs(10), "the approval line to go", || {
        (!tray
            .items()
            .iter()
            .any(|(_, l, _)| l.starts_with("Approve Ada")))
        .then_some(())
    });

    // Start at login writes the autostart entry, and clicking again removes it.
    let autostart = session.home().join(".config/autostart");
    tray.click("Start at login");
    let entry = wait_for(Duration::from_secs(5), "the autostart entry", || {
        std::fs::read_dir(&autostart)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "desktop"))
    });
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains("openclaw-app"), "{text}");
    assert_eq!(tray.item("Start at login").2, Some(1));
    tray.click("Start at login");
    wait_for(Duration::from_secs(5), "the autostart entry to go", || {
        (!entry.exists()).then_some(())
    });

    // Open Dashboard: a window process of its own (the tray process loads no WebKit).
    assert!(
        descendants(app.pid())
            .iter()
            .all(|p| !comm(*p).starts_with("WebKit")),
        "no WebKit before a window is opened"
    );
    // (Pair with a device's code… opens it on the Devices page, where that code is typed.)
    tray.click("Pair with a device's code…");
    let window = wait_for(Duration::from_secs(20), "the window process", || {
        window_processes(app.pid()).first().copied()
    });
    let cmdline = std::fs::read_to_string(format!("/proc/{window}/cmdline")).unwrap();
    assert!(cmdline.contains("/#devices"), "{cmdline:?}");
    wait_for(
        Duration::from_secs(20),
        "the window's WebKit processes",
        || {
            descendants(window)
                .iter()
                .any(|p| comm(*p).starts_with("WebKitWeb"))
                .then_some(())
        },
    );
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", app.pid())).unwrap();
    assert!(!maps.contains("libLLVM"), "the tray process loaded GL");

    // Closing the window (as the window manager's close button does) ends its process and
    // WebKit's with it; the app stays in the tray, its gateway answering; Open Dashboard shows
    // a new window.
    let webkit: Vec<u32> = descendants(window)
        .into_iter()
        .filter(|p| comm(*p).starts_with("WebKit"))
        .collect();
    wait_for(Duration::from_secs(10), "the window to be managed", || {
        let list = session.command("wmctrl").arg("-l").output().ok()?;
        String::from_utf8_lossy(&list.stdout)
            .contains("OpenClaw")
            .then_some(())
    });
    let rss_open = openclaw_tests::rss_kib(app.pid()).unwrap();
    let closed = session
        .command("wmctrl")
        .args(["-c", "OpenClaw"])
        .status()
        .unwrap();
    assert!(closed.success());
    wait_for(
        Duration::from_secs(10),
        "the window process to exit",
        || (!child_pids(app.pid()).contains(&window)).then_some(()),
    );
    wait_for(
        Duration::from_secs(10),
        "WebKit's processes to exit",
        || {
            webkit
                .iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists())
                .then_some(())
        },
    );
    assert!(
        app.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the app quit"
    );
    // A moment later the tray gives back what showing the window left in it (heap, and the
    // pages of code that ran once); its menu, icon and gateway work on from there.
    let rss_given_back = wait_for(Duration::from_secs(10), "the memory given back", || {
        let now = openclaw_tests::rss_kib(app.pid())?;
        (now * 10 < rss_open * 7).then_some(now)
    });
    eprintln!("tray RSS {rss_open} KiB with the window, {rss_given_back} KiB after it closed");
    assert!(tray.items().iter().any(|(_, l, _)| l == "Open Dashboard"));
    // (Degraded overall by now: the phone paired above is offline.)
    assert_eq!(app.health()["checks"]["gateway"]["status"], "healthy");
    tray.click("Open Dashboard");
    let window = wait_for(Duration::from_secs(20), "a new window process", || {
        window_processes(app.pid()).first().copied()
    });

    // A second launch opens the window of the first and exits: no second gateway.
    let second = app_command(&session, data.path(), free_port())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "the second launch: {}: {}",
        second.status,
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(window_processes(app.pid()).len(), 1, "one window process");

    // Quit drains and exits 0; the window process goes with it.
    tray.click("Quit OpenClaw");
    let status = app.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    assert!(
        !Path::new(&format!("/proc/{window}")).exists()
            || std::fs::read_to_string(format!("/proc/{window}/stat"))
                .is_ok_and(|s| s.contains(") Z")),
        "the window process outlived the app"
    );
    assert!(
        http_get(app.addr, "/health", None).is_none(),
        "the port is closed"
    );
    // The data dir is free again: a server can take it.
    let audit = std::fs::read_to_string(data.path().join("logs/audit.log")).unwrap();
    assert_eq!(audit.matches("assistant.paused").count(), 1, "{audit}");
}

#[test]
fn the_app_refuses_a_data_dir_a_server_is_using_and_says_why() {
    let session = DesktopSession::start().unwrap();
    let mut server = GatewayProcess::start(None, &[]).unwrap();
    server.wait_ready(Duration::from_secs(20)).unwrap();
    let out = app_command(&session, server.data_dir(), free_port())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another OpenClaw gateway is using")
            && stderr.contains("OPENCLAW_DATA_DIR"),
        "{stderr}"
    );
    assert!(server.get("/health").is_some(), "the server still runs");
}

#[test]
fn the_server_build_links_no_webview_or_gui_toolkit() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(openclaw_tests::repo_root())
        .args([
            "tree",
            "-p",
            "openclaw-server",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--offline",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("openclaw-gateway"), "{tree}");
    for gui in ["tauri", "wry", "webkit2gtk", "gtk", "tao "] {
        assert!(
            !tree.lines().any(|l| l.starts_with(gui)),
            "openclaw-server depends on {gui}:\n{tree}"
        );
    }
}

#[test]
fn sigterm_quits_the_app_like_quit_does() {
    let session = DesktopSession::start().unwrap();
    let data = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start_in_thread();
    config_with(&fake, data.path());
    let mut app = start_app(&session, data.path());
    // Its own node is linked once the app is up; a signal then drains and exits 0.
    wait_for(Duration::from_secs(10), "the app's own node", || {
        let (_, body) = http_get(app.addr, "/api/nodes", Some(&app.token()))?;
        body.contains("\"connected\":true").then_some(())
    });
    openclaw_tests::signal(app.pid(), "TERM").unwrap();
    let status = app.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    assert!(
        http_get(app.addr, "/health", None).is_none(),
        "the port is closed"
    );
}

/// The display's pixel at (x, y) in `png`, as RGB.
fn pixel(png: &Path, x: i64, y: i64) -> [u8; 3] {
    let out = Command::new("convert")
        .arg(png)
        .args(["-crop", &format!("1x1+{x}+{y}"), "-depth", "8", "rgb:-"])
        .output()
        .expect("ImageMagick's convert (Debian package `imagemagick`)");
    out.stdout
        .get(..3)
        .and_then(|p| p.try_into().ok())
        .unwrap_or_else(|| {
            panic!(
                "no pixel at {x},{y}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

#[test]
fn the_open_tray_menu_is_drawn_in_a_tray_area_and_kept_as_a_png() {
    let session = DesktopSession::start().unwrap();
    let _wm = session.spawn_quiet("openbox", &[]);
    // A tray area (XEmbed) at the top right, where the icon is drawn and clicked as a user would.
    let _tray_area = session.spawn_quiet(
        "trayer",
        &[
            "--edge",
            "top",
            "--align",
            "right",
            "--widthtype",
            "pixel",
            "--width",
            "64",
            "--heighttype",
            "pixel",
            "--height",
            "32",
            "--transparent",
            "false",
        ],
    );
    let data = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start_in_thread();
    config_with(&fake, data.path());
    // A sender waiting since before the start, so the menu shows an approval line too (and no
    // notification, which would cover the screen below the icon, announces it).
    seed_sender_code(data.path(), "telegram", "42", Some("Ada"));
    let app = start_app(&session, data.path());
    let tray = Tray::find(&session, app.pid());
    wait_for(Duration::from_secs(10), "the approval line", || {
        tray.items()
            .iter()
            .any(|(_, l, _)| l.starts_with("Approve Ada (42) on telegram?"))
            .then_some(())
    });

    // The icon's window in the tray area (tray-icon names its class after the app).
    let geometry = wait_for(Duration::from_secs(10), "the icon in the tray area", || {
        let found = session
            .command("xdotool")
            .args(["search", "--classname", "tray-icon tray app openclaw"])
            .output()
            .ok()?;
        let window = String::from_utf8_lossy(&found.stdout)
            .lines()
            .next()?
            .to_owned();
        let shell = session
            .command("xdotool")
            .args(["getwindowgeometry", "--shell", &window])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&shell.stdout).into_owned();
        let get = |k: &str| -> Option<i64> {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))?
                .parse()
                .ok()
        };
        let (x, y, w, h) = (get("X")?, get("Y")?, get("WIDTH")?, get("HEIGHT")?);
        (w > 1 && x > 0).then_some((x, y, w, h))
    });
    let (x, y, w, h) = geometry;
    let shots = screenshot_dir();
    let shot = |name: &str| {
        let path = shots.join(name);
        let status = session
            .command("import")
            .args(["-window", "root"])
            .arg(&path)
            .status()
            .expect("ImageMagick's import");
        assert!(status.success());
        path
    };
    // Below and left of the icon is the bare root window before the click…
    let below = (x - 150, y + h + 30);
    let closed = shot("tray-closed.png");
    assert_eq!(pixel(&closed, below.0, below.1), [0, 0, 0]);
    session
        .command("xdotool")
        .args([
            "mousemove",
            &(x + w / 2).to_string(),
            &(y + h / 2).to_string(),
            "click",
            "1",
        ])
        .status()
        .unwrap();
    // …and the menu, drawn light, after it.
    let open = wait_for(Duration::from_secs(10), "the menu drawn", || {
        let open = shot("tray-menu.png");
        (pixel(&open, below.0, below.1).iter().all(|c| *c > 128)).then_some(open)
    });
    assert!(std::fs::metadata(&open).unwrap().len() > 2000);
    // The icon itself is the healthy green disc.
    let centre = pixel(&open, x + w / 2, y + h / 2);
    assert_eq!(centre, GREEN, "the icon's centre");
    // Escape closes the menu.
    session
        .command("xdotool")
        .args(["key", "Escape"])
        .status()
        .unwrap();
}

#[test]
fn notifications_tell_of_a_device_paired_and_of_a_failed_backup_once() {
    let session = DesktopSession::start().unwrap();
    let mut notes = session.watch_notifications().unwrap();
    let data = tempfile::tempdir().unwrap();
    let fake = FakeLlm::start_in_thread();
    let config = config_with(&fake, data.path());
    // Backups every second into a place that cannot be a directory (a file is in the way).
    let blocked = data.path().join("not-a-dir");
    std::fs::write(&blocked, b"x").unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "backup:\n  enabled: true\n  schedule: \"* * * * * *\"\n  path: \"{}\"\n",
        blocked.join("backups").display()
    ));
    std::fs::write(&config, text).unwrap();
    let app = start_app(&session, data.path());

    let body = notes
        .wait_for("Backup failed", Duration::from_secs(15))
        .unwrap();
    assert!(!body.is_empty());
    // The same failure, each second, is told once.
    notes.drain(Duration::from_millis(2500));
    assert_eq!(notes.count("Backup failed"), 1, "{:?}", notes.seen);

    // A device pairing by the code the gateway shows.
    let (status, body) = openclaw_tests::http_post_json(
        app.addr,
        "/api/nodes/pairing-code",
        Some(&app.token()),
        &serde_json::json!({}),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let code: Value = serde_json::from_str(&body).unwrap();
    let code = code["code"].as_str().unwrap().replace(' ', "");
    let node_state = tempfile::tempdir().unwrap();
    openclaw_tests::pair_node_by_code(app.addr, &code, "tablet", node_state.path());
    let body = notes
        .wait_for("Device paired", Duration::from_secs(10))
        .unwrap();
    assert!(body.contains("tablet"), "{body}");
}
