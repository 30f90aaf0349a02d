//! Acknowledging from the message itself: a one-click link and an SMS
//! reply code, both bound to one warning and one person by a grant row
//! (`ack_grants`), issued with the first notice that asks that person for
//! an answer.
//!
//! The link is `{base}/a/{id}.{mac}`: `id` names the grant (random, 80
//! bits), `mac` is HMAC-SHA256 under `[ack] secret` over the grant's id,
//! warning, person and expiry (truncated to 80 bits). A link whose grant
//! is unknown or whose MAC does not match is forged; one past its expiry
//! is expired; the grant's `used_ms` is set by a compare-and-set in the
//! transaction that records the acknowledgement, so a link works once,
//! across replicas. The person acknowledging is the grant's, never anyone
//! named in a request. Opening the link (GET) shows the warning and one
//! button; only the POST acknowledges, because SMS and chat apps fetch
//! links to preview them.
//!
//! The reply code is four digits; a reply from a registered number is
//! matched against that person's open grants by code.
//!
//! Refusals (forged, expired, used, unknown code, ambiguous code, warning
//! no longer open) are counted (`anquan_monitor_ack_refused_total`),
//! logged and audited.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::config::ConfigError;
use crate::db;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::{App, notify};

/// `[ack]`: acknowledgement links.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AckConfig {
    /// The HMAC key of the links (at least 32 characters; `env:NAME`,
    /// `file:PATH` or the key itself). Every replica needs the same. None:
    /// messages carry the reply code but no link (`check` warns).
    pub secret: Option<Secret>,
    /// How long a link and a reply code work, minutes (at least twice the
    /// level's SLA is used when that is longer).
    pub ttl_min: u64,
}

impl Default for AckConfig {
    fn default() -> Self {
        Self {
            secret: None,
            ttl_min: 240,
        }
    }
}

impl AckConfig {
    /// Checks the values.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        if let Some(s) = &self.secret
            && s.expose().len() < 32
        {
            return Err(ConfigError::new(
                "ack.secret",
                "must be at least 32 characters (it signs the acknowledgement links)",
            ));
        }
        if self.ttl_min == 0 {
            return Err(ConfigError::new("ack.ttl_min", "must be at least 1"));
        }
        Ok(())
    }
}

/// A grant: one person may acknowledge one warning, once, until
/// `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Id (the link names it).
    pub id: String,
    /// The warning.
    pub warning_id: String,
    /// The person.
    pub person_id: String,
    /// The SMS reply code.
    pub code: String,
    /// Issued (Unix ms).
    pub issued_ms: i64,
    /// Works until (Unix ms).
    pub expires_ms: i64,
    /// Used (Unix ms).
    pub used_ms: Option<i64>,
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::getrandom(&mut b).is_err() {
        // No OS randomness: fall back to a v4 UUID's (also the OS RNG,
        // through another path); never a fixed value.
        let u = uuid::Uuid::new_v4();
        for (i, x) in b.iter_mut().enumerate() {
            *x = u.as_bytes()[i % 16];
        }
    }
    b
}

impl Grant {
    /// A new grant for `person` on `warning`.
    pub fn new(warning: &str, person: &str, now: i64, ttl_ms: i64) -> Self {
        let code_n = u16::from_le_bytes(random_bytes::<2>()) % 9_000 + 1_000;
        Self {
            id: B64.encode(random_bytes::<10>()),
            warning_id: warning.to_string(),
            person_id: person.to_string(),
            code: code_n.to_string(),
            issued_ms: now,
            expires_ms: now + ttl_ms,
            used_ms: None,
        }
    }

    /// Whether it can still be used at `now`.
    pub fn usable(&self, now: i64) -> bool {
        self.used_ms.is_none() && now < self.expires_ms
    }

    fn mac(&self, key: &[u8]) -> String {
        let msg = format!(
            "anquan-ack\n{}\n{}\n{}\n{}",
            self.id, self.warning_id, self.person_id, self.expires_ms
        );
        let m = notify::sign::mac(key, msg.as_bytes());
        B64.encode(&m[..10])
    }

    /// The link's token: `{id}.{mac}`.
    pub fn token(&self, key: &[u8]) -> String {
        format!("{}.{}", self.id, self.mac(key))
    }
}

/// The link of a grant, or none without `[ack] secret`.
pub fn link(app: &App, g: &Grant) -> Option<String> {
    let key = app.cfg.ack.secret.as_ref()?;
    Some(format!(
        "{}/a/{}",
        crate::web::public::base_url(app),
        g.token(key.expose().as_bytes())
    ))
}

/// The time a grant issued now for a level with `sla_ms` works.
pub fn ttl_ms(app: &App, sla_ms: i64) -> i64 {
    (app.cfg.ack.ttl_min as i64 * 60_000).max(2 * sla_ms)
}

/// Why an acknowledgement from a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such grant, or the MAC does not match.
    Forged,
    /// Past its expiry.
    Expired,
    /// Used before (at).
    Used(i64),
    /// No open grant of the sender has this code.
    UnknownCode,
    /// Several open grants of the sender have this code.
    Ambiguous,
    /// The sender's number belongs to nobody in the registry.
    UnknownSender,
}

impl Refusal {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Forged => "forged",
            Self::Expired => "expired",
            Self::Used(_) => "used",
            Self::UnknownCode => "unknown_code",
            Self::Ambiguous => "ambiguous",
            Self::UnknownSender => "unknown_sender",
        }
    }
}

/// Every label of [`Refusal::label`].
pub const REFUSALS: [&str; 6] = [
    "forged",
    "expired",
    "used",
    "unknown_code",
    "ambiguous",
    "unknown_sender",
];

const GRANT_COLS: &str = "id, warning_id, person_id, code, issued_ms, expires_ms, used_ms";

fn from_row(r: &sqlx::any::AnyRow) -> Result<Grant> {
    Ok(Grant {
        id: r.try_get("id")?,
        warning_id: r.try_get("warning_id")?,
        person_id: r.try_get("person_id")?,
        code: r.try_get("code")?,
        issued_ms: r.try_get("issued_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        used_ms: r.try_get("used_ms")?,
    })
}

/// The grants of `warnings` (for the notices of an intake batch).
pub async fn of_warnings(c: &mut AnyConnection, warnings: &[String]) -> Result<Vec<Grant>> {
    if warnings.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<String> = warnings.to_vec();
    ids.sort();
    ids.dedup();
    let n = ids.len().next_power_of_two();
    let sql = format!(
        "SELECT {GRANT_COLS} FROM ack_grants WHERE warning_id IN ({}) ORDER BY issued_ms",
        crate::intake::memo::marks(c, 1, n)
    );
    let mut q = sqlx::query(&sql);
    for i in 0..n {
        q = q.bind(ids[i.min(ids.len() - 1)].clone());
    }
    q.fetch_all(&mut *c).await?.iter().map(from_row).collect()
}

/// Checks a link token at `now` without using it: the grant, or why not.
pub async fn check_link(
    app: &App,
    c: &mut AnyConnection,
    token: &str,
    now: i64,
) -> Result<std::result::Result<Grant, Refusal>> {
    let Some(key) = app.cfg.ack.secret.as_ref() else {
        return Ok(Err(Refusal::Forged));
    };
    let Some((id, mac)) = token.split_once('.') else {
        return Ok(Err(Refusal::Forged));
    };
    if id.len() > 32 || mac.len() > 32 {
        return Ok(Err(Refusal::Forged));
    }
    let Some(row) = sqlx::query(&format!(
        "SELECT {GRANT_COLS} FROM ack_grants WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    else {
        return Ok(Err(Refusal::Forged));
    };
    let g = from_row(&row)?;
    let want = g.mac(key.expose().as_bytes());
    if !crate::gatekeeper::ct_eq(want.as_bytes(), mac.as_bytes()) {
        return Ok(Err(Refusal::Forged));
    }
    Ok(check_grant(g, now))
}

fn check_grant(g: Grant, now: i64) -> std::result::Result<Grant, Refusal> {
    if let Some(at) = g.used_ms {
        return Err(Refusal::Used(at));
    }
    if now >= g.expires_ms {
        return Err(Refusal::Expired);
    }
    Ok(g)
}

/// Marks `g` used (compare-and-set): false when someone used it first.
pub async fn consume(c: &mut AnyConnection, g: &Grant, now: i64, via: &str) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE ack_grants SET used_ms = $1, used_via = $2 WHERE id = $3 AND used_ms IS NULL",
    )
    .bind(now)
    .bind(via)
    .bind(&g.id)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// The open grant a reply `text` from `phone` names, or why not.
pub async fn check_code(
    c: &mut AnyConnection,
    phone: &str,
    text: &str,
    now: i64,
) -> Result<std::result::Result<Grant, Refusal>> {
    let code: String = text.chars().filter(char::is_ascii_digit).collect();
    let key = notify::phone_key(phone);
    let people: Vec<String> = sqlx::query("SELECT id, phone FROM people WHERE phone IS NOT NULL")
        .fetch_all(&mut *c)
        .await?
        .iter()
        .filter_map(|r| {
            let p: String = r.try_get("phone").ok()?;
            (notify::phone_key(&p) == key).then(|| r.try_get("id").ok())?
        })
        .collect();
    if people.is_empty() {
        return Ok(Err(Refusal::UnknownSender));
    }
    let mut found: Vec<Grant> = Vec::new();
    for p in &people {
        for r in sqlx::query(&format!(
            "SELECT {GRANT_COLS} FROM ack_grants WHERE person_id = $1 AND code = $2"
        ))
        .bind(p)
        .bind(&code)
        .fetch_all(&mut *c)
        .await?
        {
            found.push(from_row(&r)?);
        }
    }
    let open: Vec<Grant> = found.iter().filter(|g| g.usable(now)).cloned().collect();
    match (open.len(), found.is_empty()) {
        (1, _) => Ok(Ok(open
            .into_iter()
            .next()
            .ok_or(Error::Unavailable("grant".into()))?)),
        (0, true) => Ok(Err(Refusal::UnknownCode)),
        (0, false) => {
            // Say why the newest matching one does not work.
            let newest = found.into_iter().max_by_key(|g| g.issued_ms);
            Ok(Err(newest.map_or(Refusal::UnknownCode, |g| {
                check_grant(g, now).err().unwrap_or(Refusal::UnknownCode)
            })))
        }
        _ => Ok(Err(Refusal::Ambiguous)),
    }
}

/// Counts, logs and audits a refusal.
pub async fn refused(app: &App, what: &str, subject: &str, r: &Refusal) -> Result<()> {
    app.metrics
        .ack_refused
        .with_label_values(&[r.label()])
        .inc();
    tracing::warn!(reason = r.label(), %what, "acknowledgement from a message refused");
    let mut c = app.db.acquire().await?;
    db::audit(
        &mut c,
        app.now_ms(),
        &format!("message:{what}"),
        "ack_refused",
        subject,
        None,
        r.label(),
        &format!("acknowledgement by {what} refused: {}", r.label()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_the_grant() {
        let g = Grant::new("w-1", "p-1", 1_000, 60_000);
        assert_eq!(g.code.len(), 4);
        let t = g.token(b"k0123456789abcdef0123456789abcdef");
        let (id, mac) = t.split_once('.').unwrap_or_default();
        assert_eq!(id, g.id);
        assert_eq!(mac.len(), 14, "80 bits, base64url");
        assert_ne!(t, g.token(b"another key, 32 characters long!!"));
        let other = Grant {
            person_id: "p-2".into(),
            ..g.clone()
        };
        assert_ne!(
            t,
            other.token(b"k0123456789abcdef0123456789abcdef"),
            "bound to the person"
        );
        assert!(g.usable(59_999 + 1_000) && !g.usable(61_000));
        assert_eq!(check_grant(g.clone(), 61_000), Err(Refusal::Expired));
        let used = Grant {
            used_ms: Some(5),
            ..g
        };
        assert_eq!(check_grant(used, 2_000), Err(Refusal::Used(5)));
    }
}
