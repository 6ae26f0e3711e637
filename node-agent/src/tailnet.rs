//! Tailscale: when tailscaled's LocalAPI socket is there, every incoming connection is looked up
//! with `whois`, and the node can be limited to given tailnet users. Without tailscaled the
//! node works on plain IPs and says that peers are not checked.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tailscale_localapi::{LocalApi, UnixStreamClient};

/// Where tailscaled listens on Linux.
pub const DEFAULT_SOCKET: &str = "/var/run/tailscale/tailscaled.sock";

pub struct PeerGuard {
    api: Option<LocalApi<UnixStreamClient>>,
    socket: PathBuf,
    allowed_users: Vec<String>,
}

impl std::fmt::Debug for PeerGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PeerGuard {
    /// No checks at all (tests, or nodes reached without Tailscale).
    pub fn off() -> Self {
        Self {
            api: None,
            socket: PathBuf::new(),
            allowed_users: Vec::new(),
        }
    }

    pub fn new(socket: &Path, allowed_users: Vec<String>) -> Self {
        Self {
            api: socket
                .exists()
                .then(|| LocalApi::new_with_socket_path(socket)),
            socket: socket.to_owned(),
            allowed_users,
        }
    }

    /// Whether peers are checked at all (tailscaled found).
    pub fn checks_peers(&self) -> bool {
        self.api.is_some()
    }

    /// One line for the start-up banner.
    pub fn describe(&self) -> String {
        match (&self.api, self.allowed_users.is_empty()) {
            (Some(_), true) => format!(
                "tailscale: peers identified with whois ({})",
                self.socket.display()
            ),
            (Some(_), false) => format!(
                "tailscale: only tailnet users {} may connect",
                self.allowed_users.join(", ")
            ),
            (None, true) => format!(
                "tailscale: tailscaled not found at {}; peers are not checked (plain IPs work)",
                self.socket.display()
            ),
            (None, false) => format!(
                "tailscale: tailnet users are restricted but tailscaled is not found at {}; every connection will be refused",
                self.socket.display()
            ),
        }
    }

    /// The tailnet login of `remote`, or why it may not connect.
    pub async fn check(&self, remote: SocketAddr) -> Result<Option<String>, String> {
        let Some(api) = &self.api else {
            return if self.allowed_users.is_empty() {
                Ok(None)
            } else {
                Err(format!(
                    "tailscaled is not reachable at {} to check {remote}",
                    self.socket.display()
                ))
            };
        };
        match api.whois(remote).await {
            Ok(who) => {
                let login = who.user_profile.login_name;
                if self.allowed_users.is_empty() || self.allowed_users.contains(&login) {
                    Ok(Some(login))
                } else {
                    Err(format!(
                        "{remote} is tailnet user {login}, who is not allowed here"
                    ))
                }
            }
            Err(e) if self.allowed_users.is_empty() => {
                // Not a tailnet peer (e.g. LAN): allowed, since no restriction is set.
                let _ = e;
                Ok(None)
            }
            Err(e) => Err(format!("{remote} is not a known tailnet peer ({e})")),
        }
    }
}
