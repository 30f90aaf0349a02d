//! Personal API tokens: a person's own credential for `/api/v1`, for what
//! cannot hold a browser session (a script, a duty-room app). A token acts
//! as its account, with the account's role and region, exactly as the
//! account's web session would; it is issued by the signed-in person (or
//! by `anquan-monitor issue-token` on the server), shown once, and only its
//! SHA-256 is stored. It stops working at its expiry, when revoked, or
//! when its account leaves `[[users]]`.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, FromRow, Row};
use utoipa::ToSchema;

use crate::App;
use crate::error::{Error, Result};
use crate::web::auth::{ACCOUNT, ACCOUNT_JOIN, Account, Session, sha256_hex};
use crate::web::i18n::Lang;

/// Every personal token starts with this, so a leaked one is recognisable
/// (secret scanners) and never confused with an operator token.
pub const PREFIX: &str = "aqp_";

/// The longest a token may live, in days.
pub const MAX_DAYS: u32 = 365;

/// A new token's lifetime when none is asked for, in days.
pub const DEFAULT_DAYS: u32 = 90;

/// How often a token's `last_used_ms` is written (not on every request).
const TOUCH_EVERY_MS: i64 = 60_000;

/// A request for a token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it is for, shown in the list (1-100 characters).
    #[schema(min_length = 1, max_length = 100, example = "duty-room tablet")]
    pub label: String,
    /// Lifetime in days (1-365, default 90).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 365)]
    pub days: Option<u32>,
}

/// A token as listed (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenInfo {
    /// Its id (to revoke it).
    pub id: String,
    /// What it is for.
    pub label: String,
    /// Issued, Unix ms.
    pub created_ms: i64,
    /// Stops working, Unix ms.
    pub expires_ms: i64,
    /// Revoked, Unix ms.
    pub revoked_ms: Option<i64>,
    /// Last used (to the minute), Unix ms.
    pub last_used_ms: Option<i64>,
}

/// A token just issued: the only time its secret is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct Issued {
    /// Its id.
    pub id: String,
    /// The secret: send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// Stops working, Unix ms.
    pub expires_ms: i64,
}

/// Issues a token for account `username` (audited as `by`).
pub async fn issue(
    c: &mut AnyConnection,
    now: i64,
    username: &str,
    by: &str,
    t: &NewToken,
) -> Result<Issued> {
    let label = t.label.trim();
    crate::text::free("label", label, 100)?;
    if label.is_empty() {
        return Err(Error::Invalid("label: say what the token is for".into()));
    }
    let days = t.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Error::Invalid(format!("days: from 1 to {MAX_DAYS}")));
    }
    let known: Option<String> =
        sqlx::query_scalar("SELECT username FROM web_users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *c)
            .await?;
    if known.is_none() {
        return Err(Error::NotFound {
            what: "account",
            id: username.into(),
        });
    }
    let token = format!("{PREFIX}{}", crate::web::auth::random_hex32()?);
    let id = crate::db::new_id();
    let expires_ms = now + i64::from(days) * 86_400_000;
    sqlx::query(
        "INSERT INTO api_tokens (id, username, secret_hash, label, created_ms, expires_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(username)
    .bind(sha256_hex(&token))
    .bind(label)
    .bind(now)
    .bind(expires_ms)
    .execute(&mut *c)
    .await?;
    crate::db::audit(
        c,
        now,
        by,
        "api_token",
        &id,
        None,
        "ISSUED",
        &format!("personal API token {label:?} for {username}, {days} days"),
    )
    .await?;
    Ok(Issued {
        id,
        token,
        expires_ms,
    })
}

/// The tokens of account `username`, newest first.
pub async fn list(c: &mut AnyConnection, username: &str) -> Result<Vec<TokenInfo>> {
    let rows = sqlx::query(
        "SELECT id, label, created_ms, expires_ms, revoked_ms, last_used_ms FROM api_tokens \
         WHERE username = $1 ORDER BY created_ms DESC, id",
    )
    .bind(username)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenInfo {
                id: r.try_get("id")?,
                label: r.try_get("label")?,
                created_ms: r.try_get("created_ms")?,
                expires_ms: r.try_get("expires_ms")?,
                revoked_ms: r.try_get("revoked_ms")?,
                last_used_ms: r.try_get("last_used_ms")?,
            })
        })
        .collect()
}

/// Revokes token `id` of account `username` (404 for anyone else's, so
/// ids of other accounts' tokens are not confirmed).
pub async fn revoke(
    c: &mut AnyConnection,
    now: i64,
    username: &str,
    by: &str,
    id: &str,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_ms = $1 WHERE id = $2 AND username = $3 AND revoked_ms IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(username)
    .execute(&mut *c)
    .await?;
    if done.rows_affected() == 0 {
        let mine: Option<String> =
            sqlx::query_scalar("SELECT id FROM api_tokens WHERE id = $1 AND username = $2")
                .bind(id)
                .bind(username)
                .fetch_optional(&mut *c)
                .await?;
        // Revoking twice is the same as once.
        return match mine {
            Some(_) => Ok(()),
            None => Err(Error::NotFound {
                what: "token",
                id: id.into(),
            }),
        };
    }
    crate::db::audit(
        c,
        now,
        by,
        "api_token",
        id,
        None,
        "REVOKED",
        &format!("personal API token of {username} revoked"),
    )
    .await
}

/// The account behind a presented token, if it is live.
pub async fn lookup(app: &App, token: &str, lang: Lang) -> Result<Option<Session>> {
    let Some(secret) = token.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    if secret.len() != 64 || !secret.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let now = app.now_ms();
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT}, s.id AS id, s.last_used_ms AS last_used_ms FROM api_tokens s {ACCOUNT_JOIN} \
         WHERE s.secret_hash = $1 AND s.revoked_ms IS NULL AND s.expires_ms > $2"
    ))
    .bind(sha256_hex(token))
    .bind(now)
    .fetch_optional(&app.db)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let last: Option<i64> = r.try_get("last_used_ms")?;
    if last.is_none_or(|l| now - l >= TOUCH_EVERY_MS) {
        let id: String = r.try_get("id")?;
        sqlx::query("UPDATE api_tokens SET last_used_ms = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&app.db)
            .await?;
    }
    Ok(Some(Account::from_row(&r)?.session(
        // A bearer token is not sent by browsers on their own: no CSRF
        // token applies.
        String::new(),
        lang,
    )))
}
