//! Who is signed in and what they may do: accounts with argon2 password
//! hashes (seeded from `[[users]]`), sessions behind a random 256-bit
//! cookie (only its SHA-256 is stored), a CSRF synchronizer token per
//! session, a sign-in rate limit, and the role policy that every
//! state-changing web handler checks on the server (a hidden button is a
//! convenience, never the control).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, Params};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, FromRow, Row};

use crate::App;
use crate::config::ConfigError;
use crate::db::row;
use crate::error::{Error, Result};
use crate::web::i18n::Lang;

/// The session cookie.
pub const SESSION_COOKIE: &str = "anquan_session";

/// Web roles. Registry roles map onto them: `principal` and
/// `safety_officer` → `enterprise`, `grid_officer` → `grid`, `county`,
/// `city`; `admin` runs the system and takes no part in the workflow.
pub const WEB_ROLES: [&str; 5] = ["enterprise", "grid", "county", "city", "admin"];

/// Whether web role `web` fits registry role `person` (principal and
/// safety officer are the enterprise; `duty_officer` may hold any
/// government role).
pub fn role_fits(web: &str, person: &str) -> bool {
    match person {
        "principal" | "safety_officer" => web == "enterprise",
        "grid_officer" => web == "grid",
        "county" => web == "county",
        "city" => web == "city",
        "duty_officer" => matches!(web, "grid" | "county" | "city"),
        _ => false,
    }
}

/// `[[users]]`: a web account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSeed {
    /// Sign-in name.
    pub username: String,
    /// PHC string from `anquan-monitor hash-password` (argon2id).
    pub password_hash: String,
    /// `enterprise`, `grid`, `county`, `city` or `admin` (see the README's
    /// roles table).
    pub role: String,
    /// The registry person this account acts as (audit rows name them);
    /// required for every role but `admin`.
    #[serde(default)]
    pub person_id: Option<String>,
}

/// Checks `[[users]]`; the error names the key.
pub fn validate_users(users: &[UserSeed]) -> Result<(), ConfigError> {
    let mut seen = std::collections::HashSet::new();
    for (i, u) in users.iter().enumerate() {
        let k = |f: &str| format!("users[{i}].{f}");
        if u.username.is_empty()
            || u.username.len() > 64
            || !u
                .username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(ConfigError::new(
                k("username"),
                "1 to 64 characters of a-z, A-Z, 0-9, '.', '_', '-'",
            ));
        }
        if !seen.insert(u.username.as_str()) {
            return Err(ConfigError::new(k("username"), "duplicate username"));
        }
        if !WEB_ROLES.contains(&u.role.as_str()) {
            return Err(ConfigError::new(
                k("role"),
                format!("unknown role {:?}; use one of {WEB_ROLES:?}", u.role),
            ));
        }
        match PasswordHash::new(&u.password_hash) {
            Ok(h) if h.algorithm.as_str().starts_with("argon2") => {}
            _ => {
                return Err(ConfigError::new(
                    k("password_hash"),
                    "must be an argon2 PHC string ($argon2id$...); make one with `anquan-monitor hash-password`",
                ));
            }
        }
        if u.role != "admin" && u.person_id.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::new(
                k("person_id"),
                "required for every role but admin (the registry person this account acts as)",
            ));
        }
    }
    Ok(())
}

/// Writes the configured accounts: the file is the truth, so accounts no
/// longer in it are removed with their sessions.
pub async fn seed_users(c: &mut AnyConnection, users: &[UserSeed], now: i64) -> Result<()> {
    let known: Vec<String> = sqlx::query_scalar("SELECT username FROM web_users")
        .fetch_all(&mut *c)
        .await?;
    for gone in known
        .iter()
        .filter(|k| !users.iter().any(|u| &u.username == *k))
    {
        sqlx::query("DELETE FROM web_sessions WHERE username = $1")
            .bind(gone)
            .execute(&mut *c)
            .await?;
        sqlx::query("DELETE FROM web_users WHERE username = $1")
            .bind(gone)
            .execute(&mut *c)
            .await?;
        tracing::info!(user = %gone, "web account removed (no longer in [[users]])");
    }
    for u in users {
        sqlx::query(
            "INSERT INTO web_users (username, password_hash, role, person_id, updated_ms) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (username) DO UPDATE SET password_hash = $2, role = $3, person_id = $4, updated_ms = $5",
        )
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(&u.role)
        .bind(u.person_id.clone())
        .bind(now)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// 256 random bits, hex.
pub fn random_hex32() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::Unavailable(format!("no randomness from the OS: {e}")))?;
    Ok(hex::encode(b))
}

/// An argon2id PHC string of `password` with the crate's default (OWASP)
/// parameters, or with `params` (tests use cheap ones).
pub fn hash_password(password: &str, params: Option<Params>) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt)
        .map_err(|e| Error::Unavailable(format!("no randomness from the OS: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::Invalid(e.to_string()))?;
    let a = match params {
        Some(p) => Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p),
        None => Argon2::default(),
    };
    Ok(a.hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::Invalid(format!("cannot hash: {e}")))?
        .to_string())
}

thread_local! {
    /// The argon2 working memory of this thread, kept between checks: the
    /// sign-in gate's threads allocate it once instead of once per check,
    /// so memory stays flat under any number of sign-ins.
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `password` matches the PHC string (its own parameters).
pub fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(alg), Ok(params), Some(expected), Some(salt)) = (
        argon2::Algorithm::try_from(h.algorithm),
        Params::try_from(&h),
        h.hash,
        h.salt,
    ) else {
        return false;
    };
    let version = match h.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let hashed = BLOCKS.with(|b| {
        let Ok(mut blocks) = b.try_borrow_mut() else {
            return false;
        };
        if blocks.len() < params.block_count() {
            blocks.resize(params.block_count(), argon2::Block::default());
        }
        Argon2::new(alg, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..])
            .is_ok()
    });
    hashed && ct_eq(&out, expected.as_bytes())
}

/// A signed-in user (extractor: pages redirect to sign-in without one,
/// other requests get 401).
#[derive(Debug, Clone)]
pub struct Session {
    /// Account.
    pub username: String,
    /// Web role.
    pub role: String,
    /// The registry person the account acts as.
    pub person_id: Option<String>,
    /// The region of that person (what the user oversees).
    pub region_id: Option<String>,
    /// The CSRF synchronizer token of this session.
    pub csrf: String,
    /// UI language of this request.
    pub lang: Lang,
}

impl Session {
    /// The person to name in audit rows; 403 for accounts without one.
    pub fn person(&self) -> Result<&str> {
        self.person_id.as_deref().ok_or_else(|| {
            Error::Forbidden(format!(
                "account {} is not linked to a registry person and cannot act",
                self.username
            ))
        })
    }

    /// Checks the CSRF token sent with a state-changing request.
    pub fn check_csrf(&self, given: Option<&str>) -> Result<()> {
        let ok = given.is_some_and(|g| ct_eq(g.as_bytes(), self.csrf.as_bytes()));
        if ok {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "missing or wrong CSRF token; reload the page and retry".into(),
            ))
        }
    }

    /// 403 unless `allowed`.
    pub fn require(&self, allowed: bool, what: &str) -> Result<()> {
        if allowed {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "role {} may not {what}",
                self.role
            )))
        }
    }
}

/// Equality in time independent of where the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name`.
pub fn cookie<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl FromRequestParts<App> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let lang = crate::web::lang_of(parts);
        let found = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(raw) => lookup(app, raw, lang)
                .await
                .map_err(IntoResponse::into_response)?,
            None => None,
        };
        match found {
            Some(s) => Ok(s),
            // Pages send a person to the sign-in; the JSON and the event
            // stream answer 401 (a script cannot use a sign-in page).
            None if parts.method == Method::GET
                && parts.uri.path() != "/web/events"
                && !parts.uri.path().starts_with("/web/api/") =>
            {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/web", |p| p.as_str())
                    .to_string();
                Err(Redirect::to(&format!(
                    "/web/sign-in?next={}",
                    crate::web::url_encode(&next)
                ))
                .into_response())
            }
            None => Err(
                Error::Unauthorized("sign in first (session missing or expired)").into_response(),
            ),
        }
    }
}

pub(crate) async fn lookup(app: &App, raw: &str, lang: Lang) -> Result<Option<Session>> {
    if raw.len() != 64 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT}, s.csrf AS csrf FROM web_sessions s {ACCOUNT_JOIN} \
         WHERE s.id_hash = $1 AND s.expires_ms > $2"
    ))
    .bind(sha256_hex(raw))
    .bind(app.now_ms())
    .fetch_optional(&app.db)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(
        Account::from_row(&r)?.session(r.try_get("csrf")?, lang),
    ))
}

row! {
    /// The account a session or a personal token acts as: its columns come
    /// from [`ACCOUNT`] over [`ACCOUNT_JOIN`].
    #[derive(Debug)]
    pub(crate) struct Account {
        username: String,
        role: String,
        person_id: Option<String>,
        region_id: Option<String>,
    }
}

/// The `SELECT` list of an [`Account`].
pub(crate) const ACCOUNT: &str = "u.username AS username, u.role AS role, \
     u.person_id AS person_id, p.region_id AS region_id";

/// The joins [`ACCOUNT`] reads, from a table aliased `s` with a `username`.
pub(crate) const ACCOUNT_JOIN: &str = "JOIN web_users u ON u.username = s.username \
     LEFT JOIN people p ON p.id = u.person_id";

impl Account {
    /// The session of this account, with its CSRF token and language.
    pub(crate) fn session(self, csrf: String, lang: Lang) -> Session {
        Session {
            username: self.username,
            role: self.role,
            person_id: self.person_id,
            region_id: self.region_id,
            csrf,
            lang,
        }
    }
}

/// Checks a password; on success opens a session and returns the cookie
/// value (the raw id, never stored).
pub async fn sign_in(app: &App, username: &str, password: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT password_hash FROM web_users WHERE username = $1")
        .bind(username)
        .fetch_optional(&app.db)
        .await?;
    let phc: Option<String> = row.map(|r| r.try_get("password_hash")).transpose()?;
    let known = phc.is_some();
    // An unknown name is checked against another account's hash (same
    // parameters, same cost), so the answer time does not tell which
    // names exist.
    let phc = match phc {
        Some(p) => p,
        None => match sqlx::query_scalar::<_, String>(
            "SELECT password_hash FROM web_users ORDER BY username LIMIT 1",
        )
        .fetch_optional(&app.db)
        .await?
        {
            Some(p) => p,
            None => return Ok(None),
        },
    };
    let pw = password.to_string();
    // Argon2 is deliberately slow and large: off the async workers, and
    // only as many at once as the gate allows.
    let ok = app
        .signin_gate
        .run(move || verify_password(&phc, &pw))
        .await?;
    if !(ok && known) {
        return Ok(None);
    }
    let raw = random_hex32()?;
    let now = app.now_ms();
    let ttl = app.cfg.web.session_ttl_min as i64 * 60_000;
    let mut tx = app.db.begin().await?;
    sqlx::query("DELETE FROM web_sessions WHERE expires_ms <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO web_sessions (id_hash, username, csrf, created_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(sha256_hex(&raw))
    .bind(username)
    .bind(random_hex32()?)
    .bind(now)
    .bind(now + ttl)
    .execute(&mut *tx)
    .await?;
    crate::db::audit(
        &mut tx,
        now,
        &format!("user:{username}"),
        "web_session",
        username,
        None,
        "SIGNED_IN",
        "password sign-in",
    )
    .await?;
    tx.commit().await?;
    Ok(Some(raw))
}

/// Ends the session of cookie value `raw`.
pub async fn sign_out(app: &App, raw: &str) -> Result<()> {
    sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
        .bind(sha256_hex(raw))
        .execute(&app.db)
        .await?;
    Ok(())
}

/// The `Set-Cookie` value for the session (empty `raw` clears it).
pub fn session_cookie(app: &App, raw: &str) -> String {
    let secure = if app.cfg.web.cookie_secure(&app.cfg.server.listen) {
        "; Secure"
    } else {
        ""
    };
    let age = if raw.is_empty() {
        0
    } else {
        app.cfg.web.session_ttl_min * 60
    };
    format!("{SESSION_COOKIE}={raw}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{secure}")
}

/// Failed sign-ins per (account, client address) within a window. A try
/// is counted *before* its password is verified (a reservation, given back
/// on success), so a burst of attempts in flight cannot all be verified
/// before the first failure is recorded; over the limit sign-in answers 429
/// without verifying. Keyed on the pair, five wrong passwords for one name
/// lock that name at that address only: neither the other users behind the
/// same address (a duty room behind one proxy) nor the same user elsewhere.
/// The global guard is [`VerifyGate`].
#[derive(Debug, Default)]
pub struct Limiter {
    failures: Mutex<HashMap<String, (u32, i64)>>,
    /// Sign-ins refused by the limit (logged too).
    pub rejected: AtomicU64,
}

/// The limiter's key for `username` signing in from `address`.
pub fn limit_key(username: &str, address: &str) -> String {
    format!("{address} {username}")
}

impl Limiter {
    /// Counts one try against `key` unless it already has `max` failures in
    /// the window; returns whether the try may go on.
    pub fn reserve(&self, key: &str, now: i64, max: u32, window_ms: i64) -> bool {
        let Ok(mut m) = self.failures.lock() else {
            return false;
        };
        if m.len() > 100_000 {
            m.retain(|_, (_, since)| now - *since < window_ms);
        }
        let e = m.entry(key.to_string()).or_insert((0, now));
        if now - e.1 >= window_ms {
            *e = (0, now);
        }
        if e.0 >= max {
            drop(m);
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        e.0 += 1;
        true
    }

    /// Forgets the failures of `key` (a successful sign-in).
    pub fn clear(&self, key: &str) {
        if let Ok(mut m) = self.failures.lock() {
            m.remove(key);
        }
    }

    /// Gives back one reserved try of `key` whose password was never
    /// checked (the verification gate was full).
    pub fn refund(&self, key: &str) {
        if let Ok(mut m) = self.failures.lock()
            && let Some(e) = m.get_mut(key)
        {
            e.0 = e.0.saturating_sub(1);
        }
    }
}

/// The global guard on sign-in cost: at most `parallel` password
/// verifications run at once, on `parallel` threads of their own, and at
/// most `queue` more wait; beyond that a sign-in is refused at once.
/// Argon2id takes ~19 MiB per verification with the default parameters:
/// without a bound a burst of wrong sign-ins (no account needed) takes
/// memory in proportion to the burst. Dedicated threads matter as much as
/// the bound: the allocator keeps a freed block in the arena of the thread
/// that used it, so checks spread over a blocking pool of hundreds of
/// threads leave hundreds of MiB behind even when only two ran at a time.
#[derive(Debug)]
pub struct VerifyGate {
    jobs: std::sync::mpsc::SyncSender<Box<dyn FnOnce() + Send>>,
    in_flight: std::sync::Arc<AtomicUsize>,
    limit: usize,
    running: std::sync::Arc<AtomicUsize>,
    /// The most verifications seen running at once.
    pub peak: std::sync::Arc<AtomicUsize>,
    /// Sign-ins refused because every slot and queue place was taken.
    pub busy: AtomicU64,
}

impl VerifyGate {
    /// `parallel` threads (at least one) and `queue` waiting places. The
    /// threads end when the gate is dropped.
    pub fn new(parallel: u32, queue: u32) -> std::io::Result<Self> {
        let parallel = parallel.max(1) as usize;
        let limit = parallel + queue as usize;
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Box<dyn FnOnce() + Send>>(limit);
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..parallel {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("signin-check-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking a job.
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self {
            jobs,
            in_flight: std::sync::Arc::new(AtomicUsize::new(0)),
            limit,
            running: std::sync::Arc::new(AtomicUsize::new(0)),
            peak: std::sync::Arc::new(AtomicUsize::new(0)),
            busy: AtomicU64::new(0),
        })
    }

    /// Runs the blocking `check` on a gate thread; [`Error::TooMany`] when
    /// the gate is full. A place is held until the check has run, so a
    /// client that hangs up mid-verification does not free it early.
    pub async fn run<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.busy.fetch_add(1, Ordering::Relaxed);
            return Err(Error::TooMany(BUSY.into()));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (running, peak, in_flight) = (
            self.running.clone(),
            self.peak.clone(),
            self.in_flight.clone(),
        );
        let job = Box::new(move || {
            let now = running.fetch_add(1, Ordering::AcqRel) + 1;
            peak.fetch_max(now, Ordering::AcqRel);
            let out = check();
            running.fetch_sub(1, Ordering::AcqRel);
            in_flight.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(out);
        });
        if self.jobs.try_send(job).is_err() {
            // Cannot happen while the channel holds `limit` jobs and the
            // count above admits at most `limit`; refuse rather than block.
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.busy.fetch_add(1, Ordering::Relaxed);
            return Err(Error::TooMany(BUSY.into()));
        }
        rx.await
            .map_err(|_| Error::Unavailable("the password check stopped".into()))
    }
}

/// The reason [`VerifyGate::run`] gives when it is full.
pub const BUSY: &str = "too many sign-ins at once; retry in a few seconds";

/// Who may move a hazard `from → to` (MONITOR-SPEC §3: the enterprise
/// rectifies and may fix on the spot (立查立改); the grid officer and the
/// departments judge and file; only the county or city (the 牵头验收单位
/// level) accept and close (销号), archive, and list (挂牌督办); a listed
/// hazard is closed (摘牌) only by its listing level, checked separately).
pub fn may_move_hazard(role: &str, from: &str, to: &str) -> bool {
    const ENT: &[&str] = &["enterprise", "grid", "county", "city"];
    const GOV: &[&str] = &["grid", "county", "city"];
    const TOP: &[&str] = &["county", "city"];
    let who: &[&str] = match (from, to) {
        ("DETECTED", "JUDGED") | ("JUDGED", "FILED") | ("VERIFYING", "RECTIFYING") => GOV,
        ("DETECTED", "VERIFYING") | ("RECTIFYING", "VERIFYING") => &["enterprise", "grid"],
        ("FILED", "RECTIFYING")
        | ("RECTIFYING", "INTERIM_CONTROL")
        | ("INTERIM_CONTROL", "RECTIFYING")
        | ("REOPENED", "RECTIFYING") => ENT,
        ("VERIFYING", "CLOSED") | ("CLOSED", "ARCHIVED") => TOP,
        (_, "REOPENED") => GOV,
        _ => &[],
    };
    who.contains(&role)
}

/// Who may move a task `from → to`: its assignee works it (start,
/// submit with evidence, resume after a rejection or when overdue);
/// someone else from the grid, county or city assigns and reviews it (no
/// one reviews their own work). OVERDUE is the scheduler's.
pub fn may_move_task(role: &str, from: &str, to: &str, is_assignee: bool) -> bool {
    const GOV: &[&str] = &["grid", "county", "city"];
    match (from, to) {
        ("ASSIGNED" | "OVERDUE", "IN_PROGRESS") | ("IN_PROGRESS" | "OVERDUE", "SUBMITTED") => {
            is_assignee && role != "admin"
        }
        ("PLANNED", "ASSIGNED")
        | ("SUBMITTED", "REVIEWED")
        | ("SUBMITTED", "IN_PROGRESS")
        | ("REVIEWED", "DONE") => GOV.contains(&role) && !is_assignee,
        _ => false,
    }
}

/// Who may acknowledge a warning (everyone in the workflow; not admin).
pub fn may_ack(role: &str) -> bool {
    role != "admin"
}

/// Who may judge anonymous public reports (the officers who judge
/// hazards: grid, county, city).
pub fn may_judge_reports(role: &str) -> bool {
    matches!(role, "grid" | "county" | "city")
}

/// Who may list a hazard (挂牌督办).
pub fn may_list(role: &str) -> bool {
    role == "county" || role == "city"
}

/// Cheap argon2 parameters for tests (the PHC string carries them).
pub fn test_params() -> Option<Params> {
    Params::new(1024, 1, 1, None).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("s3cret", test_params()).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "s3cret "));
        assert!(!verify_password("not a hash", "s3cret"));
    }

    #[test]
    fn only_county_and_city_close() {
        for r in WEB_ROLES {
            assert_eq!(
                may_move_hazard(r, "VERIFYING", "CLOSED"),
                r == "county" || r == "city",
                "{r}"
            );
        }
        assert!(may_move_hazard("enterprise", "RECTIFYING", "VERIFYING"));
        assert!(!may_move_hazard("enterprise", "DETECTED", "JUDGED"));
        assert!(!may_move_hazard("admin", "FILED", "RECTIFYING"));
        assert!(!may_move_hazard("city", "DETECTED", "CLOSED"));
    }

    #[test]
    fn tasks_are_worked_by_the_assignee_and_reviewed_by_someone_else() {
        assert!(may_move_task("enterprise", "ASSIGNED", "IN_PROGRESS", true));
        assert!(may_move_task(
            "enterprise",
            "IN_PROGRESS",
            "SUBMITTED",
            true
        ));
        assert!(!may_move_task("enterprise", "SUBMITTED", "REVIEWED", true));
        assert!(
            !may_move_task("grid", "SUBMITTED", "REVIEWED", true),
            "own work"
        );
        assert!(may_move_task("grid", "SUBMITTED", "REVIEWED", false));
        assert!(!may_move_task("grid", "ASSIGNED", "IN_PROGRESS", false));
        assert!(!may_move_task("county", "IN_PROGRESS", "OVERDUE", false));
        assert!(!may_move_task("admin", "REVIEWED", "DONE", false));
    }

    #[test]
    fn web_roles_fit_registry_roles() {
        assert!(role_fits("enterprise", "safety_officer"));
        assert!(role_fits("enterprise", "principal"));
        assert!(!role_fits("county", "safety_officer"));
        assert!(role_fits("city", "city"));
        assert!(!role_fits("admin", "city"));
    }

    #[test]
    fn limiter_reserves_per_account_and_address() {
        let l = Limiter::default();
        let a = limit_key("a", "10.0.0.1");
        for _ in 0..3 {
            assert!(l.reserve(&a, 0, 3, 1000), "counted before verifying");
        }
        assert!(!l.reserve(&a, 10, 3, 1000), "the fourth try is refused");
        assert!(
            l.reserve(&limit_key("b", "10.0.0.1"), 10, 3, 1000),
            "another user, same address"
        );
        assert!(
            l.reserve(&limit_key("a", "10.0.0.2"), 10, 3, 1000),
            "same user, another address"
        );
        assert!(l.reserve(&a, 1000, 3, 1000), "the window passed");
        assert!(l.reserve(&a, 1000, 3, 1000));
        assert!(l.reserve(&a, 1000, 3, 1000));
        assert!(!l.reserve(&a, 1001, 3, 1000), "full again");
        l.refund(&a);
        assert!(l.reserve(&a, 1001, 3, 1000), "a refunded try");
        assert!(!l.reserve(&a, 1001, 3, 1000));
        l.clear(&a);
        assert!(l.reserve(&a, 1001, 3, 1000));
        assert_eq!(l.rejected.load(Ordering::Relaxed), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_gate_bounds_running_and_waiting_checks() {
        let g = std::sync::Arc::new(VerifyGate::new(2, 3).unwrap());
        let go = std::sync::Arc::new(std::sync::Barrier::new(1));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (g, go) = (g.clone(), go.clone());
            tasks.push(tokio::spawn(async move {
                g.run(move || {
                    go.wait();
                    std::thread::sleep(std::time::Duration::from_millis(20));
                })
                .await
            }));
        }
        let mut ok = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(Error::TooMany(_)) => busy += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(ok + busy, 20);
        assert!(ok >= 5, "the slots and the queue were used: {ok}");
        assert!(busy >= 1, "20 at once over 2 + 3 places: some refused");
        assert!(
            g.peak.load(Ordering::Relaxed) <= 2,
            "never more than 2 at once"
        );
        assert_eq!(g.busy.load(Ordering::Relaxed), busy);
    }

    #[test]
    fn users_are_validated_by_key() {
        let h = hash_password("x", test_params()).unwrap();
        let u = |name: &str, role: &str, hash: &str, person: Option<&str>| UserSeed {
            username: name.into(),
            password_hash: hash.into(),
            role: role.into(),
            person_id: person.map(String::from),
        };
        assert!(validate_users(&[u("a", "county", &h, Some("p"))]).is_ok());
        assert!(validate_users(&[u("admin", "admin", &h, None)]).is_ok());
        let e = validate_users(&[u("a", "boss", &h, Some("p"))]).unwrap_err();
        assert_eq!(e.key, "users[0].role");
        let e = validate_users(&[u("a", "county", "plain", Some("p"))]).unwrap_err();
        assert_eq!(e.key, "users[0].password_hash");
        let e = validate_users(&[u("a", "county", &h, None)]).unwrap_err();
        assert_eq!(e.key, "users[0].person_id");
        let e = validate_users(&[u("a b", "county", &h, Some("p"))]).unwrap_err();
        assert_eq!(e.key, "users[0].username");
    }
}
