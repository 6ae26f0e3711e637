//! Pairing a device node by the code it shows, and keeping the result: one procedure for the
//! running gateway (its control API, so the node is connected at once) and for the CLI when no
//! gateway runs (it writes the store for the next start).

use crate::audit::AuditLog;
use crate::nodes::{NodeConnection, NodeLinkError};
use openclaw_pairing::identity::DeviceKey;
use openclaw_store::{NodeRecord, Store};
use serde_json::json;
use std::sync::Arc;

/// What to pair: the node's `HOST:PORT`, the 6-digit code it shows, and how to keep it.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct PairRequest {
    pub address: String,
    pub code: String,
    /// The name to keep it under; the node's own name when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Lower is preferred when several nodes offer a capability.
    #[serde(default = "default_priority")]
    pub priority: i64,
}

fn default_priority() -> i64 {
    1
}

#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error("{0}")]
    Link(#[from] NodeLinkError),
    #[error("the node's key is not a valid Ed25519 key: {0}")]
    BadKey(String),
    #[error("cannot record the node: {0}")]
    Store(String),
    #[error("pairing task failed: {0}")]
    Task(String),
}

impl PairError {
    /// Whether the node refused the code (a wrong or expired code, too many tries): the
    /// caller's fault, not the gateway's.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Self::Link(NodeLinkError::Refused { .. }))
    }
}

/// Pairs with the node at `req.address` as the gateway `key`, stores it (replacing a node of
/// the same id) and audits the outcome. The store is written on the blocking pool.
pub async fn pair(
    store: Arc<Store>,
    audit: &AuditLog,
    gateway_name: &str,
    key: &DeviceKey,
    req: &PairRequest,
    tasks: Option<&crate::tasks::Tasks>,
) -> Result<NodeRecord, PairError> {
    let paired = async {
        NodeConnection::open_in(&req.address, None, tasks)
            .await?
            .pair(&req.code, gateway_name, key)
            .await
    }
    .await;
    let node = match paired {
        Ok(n) => n,
        Err(e) => {
            audit.record(
                "node.pairing_failed",
                json!({"address": req.address, "error": e.to_string()}),
            );
            return Err(e.into());
        }
    };
    let id = openclaw_pairing::identity::device_id_of(&node.public_key)
        .map_err(|e| PairError::BadKey(e.to_string()))?;
    let record = NodeRecord {
        id: id.clone(),
        name: req.name.clone().unwrap_or_else(|| node.name.clone()),
        address: req.address.clone(),
        public_key: node.public_key.clone(),
        cert_fingerprint: node.cert_fingerprint.clone().unwrap_or_default(),
        priority: req.priority,
        capabilities: node.capabilities.clone(),
        paired_at: jiff::Timestamp::now().as_second(),
    };
    let (kept, audit) = (record.clone(), audit.clone());
    tokio::task::spawn_blocking(move || {
        store
            .upsert_node(&kept)
            .map_err(|e| PairError::Store(e.to_string()))?;
        let _ = audit.record_now(
            "node.paired",
            json!({"name": kept.name, "id": kept.id, "address": kept.address, "cert_fingerprint": kept.cert_fingerprint}),
        );
        Ok::<_, PairError>(())
    })
    .await
    .map_err(|e| PairError::Task(e.to_string()))??;
    Ok(record)
}
