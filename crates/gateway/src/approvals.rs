//! DM pairing as the gateway runs it (`security.pairing`): whether a chat sender may talk to
//! the assistant, the codes handed to unknown senders, and the owner's approvals, rejections
//! and revocations (the control API under `/api/approvals`, `openclaw pairing …`, the tray).
//!
//! The store keeps the codes and the paired senders; this module adds the mode, the clock, the
//! audit lines and the [`GatewayEvent::Approvals`] event, so every way in (a channel driver
//! through [`crate::GatewayHandle::sender_access`], the HTTP API, the tray app) behaves alike.

use crate::GatewayState;
use crate::events::GatewayEvent;
use openclaw_config::PairingMode;
use openclaw_store::{AccessOutcome, CodePolicy, PairedSender, PairingError, PendingCode};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a channel driver does with a message from a sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderAccess {
    /// Answer it: the sender is approved, or pairing does not apply (`enabled: false`, mode
    /// `open`).
    Allowed,
    /// Do not answer it; tell the sender the code to give the owner. `issued` is false when
    /// it is the code handed out before (a driver may choose not to repeat itself).
    Pending {
        code: String,
        expires_in_seconds: u64,
        issued: bool,
    },
    /// Do not answer it, and hand out no code.
    Refused(AccessRefusal),
}

/// Why [`SenderAccess::Refused`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessRefusal {
    /// Mode `allowlist`: only senders approved before may talk.
    NotApproved,
    /// Mode `challenge`, but the channel has the most codes waiting that it may have.
    TooManyPending,
}

/// A code waiting for the owner, as the API and the tray show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingApproval {
    pub code: PendingCode,
    /// Seconds left before it expires (at least 1: an expired code is not listed).
    pub expires_in_seconds: u64,
}

/// Everything the Approvals page shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Approvals {
    pub pending: Vec<PendingApproval>,
    pub approved: Vec<PairedSender>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(
        "no pending code {code} on {channel}: check the channel and the code the sender was given"
    )]
    UnknownCode { channel: String, code: String },
    #[error("the code {code} on {channel} has expired: the sender gets a new one by writing again")]
    ExpiredCode { channel: String, code: String },
    #[error("no approved sender {sender} on {channel}")]
    UnknownSender { channel: String, sender: String },
    #[error("invalid {what}: {reason}")]
    BadInput { what: &'static str, reason: String },
    #[error("the pairing store is unavailable: {0}")]
    Unavailable(String),
}

impl From<PairingError> for ApprovalError {
    fn from(e: PairingError) -> Self {
        match e {
            PairingError::UnknownCode { channel, code } => Self::UnknownCode { channel, code },
            PairingError::ExpiredCode { channel, code } => Self::ExpiredCode { channel, code },
            PairingError::UnknownSender { channel, sender } => {
                Self::UnknownSender { channel, sender }
            }
            PairingError::BadInput { what, reason } => Self::BadInput { what, reason },
            PairingError::Store(e) => Self::Unavailable(e.to_string()),
        }
    }
}

/// The pending count last told to subscribers, so [`GatewayEvent::Approvals`] is sent when it
/// changes, whoever changed it (this gateway, the CLI writing the store, codes expiring).
#[derive(Debug)]
pub(crate) struct PendingSeen(AtomicUsize);

/// `usize::MAX`: nothing told yet.
const UNTOLD: usize = usize::MAX;

impl PendingSeen {
    pub(crate) fn new() -> Self {
        Self(AtomicUsize::new(UNTOLD))
    }
}

fn seconds_left(expires_at: i64, now: i64) -> u64 {
    u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0)
}

impl GatewayState {
    /// Runs `work` on the store from a blocking thread.
    async fn with_store<T: Send + 'static>(
        &self,
        work: impl FnOnce(&openclaw_store::Store) -> Result<T, PairingError> + Send + 'static,
    ) -> Result<T, ApprovalError> {
        let store = Arc::clone(&self.store);
        self.tasks
            .spawn_blocking(move || work(&store))
            .await
            .map_err(|e| ApprovalError::Unavailable(format!("store task failed: {e}")))?
            .map_err(ApprovalError::from)
    }

    /// Tells subscribers the number of pending codes when it differs from the last told. Two
    /// calls racing may tell their counts out of order; the next count (at the latest the
    /// minute's re-count) puts it right, and the event only prompts a re-read anyway.
    pub(crate) fn note_pending(&self, pending: usize) {
        let before = self.approvals_seen.0.swap(pending, Ordering::Relaxed);
        if before != pending {
            self.events.send(GatewayEvent::Approvals { pending });
        }
    }

    /// Re-reads the pending count (codes expire, and other processes write the store) and
    /// tells subscribers if it changed. Only while anyone listens.
    pub(crate) async fn recount_pending(&self) {
        if !self.events.has_subscribers() {
            return;
        }
        let now = crate::sys::unix_now();
        match self.with_store(move |s| s.pending_codes(now)).await {
            Ok(list) => self.note_pending(list.len()),
            Err(e) => tracing::warn!(error = %e, "could not count pending approvals"),
        }
    }

    pub(crate) async fn sender_access(
        &self,
        channel: &str,
        sender: &str,
        name: Option<&str>,
    ) -> Result<SenderAccess, ApprovalError> {
        let pairing = &self.config.security.pairing;
        if !pairing.enabled || pairing.mode == PairingMode::Open {
            return Ok(SenderAccess::Allowed);
        }
        let (channel, sender) = (channel.to_owned(), sender.to_owned());
        if pairing.mode == PairingMode::Allowlist {
            let approved = self
                .with_store(move |s| s.is_approved(&channel, &sender))
                .await?;
            return Ok(if approved {
                SenderAccess::Allowed
            } else {
                SenderAccess::Refused(AccessRefusal::NotApproved)
            });
        }
        let policy = CodePolicy {
            code_length: pairing.code_length,
            code_expiry_seconds: pairing.code_expiry_seconds,
        };
        let name = name.map(str::to_owned);
        let now = crate::sys::unix_now();
        let (outcome, pending) = self
            .with_store(move |s| {
                let outcome = s.request_access(&channel, &sender, name.as_deref(), policy, now)?;
                // An approved sender changes no code: no count to take.
                let pending = match outcome {
                    AccessOutcome::Approved(_) => None,
                    _ => Some(s.pending_codes(now)?.len()),
                };
                Ok((outcome, pending))
            })
            .await?;
        if let Some(pending) = pending {
            self.note_pending(pending);
        }
        Ok(match outcome {
            AccessOutcome::Approved(_) => SenderAccess::Allowed,
            AccessOutcome::Pending { code, issued } => {
                if issued {
                    tracing::info!(channel = %code.channel, sender = %code.sender, "pairing code issued to an unknown sender");
                    self.audit.record(
                        "pairing.requested",
                        json!({"channel": code.channel, "sender": code.sender, "name": code.name}),
                    );
                }
                SenderAccess::Pending {
                    expires_in_seconds: seconds_left(code.expires_at, now),
                    code: code.code,
                    issued,
                }
            }
            AccessOutcome::TooManyPending { .. } => {
                SenderAccess::Refused(AccessRefusal::TooManyPending)
            }
        })
    }

    pub(crate) async fn approvals(&self) -> Result<Approvals, ApprovalError> {
        let now = crate::sys::unix_now();
        let (pending, approved) = self
            .with_store(move |s| Ok((s.pending_codes(now)?, s.paired_senders()?)))
            .await?;
        self.note_pending(pending.len());
        Ok(Approvals {
            pending: pending
                .into_iter()
                .map(|code| PendingApproval {
                    expires_in_seconds: seconds_left(code.expires_at, now),
                    code,
                })
                .collect(),
            approved,
        })
    }

    pub(crate) async fn approve_code(
        &self,
        channel: &str,
        code: &str,
    ) -> Result<PairedSender, ApprovalError> {
        let (channel, code) = (channel.to_owned(), code.to_owned());
        let now = crate::sys::unix_now();
        let result = self
            .with_store(move |s| {
                let approved = s.approve_code(&channel, &code, now);
                Ok((approved, s.pending_codes(now)?.len()))
            })
            .await?;
        let (approved, pending) = result;
        self.note_pending(pending);
        let sender = approved?;
        self.audit.record(
            "pairing.approved",
            json!({"channel": sender.channel, "sender": sender.sender, "name": sender.name}),
        );
        tracing::info!(channel = %sender.channel, sender = %sender.sender, "the owner approved a sender");
        Ok(sender)
    }

    pub(crate) async fn reject_code(
        &self,
        channel: &str,
        code: &str,
    ) -> Result<PendingCode, ApprovalError> {
        let (channel, code) = (channel.to_owned(), code.to_owned());
        let now = crate::sys::unix_now();
        let (rejected, pending) = self
            .with_store(move |s| {
                let rejected = s.reject_code(&channel, &code, now);
                Ok((rejected, s.pending_codes(now)?.len()))
            })
            .await?;
        self.note_pending(pending);
        let rejected = rejected?;
        self.audit.record(
            "pairing.rejected",
            json!({"channel": rejected.channel, "sender": rejected.sender, "name": rejected.name}),
        );
        tracing::info!(channel = %rejected.channel, sender = %rejected.sender, "the owner rejected a sender");
        Ok(rejected)
    }

    pub(crate) async fn revoke_sender(
        &self,
        channel: &str,
        sender: &str,
    ) -> Result<PairedSender, ApprovalError> {
        let (channel, sender) = (channel.to_owned(), sender.to_owned());
        let revoked = self
            .with_store(move |s| s.revoke_sender(&channel, &sender))
            .await?;
        self.audit.record(
            "pairing.revoked",
            json!({"channel": revoked.channel, "sender": revoked.sender, "name": revoked.name}),
        );
        tracing::info!(channel = %revoked.channel, sender = %revoked.sender, "the owner revoked a sender");
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_left_never_goes_negative() {
        assert_eq!(seconds_left(100, 40), 60);
        assert_eq!(seconds_left(100, 100), 0);
        assert_eq!(seconds_left(100, 160), 0);
    }

    #[test]
    fn store_errors_keep_their_kind() {
        let e = ApprovalError::from(PairingError::ExpiredCode {
            channel: "slack".into(),
            code: "123456".into(),
        });
        assert!(matches!(e, ApprovalError::ExpiredCode { .. }));
        assert!(e.to_string().contains("writing again"), "{e}");
        let e = ApprovalError::from(PairingError::BadInput {
            what: "code",
            reason: "digits".into(),
        });
        assert!(matches!(e, ApprovalError::BadInput { what: "code", .. }));
    }
}
