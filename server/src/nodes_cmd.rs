//! `openclaw nodes pair | list | describe | remove`.

use crate::output::Style;
use crate::paths::{self, LoadError};
use crate::{Global, exit};
use openclaw_gateway::nodes::{NodeConnection, NodeLinkError, gateway_key};
use openclaw_protocol::ErrorCode;
use openclaw_protocol::node::method;
use openclaw_store::{NodeRecord, Store};
use serde_json::{Value, json};

struct Ctx {
    data_dir: std::path::PathBuf,
    store: Store,
    config: openclaw_config::Config,
    audit: openclaw_gateway::AuditLog,
}

fn fail(json_out: bool, e: impl std::fmt::Display) -> u8 {
    if json_out {
        println!("{}", json!({"ok": false, "error": e.to_string()}));
    }
    eprintln!("openclaw: {e}");
    exit::FAILURE
}

fn ctx(global: &Global, json_out: bool) -> Result<Ctx, u8> {
    let loaded = match paths::load_config(global) {
        Ok(l) => l,
        Err(LoadError::Invalid(e)) => return Err(fail(json_out, e)),
        Err(LoadError::Read(e)) => return Err(fail(json_out, format!("{e:#}"))),
    };
    let data_dir = paths::data_dir(global).map_err(|e| fail(json_out, format!("{e:#}")))?;
    std::fs::create_dir_all(&data_dir).map_err(|e| {
        fail(
            json_out,
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    let db_dir = paths::under_data_dir(&data_dir, loaded.config.memory.storage_path.as_deref(), "");
    std::fs::create_dir_all(&db_dir)
        .map_err(|e| fail(json_out, format!("cannot create {}: {e}", db_dir.display())))?;
    let store = Store::open_in_dir(&db_dir).map_err(|e| fail(json_out, e))?;
    let audit = openclaw_gateway::AuditLog::new(loaded.config.logging.audit.enabled.then(|| {
        paths::under_data_dir(
            &data_dir,
            loaded.config.logging.audit.file.as_deref(),
            "logs/audit.log",
        )
    }));
    Ok(Ctx {
        data_dir,
        store,
        config: loaded.config,
        audit,
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

pub fn pair(
    global: &Global,
    addr: &str,
    code: &str,
    name: Option<String>,
    priority: i64,
    json_out: bool,
) -> u8 {
    let c = match ctx(global, json_out) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let key = match gateway_key(&c.data_dir) {
        Ok(k) => k,
        Err(e) => return fail(json_out, e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(json_out, e),
    };
    let gateway_name = c.config.agent.name.clone();
    let result = rt.block_on(async {
        NodeConnection::open(addr, None)
            .await?
            .pair(code, &gateway_name, &key)
            .await
    });
    let node = match result {
        Ok(n) => n,
        Err(e) => {
            c.audit.record(
                "node.pairing_failed",
                json!({"address": addr, "error": e.to_string()}),
            );
            return fail(json_out, e);
        }
    };
    let id = match openclaw_pairing::identity::device_id_of(&node.public_key) {
        Ok(id) => id,
        Err(e) => return fail(json_out, e),
    };
    let record = NodeRecord {
        id: id.clone(),
        name: name.unwrap_or_else(|| node.name.clone()),
        address: addr.to_owned(),
        public_key: node.public_key.clone(),
        cert_fingerprint: node.cert_fingerprint.clone().unwrap_or_default(),
        priority,
        capabilities: node.capabilities.clone(),
        paired_at: jiff::Timestamp::now().as_second(),
    };
    if let Err(e) = c.store.upsert_node(&record) {
        return fail(json_out, e);
    }
    let _ = c.audit.record_now(
        "node.paired",
        json!({"name": record.name, "id": id, "address": addr, "cert_fingerprint": record.cert_fingerprint}),
    );
    if json_out {
        println!(
            "{}",
            json!({"ok": true, "name": record.name, "id": id, "address": addr, "capabilities": record.capabilities})
        );
    } else {
        let s = Style::stdout();
        println!(
            "{} paired with {} ({}) at {addr}",
            s.ok("✓"),
            record.name,
            &id[..12]
        );
    }
    exit::OK
}

pub fn list(global: &Global, json_out: bool) -> u8 {
    let c = match ctx(global, json_out) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let nodes = match c.store.nodes() {
        Ok(n) => n,
        Err(e) => return fail(json_out, e),
    };
    if json_out {
        let list: Vec<Value> = nodes
            .iter()
            .map(|n| json!({"name": n.name, "id": n.id, "address": n.address, "priority": n.priority, "capabilities": n.capabilities, "paired_at": n.paired_at}))
            .collect();
        println!("{}", json!({"nodes": list}));
    } else if nodes.is_empty() {
        println!(
            "no paired nodes: run `openclaw-node pair` on the device, then `openclaw nodes pair HOST:PORT --code NNNNNN`"
        );
    } else {
        println!(
            "{:<16} {:<14} {:<24} {:>8}  CAPABILITIES",
            "NAME", "ID", "ADDRESS", "PRIORITY"
        );
        for n in &nodes {
            println!(
                "{:<16} {:<14} {:<24} {:>8}  {}",
                n.name,
                &n.id[..12.min(n.id.len())],
                n.address,
                n.priority,
                n.capabilities.join(",")
            );
        }
    }
    exit::OK
}

/// Calls `method` on the paired node `name` over an authenticated connection.
fn call(
    global: &Global,
    name: &str,
    method: &str,
    params: Value,
    json_out: bool,
) -> Result<(NodeRecord, Value), u8> {
    let c = ctx(global, json_out)?;
    let node = match c
        .store
        .nodes()
        .map(|n| n.into_iter().find(|n| n.name == name))
    {
        Ok(Some(n)) => n,
        Ok(None) => {
            return Err(fail(
                json_out,
                format!("no paired node named `{name}` (see `openclaw nodes list`)"),
            ));
        }
        Err(e) => return Err(fail(json_out, e)),
    };
    let key = gateway_key(&c.data_dir).map_err(|e| fail(json_out, e))?;
    let rt = runtime().map_err(|e| fail(json_out, e))?;
    let result = rt.block_on(async {
        let mut conn =
            NodeConnection::open(&node.address, Some(node.cert_fingerprint.clone())).await?;
        conn.authenticate(&key, &node.public_key).await?;
        conn.request(method, params).await
    });
    match result {
        Ok(v) => Ok((node, v)),
        Err(e) => Err(fail(json_out, e)),
    }
}

/// `nodes invoke`: prints the node's answer as JSON.
pub fn invoke(global: &Global, name: Option<&str>, command: &str, params: Option<&str>) -> u8 {
    let params: Value = match params.map(serde_json::from_str).transpose() {
        Ok(p) => p.unwrap_or(Value::Null),
        Err(e) => return fail(false, format!("--params is not JSON: {e}")),
    };
    let Some(name) = name else {
        return invoke_via_gateway(global, command, params);
    };
    match call(global, name, command, params, false) {
        Ok((_, payload)) => {
            println!("{payload}");
            exit::OK
        }
        Err(code) => code,
    }
}

/// `nodes invoke` without `--node`: the running gateway routes the call.
fn invoke_via_gateway(global: &Global, command: &str, params: Value) -> u8 {
    let config = match crate::client::client_config(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let addr = crate::paths::gateway_addr(&config);
    let body = serde_json::json!({"command": command, "params": params});
    // Longer than the gateway's own per-node timeout, so its fallback to the next node is seen.
    let timeout = std::time::Duration::from_secs(120);
    let token = crate::client::token(global, &config);
    match crate::client::post(&addr, "/api/nodes/invoke", token.as_deref(), &body, timeout) {
        crate::client::Reply::NotRunning(why) => {
            eprintln!("{}", crate::client::not_running(&addr, &why));
            eprintln!("openclaw: or call a node directly with --node NAME");
            exit::NOT_RUNNING
        }
        crate::client::Reply::Answer { status, body } => {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if status == 200 {
                eprintln!(
                    "served by {}",
                    v["node"].as_str().unwrap_or("an unnamed node")
                );
                println!("{}", v["payload"]);
                return exit::OK;
            }
            let code = v["error"]["code"].as_str().unwrap_or("ERROR");
            let message = v["error"]["message"].as_str().unwrap_or(body.trim());
            match v["node"].as_str() {
                Some(node) => eprintln!("openclaw: {node} refused ({code}): {message}"),
                None if status == 401 => {
                    eprintln!("{}", crate::client::refused_token(&addr, token.is_some()))
                }
                None => eprintln!("openclaw: {message} ({code})"),
            }
            exit::FAILURE
        }
    }
}

pub fn describe(global: &Global, name: &str, json_out: bool) -> u8 {
    let (node, d) = match call(global, name, method::DESCRIBE, Value::Null, json_out) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if json_out {
        println!("{d}");
        return exit::OK;
    }
    println!(
        "{} {} ({})",
        Style::stdout().ok("●"),
        d["name"].as_str().unwrap_or(name),
        node.address
    );
    println!("  id:           {}", d["id"].as_str().unwrap_or(""));
    println!(
        "  platform:     {} · openclaw-node {}",
        d["platform"].as_str().unwrap_or("?"),
        d["version"].as_str().unwrap_or("?")
    );
    let caps: Vec<&str> = d["capabilities"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    println!(
        "  capabilities: {}",
        if caps.is_empty() {
            "none".to_owned()
        } else {
            caps.join(", ")
        }
    );
    if let Some(missing) = d["unavailable"].as_object() {
        for (method, reason) in missing {
            println!(
                "  unavailable:  {method}: {}",
                reason.as_str().unwrap_or("?")
            );
        }
    }
    exit::OK
}

pub fn remove(global: &Global, name: &str, json_out: bool) -> u8 {
    let c = match ctx(global, json_out) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match c.store.remove_node(name) {
        Ok(true) => {
            let _ = c.audit.record_now("node.removed", json!({"name": name}));
            if json_out {
                println!("{}", json!({"ok": true, "removed": name}));
            } else {
                println!("removed {name}");
            }
            exit::OK
        }
        Ok(false) => fail(json_out, format!("no paired node named `{name}`")),
        Err(e) => fail(json_out, e),
    }
}

const UNPAIRED_NODE: &str = "an openclaw node answers here (pair to see its details)";

/// What a tailnet peer's port said.
enum Probe {
    /// `node.describe`'s answer (a node this gateway is paired with, authenticated).
    Described(Value),
    /// A node that does not know this gateway: it opened with its challenge and refused
    /// `node.describe` as `NOT_PAIRED`, as nodes do for strangers.
    Stranger,
}

/// Asks the node at `addr` to describe itself: authenticated when this gateway has paired a
/// node at that address, else as a stranger (which a node answers only with a refusal).
async fn probe(c: &Ctx, addr: &str, known: Option<&NodeRecord>) -> Result<Probe, String> {
    if let Some(node) = known {
        let key = gateway_key(&c.data_dir).map_err(|e| e.to_string())?;
        let mut conn = NodeConnection::open(addr, Some(node.cert_fingerprint.clone()))
            .await
            .map_err(|e| e.to_string())?;
        conn.authenticate(&key, &node.public_key)
            .await
            .map_err(|e| e.to_string())?;
        return conn
            .request(method::DESCRIBE, Value::Null)
            .await
            .map(Probe::Described)
            .map_err(|e| e.to_string());
    }
    let mut conn = NodeConnection::open(addr, None)
        .await
        .map_err(|e| e.to_string())?;
    match conn.request(method::DESCRIBE, Value::Null).await {
        Ok(d) => Ok(Probe::Described(d)),
        Err(NodeLinkError::Refused {
            code: Some(ErrorCode::NotPaired),
            ..
        }) => Ok(Probe::Stranger),
        Err(e) => Err(e.to_string()),
    }
}

/// `nodes discover`: tailnet peers (from tailscaled's LocalAPI) that answer as openclaw nodes:
/// described in full when paired with this gateway, else only as "a node answers here" (nodes
/// describe themselves to paired gateways only).
pub fn discover(global: &Global, socket: &std::path::Path, port: u16, json_out: bool) -> u8 {
    let c = match ctx(global, json_out) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !socket.exists() {
        return fail(
            json_out,
            format!(
                "tailscaled is not running here (no LocalAPI socket at {}): discovery needs Tailscale; pair a node by address instead: openclaw nodes pair HOST:{port} --code NNNNNN",
                socket.display()
            ),
        );
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(json_out, e),
    };
    let paired: Vec<NodeRecord> = c.store.nodes().unwrap_or_default();
    let result = rt.block_on(async {
        let api = tailscale_localapi::LocalApi::new_with_socket_path(socket);
        let status = api
            .status()
            .await
            .map_err(|e| format!("tailscaled did not answer its LocalAPI: {e}"))?;
        let mut found = Vec::new();
        let mut peers: Vec<_> = status.peer.into_values().filter(|p| p.online).collect();
        peers.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        for peer in peers {
            let Some(ip) = peer
                .tailscale_ips
                .iter()
                .find(|ip| ip.is_ipv4())
                .or(peer.tailscale_ips.first())
            else {
                continue;
            };
            let addr = std::net::SocketAddr::new(*ip, port).to_string();
            let known = paired.iter().find(|n| n.address == addr);
            if let Ok(Ok(probe)) =
                tokio::time::timeout(std::time::Duration::from_secs(3), probe(&c, &addr, known))
                    .await
            {
                found.push(match probe {
                    Probe::Described(d) => {
                        let id = d["id"].as_str().unwrap_or("").to_owned();
                        json!({
                            "host": peer.hostname,
                            "address": addr,
                            "name": d["name"],
                            "id": id,
                            "platform": d["platform"],
                            "capabilities": d["capabilities"],
                            "paired": paired.iter().any(|n| n.id == id),
                        })
                    }
                    Probe::Stranger => json!({
                        "host": peer.hostname,
                        "address": addr,
                        "name": null,
                        "paired": false,
                        "details": UNPAIRED_NODE,
                    }),
                });
            }
        }
        Ok::<_, String>(found)
    });
    let found = match result {
        Ok(f) => f,
        Err(e) => return fail(json_out, e),
    };
    if json_out {
        println!("{}", json!({"nodes": found}));
    } else if found.is_empty() {
        println!("no tailnet peer answers as an openclaw node on port {port}");
    } else {
        for n in &found {
            println!(
                "{:<20} {:<22} {}{}",
                n["host"].as_str().unwrap_or(""),
                n["address"].as_str().unwrap_or(""),
                n["name"].as_str().unwrap_or(UNPAIRED_NODE),
                if n["paired"] == true {
                    "  (paired)"
                } else {
                    ""
                }
            );
        }
    }
    exit::OK
}
