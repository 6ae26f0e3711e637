//! DM pairing: who may talk to the assistant on a chat channel.
//!
//! An unknown sender who messages the bot is handed a short numeric code
//! ([`Store::request_access`]); the owner approves it (`openclaw pairing approve <channel>
//! <code>`, the Approvals page) and the sender becomes a paired sender of that channel, or
//! rejects it. Codes live `code_expiry_seconds`, a channel has at most
//! [`MAX_PENDING_PER_CHANNEL`] live ones (a stranger flooding the bot cannot bury the owner in
//! codes), and expired codes are deleted lazily by whichever call next looks at them: there is
//! no timer to run.
//!
//! Every call takes `now` (Unix seconds) from its caller, so expiry is tested with chosen
//! timestamps rather than by waiting.

use crate::{Error, Store};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

/// Live codes a channel may have at once; further unknown senders are refused until one is
/// approved, rejected or expires.
pub const MAX_PENDING_PER_CHANNEL: usize = 3;

/// Shortest and longest code (`security.pairing.code_length`; the config checks the same
/// range, the store does not trust its caller for it).
pub const CODE_LENGTH_RANGE: std::ops::RangeInclusive<u8> = 4..=10;

/// Longest channel name and sender id taken, in bytes (platform ids are far shorter).
pub const MAX_ID_BYTES: usize = 256;

/// Display names are cut to this many characters: they come from the platform, and a long one
/// must not be a reason to refuse a sender.
pub const MAX_NAME_CHARS: usize = 100;

/// How codes are made: `security.pairing` without the mode (the gateway decides the mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePolicy {
    pub code_length: u8,
    pub code_expiry_seconds: u64,
}

impl Default for CodePolicy {
    fn default() -> Self {
        Self {
            code_length: 6,
            code_expiry_seconds: 300,
        }
    }
}

/// A code handed to a sender and not yet approved, rejected or expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    pub channel: String,
    pub sender: String,
    /// The name the platform gave for the sender, if any.
    pub name: Option<String>,
    pub code: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A sender the owner approved on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedSender {
    pub channel: String,
    pub sender: String,
    pub name: Option<String>,
    pub approved_at: i64,
}

/// What [`Store::request_access`] decided for a sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessOutcome {
    /// The sender was approved before.
    Approved(PairedSender),
    /// The sender must wait for the owner; `issued` is false when the code is one handed out
    /// before and still live (the same code again, so a sender who writes twice is not given
    /// two codes).
    Pending { code: PendingCode, issued: bool },
    /// The channel already has [`MAX_PENDING_PER_CHANNEL`] live codes: no code for this sender.
    TooManyPending { pending: usize },
}

/// Why a pairing call did nothing.
#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error("no pending code {code} on {channel}")]
    UnknownCode { channel: String, code: String },
    #[error("the code {code} on {channel} has expired")]
    ExpiredCode { channel: String, code: String },
    #[error("no approved sender {sender} on {channel}")]
    UnknownSender { channel: String, sender: String },
    #[error("invalid {what}: {reason}")]
    BadInput { what: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] Error),
}

impl From<rusqlite::Error> for PairingError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(Error::Sqlite(e))
    }
}

pub type PairingResult<T> = std::result::Result<T, PairingError>;

fn bad(what: &'static str, reason: impl Into<String>) -> PairingError {
    PairingError::BadInput {
        what,
        reason: reason.into(),
    }
}

/// A channel name or sender id: not empty, not huge, no control characters (they end up in
/// terminals and log lines).
fn check_id(what: &'static str, value: &str) -> PairingResult<()> {
    if value.trim().is_empty() {
        return Err(bad(what, "it is empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(bad(what, format!("it is longer than {MAX_ID_BYTES} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(bad(what, "it contains control characters"));
    }
    Ok(())
}

/// A code as typed by the owner: digits only, of a length a policy can make. Spaces (`123 456`,
/// how codes are shown) are dropped.
fn normalise_code(code: &str) -> PairingResult<String> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let len_ok = u8::try_from(digits.len()).is_ok_and(|n| CODE_LENGTH_RANGE.contains(&n));
    if !len_ok || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "code",
            format!(
                "a code is {} to {} digits",
                CODE_LENGTH_RANGE.start(),
                CODE_LENGTH_RANGE.end()
            ),
        ));
    }
    Ok(digits)
}

/// The display name as kept: control characters dropped, cut to [`MAX_NAME_CHARS`], none
/// when nothing is left.
fn clean_name(name: Option<&str>) -> Option<String> {
    let cleaned: String = name?
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    let trimmed = cleaned.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// `length` digits from the thread's CSPRNG (rand's ChaCha-based `ThreadRng`, seeded from the
/// OS): a code is a secret the sender must not be able to guess for another sender.
fn new_code(length: u8) -> String {
    (0..length)
        .map(|_| char::from(b'0' + rand::random_range(0..10u8)))
        .collect()
}

fn pending_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PendingCode> {
    Ok(PendingCode {
        channel: r.get(0)?,
        code: r.get(1)?,
        sender: r.get(2)?,
        name: r.get(3)?,
        created_at: r.get(4)?,
        expires_at: r.get(5)?,
    })
}

fn sender_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PairedSender> {
    Ok(PairedSender {
        channel: r.get(0)?,
        sender: r.get(1)?,
        name: r.get(2)?,
        approved_at: r.get(3)?,
    })
}

const PENDING_COLUMNS: &str = "channel, code, sender, name, created_at, expires_at";
const SENDER_COLUMNS: &str = "channel, sender, name, approved_at";

/// Deletes every code that has expired by `now` (on every channel: any call may tidy up).
fn purge_expired(conn: &rusqlite::Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM pairing_codes WHERE expires_at <= ?1", [now])
}

impl Store {
    /// A sender on `channel` asks to talk: approved already, pending with a code (a new one,
    /// or the live one it was given before), or refused because the channel has
    /// [`MAX_PENDING_PER_CHANNEL`] live codes. `name` is the platform's display name, kept
    /// for the owner to recognise the sender.
    pub fn request_access(
        &self,
        channel: &str,
        sender: &str,
        name: Option<&str>,
        policy: CodePolicy,
        now: i64,
    ) -> PairingResult<AccessOutcome> {
        check_id("channel", channel)?;
        check_id("sender", sender)?;
        if !CODE_LENGTH_RANGE.contains(&policy.code_length) {
            return Err(bad(
                "code length",
                format!(
                    "{} is not between {} and {}",
                    policy.code_length,
                    CODE_LENGTH_RANGE.start(),
                    CODE_LENGTH_RANGE.end()
                ),
            ));
        }
        let expiry = i64::try_from(policy.code_expiry_seconds)
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| bad("code expiry", "it must be at least one second"))?;
        let name = clean_name(name);
        let mut conn = self.conn();
        // Most messages come from approved senders: they are answered from a read, without
        // the write lock below.
        if let Some(approved) = conn
            .query_row(
                &format!(
                    "SELECT {SENDER_COLUMNS} FROM paired_senders WHERE channel = ?1 AND sender = ?2"
                ),
                params![channel, sender],
                sender_from_row,
            )
            .optional()?
        {
            return Ok(AccessOutcome::Approved(approved));
        }
        // Immediate: the count, the check for a live code and the insert are one decision,
        // and another process (the CLI) may write the same tables.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Looked at again under the lock: the owner may have approved the sender meanwhile.
        if let Some(approved) = tx
            .query_row(
                &format!(
                    "SELECT {SENDER_COLUMNS} FROM paired_senders WHERE channel = ?1 AND sender = ?2"
                ),
                params![channel, sender],
                sender_from_row,
            )
            .optional()?
        {
            return Ok(AccessOutcome::Approved(approved));
        }
        purge_expired(&tx, now)?;
        let live = tx
            .query_row(
                &format!(
                    "SELECT {PENDING_COLUMNS} FROM pairing_codes WHERE channel = ?1 AND sender = ?2"
                ),
                params![channel, sender],
                pending_from_row,
            )
            .optional()?;
        if let Some(mut code) = live {
            // The same code again; a name the platform gives now is kept if it had none.
            if code.name.is_none() && name.is_some() {
                tx.execute(
                    "UPDATE pairing_codes SET name = ?3 WHERE channel = ?1 AND code = ?2",
                    params![channel, code.code, name],
                )?;
                code.name = name;
            }
            tx.commit()?;
            return Ok(AccessOutcome::Pending {
                code,
                issued: false,
            });
        }
        let pending: i64 = tx.query_row(
            "SELECT COUNT(*) FROM pairing_codes WHERE channel = ?1",
            [channel],
            |r| r.get(0),
        )?;
        let pending = usize::try_from(pending).unwrap_or(usize::MAX);
        if pending >= MAX_PENDING_PER_CHANNEL {
            tx.commit()?; // The purge is kept.
            return Ok(AccessOutcome::TooManyPending { pending });
        }
        // A code another sender of this channel holds is drawn again: codes are looked up by
        // (channel, code). With at most 3 live codes among 10^4 or more, a few draws suffice.
        let mut inserted = None;
        for _ in 0..32 {
            let code = new_code(policy.code_length);
            let n = tx.execute(
                "INSERT INTO pairing_codes (channel, code, sender, name, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (channel, code) DO NOTHING",
                params![channel, code, sender, name, now, now.saturating_add(expiry)],
            )?;
            if n == 1 {
                inserted = Some(code);
                break;
            }
        }
        let Some(code) = inserted else {
            return Err(bad(
                "code length",
                "no free code could be drawn; use longer codes",
            ));
        };
        tx.commit()?;
        Ok(AccessOutcome::Pending {
            code: PendingCode {
                channel: channel.to_owned(),
                sender: sender.to_owned(),
                name,
                code,
                created_at: now,
                expires_at: now.saturating_add(expiry),
            },
            issued: true,
        })
    }

    /// Live codes on every channel, oldest first (expired ones are deleted on the way).
    pub fn pending_codes(&self, now: i64) -> PairingResult<Vec<PendingCode>> {
        let conn = self.conn();
        purge_expired(&conn, now)?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PENDING_COLUMNS} FROM pairing_codes ORDER BY created_at, channel, code"
        ))?;
        let rows = stmt.query_map([], pending_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The live code `code` on `channel`, removed: unknown, expired or malformed codes are
    /// errors, and an expired one is deleted as it is found.
    fn take_code(
        tx: &rusqlite::Transaction<'_>,
        channel: &str,
        code: &str,
        now: i64,
    ) -> PairingResult<PendingCode> {
        check_id("channel", channel)?;
        let code = normalise_code(code)?;
        let found = tx
            .query_row(
                &format!(
                    "DELETE FROM pairing_codes WHERE channel = ?1 AND code = ?2 RETURNING {PENDING_COLUMNS}"
                ),
                params![channel, code],
                pending_from_row,
            )
            .optional()?;
        purge_expired(tx, now)?;
        match found {
            None => Err(PairingError::UnknownCode {
                channel: channel.to_owned(),
                code,
            }),
            Some(p) if p.expires_at <= now => Err(PairingError::ExpiredCode {
                channel: channel.to_owned(),
                code,
            }),
            Some(p) => Ok(p),
        }
    }

    /// The owner approves `code` on `channel`: its sender becomes a paired sender (and any other
    /// code it held goes). Returns the sender.
    pub fn approve_code(&self, channel: &str, code: &str, now: i64) -> PairingResult<PairedSender> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken = match Self::take_code(&tx, channel, code, now) {
            Ok(p) => p,
            Err(e) => {
                // The deletion of an expired code is kept: it is no use to anyone.
                tx.commit()?;
                return Err(e);
            }
        };
        let sender = tx.query_row(
            &format!(
                "INSERT INTO paired_senders (channel, sender, name, approved_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (channel, sender) DO UPDATE SET name = COALESCE(excluded.name, name)
                 RETURNING {SENDER_COLUMNS}"
            ),
            params![taken.channel, taken.sender, taken.name, now],
            sender_from_row,
        )?;
        tx.execute(
            "DELETE FROM pairing_codes WHERE channel = ?1 AND sender = ?2",
            params![taken.channel, taken.sender],
        )?;
        tx.commit()?;
        Ok(sender)
    }

    /// The owner rejects `code` on `channel`: the code goes, the sender stays unknown (and may
    /// ask again). Returns the code as it was.
    pub fn reject_code(&self, channel: &str, code: &str, now: i64) -> PairingResult<PendingCode> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken = Self::take_code(&tx, channel, code, now);
        tx.commit()?;
        taken
    }

    /// Approved senders, by channel then sender.
    pub fn paired_senders(&self) -> PairingResult<Vec<PairedSender>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {SENDER_COLUMNS} FROM paired_senders ORDER BY channel, sender"
        ))?;
        let rows = stmt.query_map([], sender_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Forgets an approved sender: it is unknown again (and is handed a code if it writes).
    pub fn revoke_sender(&self, channel: &str, sender: &str) -> PairingResult<PairedSender> {
        check_id("channel", channel)?;
        check_id("sender", sender)?;
        self.conn()
            .query_row(
                &format!(
                    "DELETE FROM paired_senders WHERE channel = ?1 AND sender = ?2 RETURNING {SENDER_COLUMNS}"
                ),
                params![channel, sender],
                sender_from_row,
            )
            .optional()?
            .ok_or_else(|| PairingError::UnknownSender {
                channel: channel.to_owned(),
                sender: sender.to_owned(),
            })
    }

    /// Whether `sender` was approved on `channel` (bad ids are simply not approved).
    pub fn is_approved(&self, channel: &str, sender: &str) -> PairingResult<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM paired_senders WHERE channel = ?1 AND sender = ?2)",
            params![channel, sender],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn policy() -> CodePolicy {
        CodePolicy {
            code_length: 6,
            code_expiry_seconds: 300,
        }
    }

    fn pending(outcome: AccessOutcome) -> (PendingCode, bool) {
        match outcome {
            AccessOutcome::Pending { code, issued } => (code, issued),
            other => panic!("expected a pending code, got {other:?}"),
        }
    }

    #[test]
    fn an_unknown_sender_gets_a_code_and_the_same_one_while_it_lives() {
        let s = Store::open_in_memory().unwrap();
        let (first, issued) = pending(
            s.request_access("telegram", "42", Some("Ada"), policy(), NOW)
                .unwrap(),
        );
        assert!(issued);
        assert_eq!(first.code.len(), 6);
        assert!(first.code.bytes().all(|b| b.is_ascii_digit()), "{first:?}");
        assert_eq!(first.expires_at, NOW + 300);
        assert_eq!(first.name.as_deref(), Some("Ada"));
        let (again, issued) = pending(
            s.request_access("telegram", "42", None, policy(), NOW + 299)
                .unwrap(),
        );
        assert!(!issued, "a live code is handed out again");
        assert_eq!(again, first);
        // Once it expired, the sender gets a new one.
        let (third, issued) = pending(
            s.request_access("telegram", "42", None, policy(), NOW + 300)
                .unwrap(),
        );
        assert!(issued);
        assert_eq!(third.created_at, NOW + 300);
        assert_eq!(s.pending_codes(NOW + 300).unwrap(), vec![third]);
    }

    #[test]
    fn code_length_follows_the_policy() {
        let s = Store::open_in_memory().unwrap();
        for (i, length) in [4u8, 8, 10].into_iter().enumerate() {
            let p = CodePolicy {
                code_length: length,
                code_expiry_seconds: 60,
            };
            let (code, _) = pending(s.request_access("c", &i.to_string(), None, p, NOW).unwrap());
            assert_eq!(code.code.len(), usize::from(length));
        }
        // Codes are not all the same (a fixed or broken generator would make them so).
        let codes: std::collections::HashSet<String> = (0..20)
            .map(|i| {
                let p = CodePolicy {
                    code_length: 10,
                    code_expiry_seconds: 60,
                };
                let (code, _) = pending(
                    s.request_access(&format!("ch{i}"), "x", None, p, NOW)
                        .unwrap(),
                );
                code.code
            })
            .collect();
        assert!(codes.len() > 15, "{codes:?}");
    }

    #[test]
    fn at_most_three_codes_per_channel_and_expiry_frees_a_place() {
        let s = Store::open_in_memory().unwrap();
        for (i, sender) in ["a", "b", "c"].into_iter().enumerate() {
            pending(
                s.request_access("slack", sender, None, policy(), NOW + i as i64)
                    .unwrap(),
            );
        }
        assert_eq!(
            s.request_access("slack", "d", None, policy(), NOW + 10)
                .unwrap(),
            AccessOutcome::TooManyPending { pending: 3 }
        );
        // A sender already holding a code still gets it back.
        let (b, issued) = pending(
            s.request_access("slack", "b", None, policy(), NOW + 10)
                .unwrap(),
        );
        assert!(!issued);
        assert_eq!(b.sender, "b");
        // Other channels have their own three.
        pending(
            s.request_access("discord", "d", None, policy(), NOW + 10)
                .unwrap(),
        );
        // `a`'s code expires at NOW + 300: a place opens for `d`.
        let (d, issued) = pending(
            s.request_access("slack", "d", None, policy(), NOW + 300)
                .unwrap(),
        );
        assert!(issued);
        let senders: Vec<String> = s
            .pending_codes(NOW + 300)
            .unwrap()
            .into_iter()
            .filter(|p| p.channel == "slack")
            .map(|p| p.sender)
            .collect();
        assert_eq!(senders, ["b", "c", "d"]);
        assert_eq!(d.channel, "slack");
    }

    #[test]
    fn approving_pairs_the_sender_once_and_a_second_approval_is_unknown() {
        let s = Store::open_in_memory().unwrap();
        let (code, _) = pending(
            s.request_access("telegram", "42", Some("Ada"), policy(), NOW)
                .unwrap(),
        );
        assert!(!s.is_approved("telegram", "42").unwrap());
        let spaced = format!("{} {}", &code.code[..3], &code.code[3..]);
        let sender = s.approve_code("telegram", &spaced, NOW + 10).unwrap();
        assert_eq!(
            sender,
            PairedSender {
                channel: "telegram".into(),
                sender: "42".into(),
                name: Some("Ada".into()),
                approved_at: NOW + 10,
            }
        );
        assert!(s.is_approved("telegram", "42").unwrap());
        assert!(!s.is_approved("slack", "42").unwrap(), "per channel");
        assert!(s.pending_codes(NOW + 10).unwrap().is_empty());
        assert!(matches!(
            s.approve_code("telegram", &code.code, NOW + 11),
            Err(PairingError::UnknownCode { .. })
        ));
        assert!(matches!(
            s.request_access("telegram", "42", None, policy(), NOW + 12)
                .unwrap(),
            AccessOutcome::Approved(p) if p == sender
        ));
        assert_eq!(s.paired_senders().unwrap(), vec![sender]);
    }

    #[test]
    fn rejecting_drops_the_code_once_and_the_sender_may_ask_again() {
        let s = Store::open_in_memory().unwrap();
        let (code, _) = pending(
            s.request_access("slack", "u1", None, policy(), NOW)
                .unwrap(),
        );
        let rejected = s.reject_code("slack", &code.code, NOW + 1).unwrap();
        assert_eq!(rejected, code);
        assert!(matches!(
            s.reject_code("slack", &code.code, NOW + 2),
            Err(PairingError::UnknownCode { .. })
        ));
        assert!(!s.is_approved("slack", "u1").unwrap());
        assert!(s.pending_codes(NOW + 2).unwrap().is_empty());
        let (_, issued) = pending(
            s.request_access("slack", "u1", None, policy(), NOW + 3)
                .unwrap(),
        );
        assert!(issued);
    }

    #[test]
    fn an_expired_code_is_refused_as_expired_then_forgotten() {
        let s = Store::open_in_memory().unwrap();
        let (code, _) = pending(
            s.request_access("slack", "u1", None, policy(), NOW)
                .unwrap(),
        );
        assert!(matches!(
            s.approve_code("slack", &code.code, NOW + 300),
            Err(PairingError::ExpiredCode { .. })
        ));
        assert!(!s.is_approved("slack", "u1").unwrap());
        // It was deleted as it was found: the next try does not know it at all.
        assert!(matches!(
            s.reject_code("slack", &code.code, NOW + 301),
            Err(PairingError::UnknownCode { .. })
        ));
        // Listing purges codes that expired without anyone asking for them.
        pending(
            s.request_access("slack", "u2", None, policy(), NOW)
                .unwrap(),
        );
        assert_eq!(s.pending_codes(NOW + 299).unwrap().len(), 1);
        assert!(s.pending_codes(NOW + 300).unwrap().is_empty());
        let rows: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM pairing_codes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "expired rows are deleted, not only hidden");
    }

    #[test]
    fn a_code_belongs_to_its_channel() {
        let s = Store::open_in_memory().unwrap();
        let (code, _) = pending(
            s.request_access("slack", "u1", None, policy(), NOW)
                .unwrap(),
        );
        assert!(matches!(
            s.approve_code("telegram", &code.code, NOW),
            Err(PairingError::UnknownCode { .. })
        ));
        assert_eq!(s.pending_codes(NOW).unwrap().len(), 1, "still pending");
    }

    #[test]
    fn revoking_makes_a_sender_unknown_again() {
        let s = Store::open_in_memory().unwrap();
        let (code, _) = pending(
            s.request_access("slack", "u1", None, policy(), NOW)
                .unwrap(),
        );
        s.approve_code("slack", &code.code, NOW).unwrap();
        let revoked = s.revoke_sender("slack", "u1").unwrap();
        assert_eq!(revoked.sender, "u1");
        assert!(!s.is_approved("slack", "u1").unwrap());
        assert!(matches!(
            s.revoke_sender("slack", "u1"),
            Err(PairingError::UnknownSender { .. })
        ));
        let (_, issued) = pending(
            s.request_access("slack", "u1", None, policy(), NOW + 1)
                .unwrap(),
        );
        assert!(issued);
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let s = Store::open_in_memory().unwrap();
        let cases: Vec<(&str, PairingResult<AccessOutcome>)> = vec![
            (
                "empty channel",
                s.request_access("", "u", None, policy(), NOW),
            ),
            (
                "blank sender",
                s.request_access("c", "  ", None, policy(), NOW),
            ),
            (
                "control character",
                s.request_access("c", "u\n1", None, policy(), NOW),
            ),
            (
                "huge sender",
                s.request_access("c", &"x".repeat(MAX_ID_BYTES + 1), None, policy(), NOW),
            ),
            (
                "short codes",
                s.request_access(
                    "c",
                    "u",
                    None,
                    CodePolicy {
                        code_length: 3,
                        code_expiry_seconds: 60,
                    },
                    NOW,
                ),
            ),
            (
                "no expiry",
                s.request_access(
                    "c",
                    "u",
                    None,
                    CodePolicy {
                        code_length: 6,
                        code_expiry_seconds: 0,
                    },
                    NOW,
                ),
            ),
        ];
        for (what, result) in cases {
            assert!(
                matches!(result, Err(PairingError::BadInput { .. })),
                "{what}: {result:?}"
            );
        }
        for code in ["", "12a456", "123", "12345678901", "١٢٣٤٥٦"] {
            assert!(
                matches!(
                    s.approve_code("c", code, NOW),
                    Err(PairingError::BadInput { what: "code", .. })
                ),
                "{code:?}"
            );
        }
        assert!(matches!(
            s.revoke_sender("", "u"),
            Err(PairingError::BadInput { .. })
        ));
        assert!(s.pending_codes(NOW).unwrap().is_empty(), "nothing was kept");
    }

    #[test]
    fn display_names_are_cleaned_and_cut() {
        let s = Store::open_in_memory().unwrap();
        let long = "é".repeat(MAX_NAME_CHARS + 20);
        let (code, _) = pending(
            s.request_access("c", "u1", Some(&long), policy(), NOW)
                .unwrap(),
        );
        assert_eq!(
            code.name.as_deref().map(|n| n.chars().count()),
            Some(MAX_NAME_CHARS)
        );
        let (code, _) = pending(
            s.request_access("c", "u2", Some("Ada\u{1b}[31m\n"), policy(), NOW)
                .unwrap(),
        );
        assert_eq!(code.name.as_deref(), Some("Ada[31m"));
        let (code, _) = pending(
            s.request_access("c", "u3", Some(" \t "), policy(), NOW)
                .unwrap(),
        );
        assert_eq!(code.name, None);
    }
}
