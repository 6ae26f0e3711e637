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
        Err(e @ LoadError::Read { .. }) => return Err(fail(json_out, format!("{e:#}"))),
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

/// What the running gateway said to a control-API call, or that none answered.
enum Live {
    Answered {
        status: u16,
        body: Value,
    },
    NotRunning,
    /// A gateway answered but refused our token (exit code already chosen).
    Failed(u8),
}

/// Asks the gateway this CLI's config points at; `NotRunning` when nothing answers there.
fn ask_gateway(
    global: &Global,
    json_out: bool,
    call: impl FnOnce(&str, Option<&str>) -> crate::client::Reply,
) -> Live {
    let Ok(config) = crate::client::client_config(global) else {
        return Live::NotRunning;
    };
    let addr = paths::gateway_addr(&config);
    let token = crate::client::token(global, &config);
    match call(&addr, token.as_deref()) {
        crate::client::Reply::NotRunning(_) => Live::NotRunning,
        crate::client::Reply::Answer { status: 401, .. } => {
            if json_out {
                println!(
                    "{}",
                    json!({"ok": false, "error": "the gateway refused our token"})
                );
            }
            eprintln!("{}", crate::client::refused_token(&addr, token.is_some()));
            Live::Failed(exit::FAILURE)
        }
        crate::client::Reply::Answer { status, body } => Live::Answered {
            status,
            body: serde_json::from_str(&body)
                .unwrap_or_else(|_| json!({"error": {"message": body}})),
        },
    }
}

/// The error a control-API answer carries, as the CLI reports it.
fn api_failure(json_out: bool, body: &Value) -> u8 {
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("the gateway refused")
        .to_owned();
    fail(json_out, message)
}

/// `nodes pair`: through the running gateway when one answers (the node is connected and its
/// capabilities are tools at once), else straight into the store for the next start.
pub fn pair(
    global: &Global,
    addr: &str,
    code: &str,
    name: Option<String>,
    priority: i64,
    json_out: bool,
) -> u8 {
    let req = openclaw_gateway::PairRequest {
        address: addr.to_owned(),
        code: code.to_owned(),
        name,
        priority,
    };
    let body = serde_json::to_value(&req).unwrap_or(Value::Null);
    let live = ask_gateway(global, json_out, |gw, token| {
        // Longer than the node link's own time limits, so their errors are the answer.
        crate::client::post(
            gw,
            "/api/nodes/pair",
            token,
            &body,
            std::time::Duration::from_secs(60),
        )
    });
    match live {
        Live::Failed(code) => code,
        Live::Answered { status: 200, body } => {
            let name = body["name"].as_str().unwrap_or("");
            let id = body["id"].as_str().unwrap_or("");
            report_paired(json_out, name, id, addr, &body["capabilities"], true)
        }
        Live::Answered { body, .. } => api_failure(json_out, &body),
        Live::NotRunning => pair_offline(global, &req, json_out),
    }
}

fn report_paired(json_out: bool, name: &str, id: &str, addr: &str, caps: &Value, live: bool) -> u8 {
    if json_out {
        println!(
            "{}",
            json!({"ok": true, "name": name, "id": id, "address": addr, "capabilities": caps, "connected_now": live})
        );
    } else {
        let s = Style::stdout();
        println!(
            "{} paired with {} ({}) at {addr}{}",
            s.ok("✓"),
            name,
            &id[..12.min(id.len())],
            if live {
                ""
            } else {
                " (no gateway is running: it connects when one starts)"
            }
        );
    }
    exit::OK
}

/// Pairs from this process and writes the store (no gateway runs).
fn pair_offline(global: &Global, req: &openclaw_gateway::PairRequest, json_out: bool) -> u8 {
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
    let store = std::sync::Arc::new(c.store);
    let result = rt.block_on(openclaw_gateway::node_pairing::pair(
        store,
        &c.audit,
        &c.config.agent.name,
        &key,
        req,
        None,
    ));
    match result {
        Ok(record) => {
            let caps = json!(record.capabilities);
            report_paired(
                json_out,
                &record.name,
                &record.id,
                &req.address,
                &caps,
                false,
            )
        }
        Err(e) => fail(json_out, e),
    }
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
pub fn invoke(
    global: &Global,
    name: Option<&str>,
    command: &str,
    params: Option<&str>,
    timeout_ms: Option<u64>,
) -> u8 {
    let params: Value = match params.map(serde_json::from_str).transpose() {
        Ok(p) => p.unwrap_or(Value::Null),
        Err(e) => return fail(false, format!("--params is not JSON: {e}")),
    };
    let Some(name) = name else {
        return invoke_via_gateway(global, command, params, timeout_ms);
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
fn invoke_via_gateway(
    global: &Global,
    command: &str,
    params: Value,
    timeout_ms: Option<u64>,
) -> u8 {
    let config = match crate::client::client_config(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let addr = crate::paths::gateway_addr(&config);
    let mut body = serde_json::json!({"command": command, "params": params});
    if let Some(ms) = timeout_ms {
        body["timeoutMs"] = ms.into();
    }
    // Longer than the gateway's own per-node timeout, so its fallback to the next node is seen,
    // and than the wait for a sleeping node that was asked for.
    let timeout = std::time::Duration::from_secs(120)
        + std::time::Duration::from_millis(timeout_ms.unwrap_or(0));
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

/// `nodes remove`: through the running gateway when one answers (the link closes now), else
/// from the store.
pub fn remove(global: &Global, name: &str, json_out: bool) -> u8 {
    let path = format!("/api/nodes/{}", percent_encode_segment(name));
    match ask_gateway(global, json_out, |gw, token| {
        crate::client::delete(gw, &path, token)
    }) {
        Live::Failed(code) => return code,
        Live::Answered { status: 200, .. } => return report_removed(json_out, name),
        Live::Answered { body, .. } => return api_failure(json_out, &body),
        Live::NotRunning => {}
    }
    let c = match ctx(global, json_out) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match c.store.remove_node(name) {
        Ok(true) => {
            let _ = c.audit.record_now("node.removed", json!({"name": name}));
            report_removed(json_out, name)
        }
        Ok(false) => fail(json_out, format!("no paired node named `{name}`")),
        Err(e) => fail(json_out, e),
    }
}

fn report_removed(json_out: bool, name: &str) -> u8 {
    if json_out {
        println!("{}", json!({"ok": true, "removed": name}));
    } else {
        println!("removed {name}");
    }
    exit::OK
}

/// A node name as one URL path segment (names are the user's: spaces, slashes, anything).
fn percent_encode_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// `nodes pair --listen`: the running gateway shows a code, and this waits (as long as the code
/// is valid) for a node to pair by it from its side (`openclaw-node pair --gateway`).
pub fn pair_listen(
    global: &Global,
    valid_seconds: u64,
    name: Option<String>,
    priority: i64,
    json_out: bool,
) -> u8 {
    let config = match crate::client::client_config(global) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let addr = paths::gateway_addr(&config);
    let token = crate::client::token(global, &config);
    let body = json!({"valid_seconds": valid_seconds, "name": name, "priority": priority});
    let before: Vec<String> = match listed(&addr, token.as_deref()) {
        Some(names) => names,
        None => {
            eprintln!("{}", crate::client::not_running(&addr, "no answer"));
            eprintln!("openclaw: --listen needs the running gateway: the node dials it");
            return exit::NOT_RUNNING;
        }
    };
    let shown = crate::client::post(
        &addr,
        "/api/nodes/pairing-code",
        token.as_deref(),
        &body,
        std::time::Duration::from_secs(10),
    );
    let code = match shown {
        crate::client::Reply::Answer { status: 200, body } => serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned)),
        crate::client::Reply::Answer { status: 401, .. } => {
            eprintln!("{}", crate::client::refused_token(&addr, token.is_some()));
            return exit::FAILURE;
        }
        crate::client::Reply::Answer { body, .. } => {
            return fail(
                json_out,
                format!("the gateway refused to show a code: {body}"),
            );
        }
        crate::client::Reply::NotRunning(why) => {
            eprintln!("{}", crate::client::not_running(&addr, &why));
            return exit::NOT_RUNNING;
        }
    };
    let Some(code) = code else {
        return fail(json_out, "the gateway answered without a code");
    };
    if json_out {
        println!("{}", json!({"code": code, "valid_seconds": valid_seconds}));
    } else {
        println!(
            "pairing code: {code} (valid {valid_seconds} s, {} tries)",
            openclaw_pairing::MAX_TRIES
        );
        println!(
            "on the device: openclaw-node pair --gateway <this host>:{} --code {code}",
            config.gateway.port
        );
        println!("waiting for the node…");
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(valid_seconds);
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let Some(now) = listed(&addr, token.as_deref()) else {
            return fail(json_out, "the gateway stopped answering while waiting");
        };
        if let Some(new) = now.into_iter().find(|n| !before.contains(n)) {
            if json_out {
                println!("{}", json!({"ok": true, "name": new}));
            } else {
                println!(
                    "{} paired with {new}: keep it linked with `openclaw-node run --gateway <this host>:{}` on the device",
                    Style::stdout().ok("✓"),
                    config.gateway.port
                );
            }
            return exit::OK;
        }
    }
    fail(
        json_out,
        format!("no node paired within {valid_seconds} s; the code has expired"),
    )
}

/// The names the running gateway lists as paired, or `None` when it does not answer.
fn listed(addr: &str, token: Option<&str>) -> Option<Vec<String>> {
    match crate::client::get(addr, "/api/nodes", token) {
        crate::client::Reply::Answer { status: 200, body } => {
            let v: Value = serde_json::from_str(&body).ok()?;
            Some(
                v["nodes"]
                    .as_array()?
                    .iter()
                    .filter_map(|n| n["name"].as_str().map(str::to_owned))
                    .collect(),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn node_names_become_one_path_segment() {
        assert_eq!(super::percent_encode_segment("my mac/2"), "my%20mac%2F2");
        assert_eq!(super::percent_encode_segment("laptop-1.x"), "laptop-1.x");
    }
}
