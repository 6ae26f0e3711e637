//! Tailscale: when tailscaled's LocalAPI socket is there, every incoming connection is looked up
//! with `whois`, and the node can be limited to given tailnet users. Without tailscaled the
//! node works on plain IPs and says that peers are not checked.
//!
//! The LocalAPI client is the `tailnet` feature (on in the `openclaw-node` binary); a build
//! without it (a phone's node, which reaches its gateway by dialing out) checks no peer, and
//! refuses every one when tailnet users are restricted: a restriction it cannot enforce must
//! not silently let everyone in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
#[cfg(feature = "tailnet")]
use tailscale_localapi::{LocalApi, UnixStreamClient};

#[cfg(feature = "tailnet")]
type Api = LocalApi<UnixStreamClient>;

/// Without the LocalAPI client there is never an API to ask.
#[cfg(not(feature = "tailnet"))]
enum Api {}

/// Where tailscaled listens on Linux.
pub const DEFAULT_SOCKET: &str = "/var/run/tailscale/tailscaled.sock";

pub struct PeerGuard {
    api: Option<Api>,
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
        #[cfg(feature = "tailnet")]
        let api = socket
            .exists()
            .then(|| LocalApi::new_with_socket_path(socket));
        #[cfg(not(feature = "tailnet"))]
        let api = None;
        Self {
            api,
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
        #[cfg(not(feature = "tailnet"))]
        return if self.allowed_users.is_empty() {
            "tailscale: this build has no Tailscale support; peers are not checked".into()
        } else {
            "tailscale: tailnet users are restricted but this build has no Tailscale support; every connection will be refused".into()
        };
        #[cfg(feature = "tailnet")]
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
        whois(api, remote, &self.allowed_users).await
    }
}

#[cfg(not(feature = "tailnet"))]
async fn whois(api: &Api, _: SocketAddr, _: &[String]) -> Result<Option<String>, String> {
    match *api {}
}

#[cfg(feature = "tailnet")]
async fn whois(
    api: &Api,
    remote: SocketAddr,
    allowed_users: &[String],
) -> Result<Option<String>, String> {
    match api.whois(remote).await {
        Ok(who) => {
            let login = who.user_profile.login_name;
            if allowed_users.is_empty() || allowed_users.contains(&login) {
                Ok(Some(login))
            } else {
                Err(format!(
                    "{remote} is tailnet user {login}, who is not allowed here"
                ))
            }
        }
        Err(e) if allowed_users.is_empty() => {
            // Not a tailnet peer (e.g. LAN): allowed, since no restriction is set.
            let _ = e;
            Ok(None)
        }
        Err(e) => Err(format!("{remote} is not a known tailnet peer ({e})")),
    }
}
