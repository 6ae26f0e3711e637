//! A loopback tailscaled: the LocalAPI over a unix socket (`GET /localapi/v0/status`,
//! `GET /localapi/v0/whois?addr=…`), answering with responses in the shape tailscaled returns.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A tailnet peer the fake reports.
#[derive(Debug, Clone)]
pub struct Peer {
    pub host_name: String,
    pub ip: String,
    pub login: String,
    pub online: bool,
}

struct Tailnet {
    peers: Vec<Peer>,
}

const T: &str = "2026-11-01T10:00:00Z";

fn peer_status(p: &Peer, user_id: i64) -> Value {
    json!({
        "ID": format!("n{user_id}"), "PublicKey": "nodekey:00", "HostName": p.host_name,
        "DNSName": format!("{}.tail1234.ts.net.", p.host_name), "OS": "linux", "UserID": user_id,
        "TailscaleIPs": [p.ip], "Addrs": null, "CurAddr": "", "Relay": "fra",
        "RxBytes": 0, "TxBytes": 0, "Created": T, "LastWrite": T, "LastSeen": T,
        "LastHandshake": T, "Online": p.online, "ExitNode": false, "ExitNodeOption": false,
        "Active": p.online, "PeerAPIURL": null, "InNetworkMap": true, "InMagicSock": true,
        "InEngine": true
    })
}

fn status(tailnet: &Tailnet) -> Value {
    let me = Peer {
        host_name: "gateway".into(),
        ip: "100.64.0.1".into(),
        login: "owner@example.com".into(),
        online: true,
    };
    let mut peers = serde_json::Map::new();
    let mut users = serde_json::Map::new();
    users.insert(
        "1".into(),
        json!({"ID": 1, "LoginName": me.login, "DisplayName": "Owner"}),
    );
    for (i, p) in tailnet.peers.iter().enumerate() {
        let uid = i as i64 + 2;
        peers.insert(format!("nodekey:{i:02}"), peer_status(p, uid));
        users.insert(
            uid.to_string(),
            json!({"ID": uid, "LoginName": p.login, "DisplayName": p.login}),
        );
    }
    json!({
        "Version": "1.80.0", "BackendState": "Running", "AuthURL": "",
        "TailscaleIPs": [me.ip], "Self": peer_status(&me, 1), "Health": [],
        "CurrentTailnet": {"Name": "example.com", "MagicDNSSuffix": "tail1234.ts.net", "MagicDNSEnabled": true},
        "CertDomains": null, "Peer": peers, "User": users
    })
}

fn whois(p: &Peer) -> Value {
    json!({
        "Node": {
            "ID": 7, "StableID": "nstable7", "Name": format!("{}.tail1234.ts.net.", p.host_name),
            "User": 2, "Key": "nodekey:07", "KeyExpiry": T, "Machine": "mkey:07", "DiscoKey": "discokey:07",
            "Addresses": [format!("{}/32", p.ip)], "AllowedIPs": [format!("{}/32", p.ip)],
            "Endpoints": [], "DERP": "127.3.3.40:1", "Hostinfo": {"OS": "linux", "Hostname": p.host_name},
            "Created": T, "LastSeen": T, "Online": p.online, "MachineAuthorized": true,
            "ComputedName": p.host_name, "ComputedNameWithHost": p.host_name
        },
        "UserProfile": {"ID": 2, "LoginName": p.login, "DisplayName": p.login},
        "Caps": []
    })
}

/// Serves the fake LocalAPI on `dir/tailscaled.sock` from a thread of its own.
pub struct FakeTailscaled {
    socket: PathBuf,
    _runtime: Arc<super::RuntimeThread>,
}

impl std::fmt::Debug for FakeTailscaled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTailscaled")
            .field("socket", &self.socket)
            .finish()
    }
}

impl FakeTailscaled {
    pub fn start(dir: &Path, peers: Vec<Peer>) -> Self {
        let socket = dir.join("tailscaled.sock");
        let _ = std::fs::remove_file(&socket);
        let tailnet = Arc::new(Mutex::new(Tailnet { peers }));
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let path = socket.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake tailscaled runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::UnixListener::bind(&path).expect("bind fake tailscaled socket");
                let _ = tx.send(());
                let app = Router::new()
                    .route("/localapi/v0/status", axum::routing::get(status_route))
                    .route("/localapi/v0/whois", axum::routing::get(whois_route))
                    .with_state(tailnet);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stop_rx => {}
                }
            });
        });
        rx.recv().expect("fake tailscaled started");
        Self {
            socket,
            _runtime: Arc::new(super::RuntimeThread {
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

async fn status_route(State(t): State<Arc<Mutex<Tailnet>>>) -> Response {
    let t = t.lock().unwrap_or_else(|p| p.into_inner());
    axum::Json(status(&t)).into_response()
}

async fn whois_route(
    State(t): State<Arc<Mutex<Tailnet>>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let t = t.lock().unwrap_or_else(|p| p.into_inner());
    let addr = q.get("addr").cloned().unwrap_or_default();
    let ip = addr
        .rsplit_once(':')
        .map(|(ip, _)| ip.trim_matches(['[', ']']))
        .unwrap_or(&addr);
    match t.peers.iter().find(|p| p.ip == ip) {
        Some(p) => axum::Json(whois(p)).into_response(),
        None => (StatusCode::NOT_FOUND, "no match for IP:port").into_response(),
    }
}
