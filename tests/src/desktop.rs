//! A private desktop session for tests of the tray app: its own Xvfb display (a free number
//! chosen by Xvfb itself, `-displayfd`), its own session D-Bus (`dbus-daemon --session`), and
//! its own `HOME`, so the app's tray, menu, single-instance name, autostart entry and temp
//! icons are the test's alone. `busctl --json` speaks to the bus (the StatusNotifierItem and
//! `com.canonical.dbusmenu` interfaces the tray exports). Like a desktop after login, it has an
//! unlocked login keyring: GNOME Keyring's Secret Service on that bus, its files under `HOME`.

use anyhow::{Context, Result, anyhow, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub struct DesktopSession {
    xvfb: Child,
    bus: Child,
    keyring: Option<Child>,
    pub display: String,
    pub bus_address: String,
    home: tempfile::TempDir,
}

impl DesktopSession {
    /// Starts Xvfb (with `-noreset`: the display must survive its last client leaving) and a
    /// session bus. Fails, saying what to install, when either is missing.
    pub fn start() -> Result<Self> {
        let home = tempfile::tempdir()?;
        for dir in [".config", ".local/share", ".cache", "tmp", "runtime"] {
            std::fs::create_dir_all(home.path().join(dir))?;
        }
        let mut xvfb = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-noreset",
                "-nolisten",
                "tcp",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "cannot start Xvfb (Debian package `xvfb`; scripts/install-deps.sh installs it)",
            )?;
        let mut number = String::new();
        BufReader::new(
            xvfb.stdout
                .take()
                .ok_or_else(|| anyhow!("no Xvfb stdout"))?,
        )
        .read_line(&mut number)?;
        let number = number.trim();
        if number.is_empty() || number.parse::<u32>().is_err() {
            let _ = xvfb.kill();
            bail!("Xvfb did not say which display it took");
        }
        let display = format!(":{number}");
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .env("DISPLAY", &display)
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start dbus-daemon (Debian package `dbus`)")?;
        let mut address = String::new();
        BufReader::new(
            bus.stdout
                .take()
                .ok_or_else(|| anyhow!("no dbus-daemon stdout"))?,
        )
        .read_line(&mut address)?;
        let bus_address = address.trim().to_owned();
        if bus_address.is_empty() {
            let _ = bus.kill();
            let _ = xvfb.kill();
            bail!("dbus-daemon did not print its address");
        }
        let mut session = Self {
            xvfb,
            bus,
            keyring: None,
            display,
            bus_address,
            home,
        };
        session.start_keyring()?;
        Ok(session)
    }

    /// GNOME Keyring's secrets component, its login keyring made and unlocked with a password
    /// on stdin (as PAM does at login); waits until it owns `org.freedesktop.secrets`.
    fn start_keyring(&mut self) -> Result<()> {
        use std::io::Write;
        let mut daemon = self
            .command("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start gnome-keyring-daemon (Debian package `gnome-keyring`; scripts/install-deps.sh installs it)")?;
        let written = daemon
            .stdin
            .take()
            .ok_or_else(|| anyhow!("no gnome-keyring-daemon stdin"))?
            .write_all(b"test-login-password");
        self.keyring = Some(daemon);
        written.context("cannot give gnome-keyring-daemon its password")?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let names = self.busctl(&["list"])?;
            let owned = names
                .as_array()
                .into_iter()
                .flatten()
                .any(|n| n["name"] == "org.freedesktop.secrets" && n["pid"].is_u64());
            if owned {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("gnome-keyring-daemon did not take org.freedesktop.secrets within 10 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Watches the session bus for desktop notifications (`Notify` calls, whoever serves them).
    pub fn watch_notifications(&self) -> Result<NotificationWatch> {
        let mut monitor = Command::new("busctl")
            .arg(format!("--address={}", self.bus_address))
            .args([
                "monitor",
                "--json=short",
                "--match=type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run busctl monitor (Debian package `systemd`)")?;
        let lines = crate::stdout_lines(&mut monitor);
        // busctl is watching once it has said so on the bus; give it that moment.
        std::thread::sleep(std::time::Duration::from_millis(300));
        Ok(NotificationWatch {
            monitor,
            lines,
            seen: Vec::new(),
        })
    }

    /// `secret-tool lookup` of the Secret Service item with these attributes: its secret, or
    /// `None` when there is no such item.
    pub fn keyring_lookup(&self, attributes: &[(&str, &str)]) -> Result<Option<Vec<u8>>> {
        let mut cmd = self.command("secret-tool");
        cmd.arg("lookup");
        for (k, v) in attributes {
            cmd.args([k, v]);
        }
        let out = cmd
            .output()
            .context("cannot run secret-tool (Debian package `libsecret-tools`)")?;
        Ok(out.status.success().then_some(out.stdout))
    }

    /// `secret-tool store`: keeps `secret` in the login keyring under these attributes.
    pub fn keyring_store(&self, attributes: &[(&str, &str)], secret: &[u8]) -> Result<()> {
        use std::io::Write;
        let mut cmd = self.command("secret-tool");
        cmd.args(["store", "--label=test"]);
        for (k, v) in attributes {
            cmd.args([k, v]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .spawn()
            .context("cannot run secret-tool (Debian package `libsecret-tools`)")?;
        child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("no secret-tool stdin"))?
            .write_all(secret)?;
        let status = child.wait()?;
        if !status.success() {
            bail!("secret-tool store failed: {status}");
        }
        Ok(())
    }

    /// The attributes of every Secret Service item under `service`, as `secret-tool search
    /// --all` prints them (`attribute.NAME = VALUE` lines).
    pub fn keyring_items(&self, service: &str) -> Result<String> {
        let out = self
            .command("secret-tool")
            .args(["search", "--all", "service", service])
            .output()
            .context("cannot run secret-tool (Debian package `libsecret-tools`)")?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `program` with the session's display, bus and home (and no Wayland of the host).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let home = self.home.path();
        cmd.env("DISPLAY", &self.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_RUNTIME_DIR", home.join("runtime"))
            .env("TMPDIR", home.join("tmp"))
            .env_remove("WAYLAND_DISPLAY")
            .env("NO_AT_BRIDGE", "1");
        cmd
    }

    /// `program ARGS` in the session, its output dropped, killed when the result is dropped (a
    /// window manager, a tray area). Panics, saying what to install, when it cannot start.
    pub fn spawn_quiet(&self, program: &str, args: &[&str]) -> crate::Killed {
        crate::Killed(
            self.command(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {program}: {e} (scripts/install-deps.sh installs it)")
                }),
        )
    }

    /// `busctl --json=short ARGS` on the session bus, parsed.
    pub fn busctl(&self, args: &[&str]) -> Result<serde_json::Value> {
        let out = Command::new("busctl")
            .arg(format!("--address={}", self.bus_address))
            .arg("--json=short")
            // A connection that serves no objects (a library's own) would hold each call for
            // D-Bus's default 25 s.
            .arg("--timeout=3")
            .args(args)
            .output()
            .context("cannot run busctl (Debian package `systemd`)")?;
        if !out.status.success() {
            bail!(
                "busctl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            // A method with no reply values.
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "busctl {} printed no JSON: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// The bus names (unique and well-known) owned by process `pid`.
    pub fn names_of(&self, pid: u32) -> Result<Vec<String>> {
        let names = self.busctl(&["list"])?;
        Ok(names
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| n["pid"].as_u64() == Some(u64::from(pid)))
            .filter_map(|n| n["name"].as_str().map(str::to_owned))
            .collect())
    }

    /// A file under the session's temp dir (where the tray writes its icon files).
    pub fn tmp(&self) -> PathBuf {
        self.home.path().join("tmp")
    }
}

/// The notifications sent on a session's bus, as (summary, body).
pub struct NotificationWatch {
    monitor: Child,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<(String, String)>,
}

impl NotificationWatch {
    /// Waits (at most `within`) for a notification whose summary starts with `summary`; its
    /// body.
    pub fn wait_for(&mut self, summary: &str, within: std::time::Duration) -> Result<String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some((_, body)) = self.seen.iter().find(|(s, _)| s.starts_with(summary)) {
                return Ok(body.clone());
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).map_err(|_| {
                anyhow!(
                    "no notification {summary:?} within {within:?}; seen: {:?}",
                    self.seen
                )
            })?;
            let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            // Notify(app_name, replaces_id, app_icon, summary, body, actions, hints, timeout)
            let args = &message["payload"]["data"];
            if let (Some(s), Some(b)) = (args[3].as_str(), args[4].as_str()) {
                self.seen.push((s.to_owned(), b.to_owned()));
            }
        }
    }

    /// How many notifications with this summary were seen so far (after a wait).
    pub fn count(&self, summary: &str) -> usize {
        self.seen
            .iter()
            .filter(|(s, _)| s.starts_with(summary))
            .count()
    }

    /// Reads what arrived until `quiet` passes with nothing new.
    pub fn drain(&mut self, quiet: std::time::Duration) {
        while let Ok(line) = self.lines.recv_timeout(quiet) {
            if let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) {
                let args = &message["payload"]["data"];
                if let (Some(s), Some(b)) = (args[3].as_str(), args[4].as_str()) {
                    self.seen.push((s.to_owned(), b.to_owned()));
                }
            }
        }
    }
}

impl Drop for NotificationWatch {
    fn drop(&mut self) {
        let _ = self.monitor.kill();
        let _ = self.monitor.wait();
    }
}

impl Drop for DesktopSession {
    fn drop(&mut self) {
        if let Some(mut keyring) = self.keyring.take() {
            let _ = keyring.kill();
            let _ = keyring.wait();
        }
        let _ = self.bus.kill();
        let _ = self.bus.wait();
        let _ = self.xvfb.kill();
        let _ = self.xvfb.wait();
    }
}
