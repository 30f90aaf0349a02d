//! Mailing the reports generated on schedule (`[[reports.mail]]`).
//!
//! When [`crate::snapshots`] freezes a report, the mails it causes are
//! queued **in the same transaction** as the snapshot, as ordinary
//! `deliveries` rows (subject `report`, channel `email`), one per report
//! and address: the table's unique `dedupe` key
//! (`report:<snapshot>:<address>:email`) makes that happen once, and since
//! the snapshot itself is written once (its own unique key), a restart or a
//! second replica queues nothing more. The notification worker
//! ([`crate::notify::deliver_tick`]) sends them like every other message:
//! claimed with a lease, retried with doubling delays up to
//! `notify.max_attempts`, then FAILED, every result audited and counted.
//! Sending is at least once, like the other deliveries: a crash between the
//! relay's 250 and the local commit resends after the lease.
//!
//! The message is built when it is sent, from the frozen snapshot: an HTML
//! body (the report's page) with a plain-text alternative, and the report
//! as an attachment (`xlsx`, `csv` or `pdf`, as configured).

use sqlx::{AnyConnection, Row};

use crate::config::ReportAttach;
use crate::error::Result;
use crate::notify::channel::{Failure, Sent};
use crate::{App, db};

/// The `deliveries.subject` of report mails.
pub const SUBJECT: &str = "report";

/// The Chinese name of a period, for the mail's subject line.
fn period_zh(period: &str) -> &'static str {
    match period {
        "daily" => "日报",
        "weekly" => "周报",
        "half-monthly" => "半月报",
        "monthly" => "月报",
        "quarterly" => "季报",
        "yearly" => "年报",
        _ => "报告",
    }
}

/// Queues the mails of the snapshot `snapshot_id` (`period`, `label`,
/// `region`) for every matching `[[reports.mail]]`, on `c` (the
/// snapshot's transaction). Returns how many rows were new.
pub async fn queue(
    app: &App,
    c: &mut AnyConnection,
    now: i64,
    snapshot_id: &str,
    period: &str,
    label: &str,
    region: &str,
) -> Result<usize> {
    let mut n = 0;
    for sub in app.cfg.reports.mail.iter().filter(|m| {
        m.region == region && (m.periods.is_empty() || m.periods.iter().any(|p| p == period))
    }) {
        // (person, address): the listed addresses, then the rostered people.
        let mut to: Vec<(String, String)> = sub
            .to
            .iter()
            .map(|a| (format!("mail:{a}"), a.clone()))
            .collect();
        for role in &sub.roles {
            let rows = sqlx::query(
                "SELECT DISTINCT p.id AS id, p.email AS email FROM duty d JOIN people p ON p.id = d.person_id \
                 WHERE d.region_id = $1 AND d.role = $2 AND p.email IS NOT NULL ORDER BY p.id",
            )
            .bind(region)
            .bind(role)
            .fetch_all(&mut *c)
            .await?;
            for r in rows {
                let email: String = r.try_get("email")?;
                if !email.trim().is_empty() {
                    to.push((r.try_get("id")?, email));
                }
            }
        }
        let title = format!(
            "{} {label} {region} (anquan {period} report)",
            period_zh(period)
        );
        let text = format!(
            "{} {label}, region {region}: the report generated on schedule is attached ({}).\n",
            period_zh(period),
            sub.attach.name()
        );
        for (person, address) in to {
            n += sqlx::query(
                "INSERT INTO deliveries (id, dedupe, subject, subject_id, person_id, channel, target, purpose, \
                 title, body, state, attempts, next_ms, lease_until, lease_owner, last_error, created_ms, sent_ms) \
                 VALUES ($1, $2, $3, $4, $5, 'email', $6, $7, $8, $9, 'QUEUED', 0, $10, 0, NULL, NULL, $10, NULL) \
                 ON CONFLICT (dedupe) DO NOTHING",
            )
            .bind(db::seq_id(now))
            .bind(format!(
                "{SUBJECT}:{snapshot_id}:{}:email",
                address.to_lowercase()
            ))
            .bind(SUBJECT)
            .bind(snapshot_id)
            .bind(&person)
            .bind(&address)
            .bind(format!("report-{}", sub.attach.name()))
            .bind(&title)
            .bind(&text)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected() as usize;
        }
    }
    Ok(n)
}

/// Sends one report mail (a `deliveries` row of subject [`SUBJECT`]):
/// the snapshot `snapshot_id` as HTML body and attachment of the format
/// named in `purpose` (`report-xlsx`, …). The error is the attempt's
/// `last_error`.
pub async fn send(
    app: &App,
    delivery_id: &str,
    to: &str,
    snapshot_id: &str,
    purpose: &str,
    title: &str,
    text: &str,
) -> std::result::Result<Sent, Failure> {
    let permanent = |reason: String| Failure::Permanent { reason };
    let retry = |reason: String| Failure::Retry {
        reason,
        after_ms: None,
    };
    let attach = purpose
        .strip_prefix("report-")
        .and_then(ReportAttach::parse)
        .ok_or_else(|| permanent(format!("unknown report attachment {purpose:?}")))?;
    let m = crate::snapshots::get(app, snapshot_id)
        .await
        .map_err(|e| retry(e.to_string()))?;
    let html = m.html();
    let (bytes, mime) = match attach {
        ReportAttach::Xlsx => (
            crate::export::xlsx(&m).map_err(|e| retry(e.to_string()))?,
            crate::export::XLSX_MIME,
        ),
        ReportAttach::Csv => (m.csv().into_bytes(), "text/csv; charset=utf-8"),
        ReportAttach::Pdf => (
            crate::export::pdf(&app.cfg.reports, &html)
                .await
                .map_err(|e| retry(e.to_string()))?,
            "application/pdf",
        ),
    };
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let filename = format!(
        "report-{}-{}-{}.{}",
        safe(&m.region_id),
        safe(&m.period),
        safe(&m.month),
        attach.name()
    );
    let Some(email) = app.notifier.email() else {
        return Err(permanent("e-mail is not configured ([notify.smtp])".into()));
    };
    email
        .report(
            to,
            title,
            format!("{text}\n{}\nDelivery: {delivery_id}\n", m.csv()),
            html,
            filename,
            mime,
            bytes,
        )
        .await
        .map(|()| Sent::default())
}
