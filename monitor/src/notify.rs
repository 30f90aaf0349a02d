//! 消息通知: one `deliveries` row per message, person and channel, queued in
//! the same transaction as the state change that caused it (so a message is
//! never lost, and its `dedupe` key makes queueing happen once). A worker
//! claims due rows with a lease (compare-and-set on `lease_until`), sends,
//! and records the result; failures are retried with doubling delays, then
//! FAILED, and a failed call moves on to the next person on duty.
//!
//! Channels: webhook (JSON, `X-Anquan-Signature: sha256=<hex HMAC-SHA256 of
//! the body>`, `X-Anquan-Delivery: <id>` for receiver-side dedupe; an SMS or
//! IM gateway is a webhook profile) and SMTP e-mail (`lettre`).

use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use sha2::Sha256;
use sqlx::{AnyConnection, Row};

use crate::config::NotifyConfig;
use crate::db;
use crate::error::{Error, Result};
use crate::{App, warnings};

/// Outbound channels.
#[derive(Debug)]
pub struct Notifier {
    http: reqwest::Client,
    secret: Vec<u8>,
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, Mailbox)>,
}

/// The webhook body.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    /// Delivery id (dedupe key for the receiver).
    pub delivery_id: &'a str,
    /// `warning`, `task`, `hazard`.
    pub subject: &'a str,
    /// Its id.
    pub subject_id: &'a str,
    /// The recipient.
    pub person_id: &'a str,
    /// `call`, `reminder`, `escalation`.
    pub purpose: &'a str,
    /// Title.
    pub title: &'a str,
    /// Text.
    pub body: &'a str,
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length; the error branch cannot happen.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Notifier {
    /// Builds the clients.
    pub fn new(cfg: &NotifyConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.webhook.timeout_ms))
            .use_rustls_tls()
            .build()
            .map_err(|e| {
                Error::Invalid(format!("notify.webhook: cannot build the HTTP client: {e}"))
            })?;
        let smtp = match &cfg.smtp {
            Some(s) => {
                let from: Mailbox = s.from.parse().map_err(|_| {
                    Error::Invalid("notify.smtp.from: not an e-mail address".into())
                })?;
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
                    .port(s.port)
                    .tls(smtp_tls(s)?)
                    .timeout(Some(Duration::from_millis(s.timeout_ms)));
                if let (Some(user), Some(pw)) = (&s.username, &s.password) {
                    // AUTH PLAIN or LOGIN, the first the relay offers
                    // (lettre's default order); validation refused them on
                    // a plain connection to another host.
                    b = b.credentials(Credentials::new(user.clone(), pw.expose().to_owned()));
                }
                let t = b.build();
                Some((t, from))
            }
            None => None,
        };
        Ok(Self {
            http,
            secret: cfg.webhook.secret.as_bytes().to_vec(),
            smtp,
        })
    }

    /// Whether e-mail is configured.
    pub fn has_email(&self) -> bool {
        self.smtp.is_some()
    }

    async fn webhook(&self, url: &str, b: &WebhookBody<'_>) -> std::result::Result<(), String> {
        let body = serde_json::to_vec(b).map_err(|e| e.to_string())?;
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-anquan-signature", sign(&self.secret, &body))
            .header("x-anquan-delivery", b.delivery_id)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("{url}: HTTP {}", resp.status().as_u16()))
        }
    }

    async fn email(&self, to: &str, b: &WebhookBody<'_>) -> std::result::Result<(), String> {
        let Some((t, from)) = &self.smtp else {
            return Err("e-mail is not configured ([notify.smtp])".into());
        };
        let to: Mailbox = to.parse().map_err(|_| format!("bad address {to:?}"))?;
        let msg = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(b.title)
            .body(format!("{}\nDelivery: {}\n", b.body, b.delivery_id))
            .map_err(|e| e.to_string())?;
        t.send(msg)
            .await
            .map(|_| ())
            .map_err(|e| format!("smtp: {e}"))
    }
}

impl Notifier {
    /// A report mail: `text` and `html` as alternatives, plus one
    /// attachment.
    #[allow(clippy::too_many_arguments)]
    pub async fn email_report(
        &self,
        to: &str,
        subject: &str,
        text: String,
        html: String,
        filename: String,
        mime: &str,
        bytes: Vec<u8>,
    ) -> std::result::Result<(), String> {
        use lettre::message::header::ContentType;
        use lettre::message::{Attachment, MultiPart};
        let Some((t, from)) = &self.smtp else {
            return Err("e-mail is not configured ([notify.smtp])".into());
        };
        let to: Mailbox = to.parse().map_err(|_| format!("bad address {to:?}"))?;
        let ct = ContentType::parse(mime).map_err(|e| format!("{mime}: {e}"))?;
        let msg = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .multipart(
                MultiPart::mixed()
                    .multipart(MultiPart::alternative_plain_html(text, html))
                    .singlepart(Attachment::new(filename).body(bytes, ct)),
            )
            .map_err(|e| e.to_string())?;
        t.send(msg)
            .await
            .map(|_| ())
            .map_err(|e| format!("smtp: {e}"))
    }
}

/// The TLS mode of `[notify.smtp]`: rustls, verifying the relay's
/// certificate for `host` against the system's CA store and `ca_file`.
fn smtp_tls(s: &crate::config::SmtpConfig) -> Result<lettre::transport::smtp::client::Tls> {
    use crate::config::SmtpTls;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    if s.tls == SmtpTls::None {
        return Ok(Tls::None);
    }
    let mut b = TlsParameters::builder(s.host.clone());
    if let Some(path) = &s.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| Error::Invalid(format!("notify.smtp.ca_file: cannot read {path}: {e}")))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            Error::Invalid(format!(
                "notify.smtp.ca_file: {path} is not a PEM certificate: {e}"
            ))
        })?;
        b = b.add_root_certificate(cert);
    }
    let p = b
        .build_rustls()
        .map_err(|e| Error::Invalid(format!("notify.smtp.tls: {e}")))?;
    Ok(match s.tls {
        SmtpTls::Starttls => Tls::Required(p),
        _ => Tls::Wrapper(p),
    })
}

/// Queues a message for `person` on each of their channels; `dedupe` makes
/// this idempotent. Returns how many rows were new.
#[allow(clippy::too_many_arguments)]
pub async fn queue(
    app: &App,
    c: &mut AnyConnection,
    now: i64,
    dedupe: &str,
    subject: &str,
    subject_id: &str,
    person: &str,
    purpose: &str,
    title: &str,
    body: &str,
) -> Result<usize> {
    let Some(targets) = targets(app, c, now, subject_id, person).await? else {
        return Ok(0);
    };
    let mut n = 0;
    for (channel, target) in targets {
        n += sqlx::query(
            "INSERT INTO deliveries (id, dedupe, subject, subject_id, person_id, channel, target, purpose, \
             title, body, state, attempts, next_ms, lease_until, lease_owner, last_error, created_ms, sent_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'QUEUED', 0, $11, 0, NULL, NULL, $11, NULL) \
             ON CONFLICT (dedupe) DO NOTHING",
        )
        .bind(db::seq_id(now))
        .bind(format!("{dedupe}:{channel}"))
        .bind(subject)
        .bind(subject_id)
        .bind(person)
        .bind(channel)
        .bind(target)
        .bind(purpose)
        .bind(title)
        .bind(body)
        .bind(now)
        .execute(&mut *c)
        .await?
        .rows_affected() as usize;
    }
    Ok(n)
}

/// [`queue`] for an intake batch, to a person whose channels came with the
/// call list: the rows go to `d`, written when the batch commits.
#[allow(clippy::too_many_arguments)]
pub async fn queue_deferred(
    app: &App,
    c: &mut AnyConnection,
    d: &mut crate::deferred::Deferred,
    now: i64,
    dedupe: &str,
    subject: &str,
    subject_id: &str,
    person: &crate::registry::OnCall,
    purpose: &str,
    title: &str,
    body: &str,
) -> Result<()> {
    if !person.registered {
        unroutable(c, now, subject_id, &person.id).await?;
        return Ok(());
    }
    for (channel, target) in channels(app, person.email.clone(), person.webhook.clone()) {
        d.delivery(
            now,
            format!("{dedupe}:{channel}"),
            subject,
            subject_id,
            &person.id,
            channel,
            target,
            purpose,
            title,
            body,
        );
    }
    Ok(())
}

/// The channels messages go to: the webhook, and the e-mail address when
/// `[notify.smtp]` is set.
fn channels(
    app: &App,
    email: Option<String>,
    webhook: Option<String>,
) -> Vec<(&'static str, String)> {
    let mut targets = Vec::new();
    if let Some(w) = webhook {
        targets.push(("webhook", w));
    }
    if app.notifier.has_email()
        && let Some(e) = email
    {
        targets.push(("email", e));
    }
    targets
}

async fn unroutable(c: &mut AnyConnection, now: i64, subject_id: &str, person: &str) -> Result<()> {
    db::audit(
        c,
        now,
        "system:notifier",
        "delivery",
        subject_id,
        None,
        "UNROUTABLE",
        &format!("person {person} is not in the registry"),
    )
    .await
}

/// The channels of `person`: `None` (audited) when not in the registry.
async fn targets(
    app: &App,
    c: &mut AnyConnection,
    now: i64,
    subject_id: &str,
    person: &str,
) -> Result<Option<Vec<(&'static str, String)>>> {
    let Some(p) = sqlx::query("SELECT email, webhook FROM people WHERE id = $1")
        .bind(person)
        .fetch_optional(&mut *c)
        .await?
    else {
        unroutable(c, now, subject_id, person).await?;
        return Ok(None);
    };
    Ok(Some(channels(
        app,
        db::opt_str(&p, "email")?,
        db::opt_str(&p, "webhook")?,
    )))
}

/// Sends the due deliveries. Returns (sent, failed attempts).
pub async fn deliver_tick(app: &App, now: i64) -> Result<(usize, usize)> {
    let due = sqlx::query(
        "SELECT id FROM deliveries WHERE state = 'QUEUED' AND next_ms <= $1 AND lease_until <= $1 \
         ORDER BY next_ms, id LIMIT 100",
    )
    .bind(now)
    .fetch_all(&app.db)
    .await?;
    let lease = app.cfg.scheduler.lease_ms as i64;
    let (mut sent, mut failed) = (0, 0);
    for r in due {
        let id: String = r.try_get("id")?;
        let claimed = sqlx::query(
            "UPDATE deliveries SET lease_owner = $1, lease_until = $2 \
             WHERE id = $3 AND state = 'QUEUED' AND lease_until <= $4",
        )
        .bind(&app.instance)
        .bind(now + lease)
        .bind(&id)
        .bind(now)
        .execute(&app.db)
        .await?
        .rows_affected();
        if claimed != 1 {
            continue;
        }
        let d = sqlx::query(
            "SELECT subject, subject_id, person_id, channel, target, purpose, title, body, attempts, dedupe \
             FROM deliveries WHERE id = $1",
        )
        .bind(&id)
        .fetch_one(&app.db)
        .await?;
        let (subject, subject_id, person, channel, target, purpose, title, body): (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
            String,
        ) = (
            d.try_get("subject")?,
            d.try_get("subject_id")?,
            d.try_get("person_id")?,
            d.try_get("channel")?,
            d.try_get("target")?,
            d.try_get("purpose")?,
            d.try_get("title")?,
            d.try_get("body")?,
        );
        let attempts: i64 = d.try_get::<i64, _>("attempts")? + 1;
        // `warning:{id}:call:{rank}:{channel}`.
        let dedupe: String = d.try_get("dedupe")?;
        let call_rank: i64 = dedupe
            .split(':')
            .nth(3)
            .and_then(|r| r.parse().ok())
            .unwrap_or(-1);
        let wb = WebhookBody {
            delivery_id: &id,
            subject: &subject,
            subject_id: &subject_id,
            person_id: &person,
            purpose: &purpose,
            title: &title,
            body: &body,
        };
        let result = if subject == crate::report_mail::SUBJECT && channel == "email" {
            crate::report_mail::send(app, &id, &target, &subject_id, &purpose, &title, &body).await
        } else if channel == "email" {
            app.notifier.email(&target, &wb).await
        } else {
            app.notifier.webhook(&target, &wb).await
        };
        let now2 = app.now_ms();
        let mut tx = app.db.begin().await?;
        let mut call_failed = false;
        match result {
            Ok(()) => {
                sent += 1;
                app.metrics
                    .notifications_sent
                    .with_label_values(&[&channel])
                    .inc();
                sqlx::query(
                    "UPDATE deliveries SET state = 'SENT', attempts = $1, sent_ms = $2, last_error = NULL \
                     WHERE id = $3 AND lease_owner = $4",
                )
                .bind(attempts)
                .bind(now2)
                .bind(&id)
                .bind(&app.instance)
                .execute(&mut *tx)
                .await?;
                db::audit(
                    &mut tx,
                    now2,
                    "system:notifier",
                    "delivery",
                    &id,
                    Some("QUEUED"),
                    "SENT",
                    &format!("{channel} to {person} ({purpose}, {subject} {subject_id})"),
                )
                .await?;
                if subject == "warning" && purpose == "call" {
                    warnings::mark_notified(
                        &mut tx,
                        now2,
                        &subject_id,
                        &format!("{channel} delivered to {person}"),
                    )
                    .await?;
                }
            }
            Err(why) => {
                failed += 1;
                app.metrics
                    .notifications_failed
                    .with_label_values(&[&channel])
                    .inc();
                let give_up = attempts >= i64::from(app.cfg.notify.max_attempts);
                // Doubling, at most 15 minutes apart.
                let delay = (app.cfg.notify.retry_base_ms as i64)
                    .saturating_mul(1 << (attempts - 1).clamp(0, 20))
                    .min(15 * 60_000);
                sqlx::query(
                    "UPDATE deliveries SET state = $1, attempts = $2, next_ms = $3, lease_until = 0, \
                     last_error = $4 WHERE id = $5 AND lease_owner = $6",
                )
                .bind(if give_up { "FAILED" } else { "QUEUED" })
                .bind(attempts)
                .bind(now2 + delay)
                .bind(&why)
                .bind(&id)
                .bind(&app.instance)
                .execute(&mut *tx)
                .await?;
                tracing::warn!(delivery = %id, %channel, %person, attempt = attempts, error = %why, "notify: delivery failed");
                call_failed = give_up && subject == "warning" && purpose == "call";
                if give_up {
                    db::audit(
                        &mut tx,
                        now2,
                        "system:notifier",
                        "delivery",
                        &id,
                        Some("QUEUED"),
                        "FAILED",
                        &format!("{attempts} attempts: {why}"),
                    )
                    .await?;
                }
            }
        }
        tx.commit().await?;
        if subject == "warning" {
            app.live
                .publish(crate::web::live::Change::Warning(subject_id.clone()));
        }
        if call_failed {
            warnings::next_call(
                app,
                &subject_id,
                now2,
                warnings::Trigger::Failed(call_rank),
                "the call could not be delivered",
            )
            .await?;
        }
    }
    Ok((sent, failed))
}

/// Columns of the delivery JSON.
pub const DELIVERY_COLS: &[&str] = &[
    "id",
    "subject",
    "subject_id",
    "person_id",
    "channel",
    "target",
    "purpose",
    "title",
    "state",
    "attempts",
    "last_error",
    "created_ms",
    "sent_ms",
];

/// Deliveries as JSON, optionally of one subject.
pub async fn list(
    c: &mut AnyConnection,
    subject_id: Option<&str>,
) -> Result<Vec<serde_json::Value>> {
    let sql = format!(
        "SELECT {} FROM deliveries WHERE ($1 = '' OR subject_id = $1) ORDER BY created_ms, id LIMIT 1000",
        DELIVERY_COLS.join(", ")
    );
    let rows = sqlx::query(&sql)
        .bind(subject_id.unwrap_or(""))
        .fetch_all(&mut *c)
        .await?;
    rows.iter()
        .map(|r| db::row_json(r, DELIVERY_COLS))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
