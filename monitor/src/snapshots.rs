//! 报告生成 on schedule: when a period (day, week, 15-day node, month,
//! quarter, year; Beijing time) has ended, its report is computed for every region
//! of `reports.scheduled_tiers` and stored as a frozen snapshot, so the
//! monthly report a supervisor reads next year is the one that was true at
//! the month's end, not a recomputation over since-edited data.
//!
//! Restart- and replica-safe like the rest of the scheduler: a snapshot is
//! an insert on the unique key (period, label, region); a second replica
//! (or a restart) computing the same one loses the insert and changes
//! nothing. A monitor that was down fills in the periods that ended in the
//! last `reports.catch_up_days`.
//!
//! A frozen report is mailed to its `[[reports.mail]]` subscribers: the
//! mails are queued in the snapshot's transaction ([`crate::report_mail`]).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{FixedOffset, TimeZone};
use sqlx::Row;

use crate::db::Columns;
use crate::error::{Error, Result};
use crate::reports::{self, Monthly, PERIODS};
use crate::rows::SnapshotRow;
use crate::{App, db};

/// How often the scheduler looks for ended periods (its tick is faster).
const EVERY_MS: i64 = 60_000;
/// Reports computed in one tick at most: the same tick runs the SLA watch
/// (叫应), which must not wait behind a catch-up of a hundred reports. The
/// rest follows on the next ticks.
const PER_TICK: usize = 2;

/// When the last look happened (per process; a replica that looks too
/// only loses inserts).
#[derive(Debug, Default)]
pub struct LastRun(AtomicI64);

/// Writes the snapshots of the periods that have ended by `now` (and in
/// the catch-up window) and are missing; returns how many it wrote.
pub async fn tick(app: &App, now: i64) -> Result<usize> {
    let cfg = &app.cfg.reports;
    if cfg.scheduled_tiers.is_empty() {
        return Ok(0);
    }
    let last = app.snapshot_run.0.load(Ordering::Relaxed);
    if last != 0 && now >= last && now - last < EVERY_MS {
        return Ok(0);
    }
    app.snapshot_run.0.store(now, Ordering::Relaxed);

    let mut c = app.db.acquire().await?;
    let mut regions = Vec::new();
    for r in sqlx::query("SELECT id, tier FROM regions ORDER BY id")
        .fetch_all(&mut *c)
        .await?
    {
        let tier: String = r.try_get("tier")?;
        if cfg.scheduled_tiers.contains(&tier) {
            regions.push(r.try_get::<String, _>("id")?);
        }
    }
    // Every period that contains one of the last days and has ended.
    let tz =
        FixedOffset::east_opt(8 * 3600).ok_or_else(|| Error::Unavailable("time zone".into()))?;
    let today = tz
        .timestamp_millis_opt(now)
        .single()
        .ok_or_else(|| Error::Invalid(format!("clock: {now} ms is not a time")))?
        .date_naive();
    let mut due: Vec<(&str, String, String)> = Vec::new();
    for back in 1..=i64::from(cfg.catch_up_days.max(1)) {
        let date = (today - chrono::Duration::days(back))
            .format("%Y-%m-%d")
            .to_string();
        for period in PERIODS {
            let (label, _, end) = reports::period_bounds(period, &date)?;
            if end <= now && !due.iter().any(|(p, l, _)| *p == period && *l == label) {
                due.push((period, label, date.clone()));
            }
        }
    }
    let mut written = 0;
    for (period, label, date) in &due {
        for region in &regions {
            let exists: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM report_snapshots WHERE period = $1 AND label = $2 AND region_id = $3",
            )
            .bind(*period)
            .bind(label)
            .bind(region)
            .fetch_one(&mut *c)
            .await?
            .try_get("n")?;
            if exists > 0 {
                continue;
            }
            if written == PER_TICK {
                // More to do: go on at the next tick, not in a minute.
                app.snapshot_run.0.store(0, Ordering::Relaxed);
                return Ok(written);
            }
            let m = reports::report(&mut c, region, period, date).await?;
            let body = serde_json::to_string(&m)
                .map_err(|e| Error::Unavailable(format!("report json: {e}")))?;
            let id = db::new_id();
            let mut tx = sqlx::Connection::begin(&mut *c).await?;
            let done = sqlx::query(
                "INSERT INTO report_snapshots (id, period, label, region_id, generated_ms, body) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(*period)
            .bind(label)
            .bind(region)
            .bind(now)
            .bind(&body)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 1 {
                db::audit(
                    &mut tx,
                    now,
                    "system:scheduler",
                    "report",
                    &id,
                    None,
                    "GENERATED",
                    &format!("{period} report {label} for region {region}"),
                )
                .await?;
                // Its mails, in the same transaction: queued once with it.
                crate::report_mail::queue(app, &mut tx, now, &id, period, label, region).await?;
                written += 1;
            }
            tx.commit().await?;
        }
    }
    if written > 0 {
        tracing::info!(written, "reports generated on schedule");
    }
    Ok(written)
}

/// The snapshots, newest first, optionally of one `period` and `region`.
pub async fn list(
    app: &App,
    period: Option<&str>,
    region: Option<&str>,
) -> Result<Vec<SnapshotRow>> {
    if let Some(p) = period
        && reports::period_name(p).is_none()
    {
        return Err(Error::Invalid(format!(
            "period: unknown {p:?}; use one of {PERIODS:?}"
        )));
    }
    let period = period.and_then(reports::period_name);
    let mut c = app.db.acquire().await?;
    Ok(sqlx::query_as(&format!(
        "SELECT {} FROM report_snapshots \
         WHERE ($1 = '' OR period = $1) AND ($2 = '' OR region_id = $2) \
         ORDER BY generated_ms DESC, period, label, region_id LIMIT 1000",
        SnapshotRow::select()
    ))
    .bind(period.unwrap_or(""))
    .bind(region.unwrap_or(""))
    .fetch_all(&mut *c)
    .await?)
}

/// One snapshot's report, as it was generated.
pub async fn get(app: &App, id: &str) -> Result<Monthly> {
    let mut c = app.db.acquire().await?;
    let body: String = sqlx::query("SELECT body FROM report_snapshots WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(Error::NotFound {
            what: "report snapshot",
            id: id.into(),
        })?
        .try_get("body")?;
    serde_json::from_str(&body)
        .map_err(|e| Error::Unavailable(format!("report snapshot {id} cannot be read: {e}")))
}
