//! 风险预警: `POST /api/v1/alarms`. An alarm event (validated by
//! anquan-protocol) is stored once per `event_id`; the transitions of one
//! alarm (site/device/rule) update one open warning: `raised` opens it and
//! calls the first person on duty, `escalated`/`downgraded` change its level
//! (a shorter SLA applies at once), `cleared` marks it clearable. A
//! redelivered event changes nothing and gets the same answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anquan_protocol::{AlarmEvent, AlarmState, Level};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::db::{self, opt_str};
use crate::deferred::Deferred;
use crate::error::{Error, Result};
use crate::{App, notify, warnings};

/// The answer to an alarm event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    /// The event.
    pub event_id: String,
    /// The warning it belongs to (none for a `cleared` with no open warning).
    pub warning_id: Option<String>,
    /// Whether the event had been received before.
    pub duplicate: bool,
}

/// Decodes an alarm event body; the error names the field.
pub fn decode(body: &[u8]) -> Result<AlarmEvent> {
    if body.len() > anquan_protocol::MAX_PAYLOAD {
        return Err(Error::TooLarge(anquan_protocol::MAX_PAYLOAD));
    }
    AlarmEvent::decode(body).map_err(|e| {
        Error::Invalid(format!(
            "not a valid alarm event (contract v{}): {e}",
            anquan_protocol::CONTRACT_VERSION
        ))
    })
}

/// Takes one alarm event in its own transaction.
pub async fn accept(app: &App, ev: &AlarmEvent) -> Result<Outcome> {
    let mut tx = app.db.begin().await?;
    let out = accept_retrying(app, &mut tx, ev, app.now_ms()).await?;
    tx.commit().await?;
    Ok(out)
}

/// Takes one event inside the transaction `c`, in a savepoint: on failure
/// the event's writes are undone and the rest of the transaction stands.
/// Two transitions of one alarm arriving at once (other replica) may both
/// try to open its warning; the unique index lets one win, the other
/// retries and then finds the open warning.
async fn accept_retrying(
    app: &App,
    c: &mut AnyConnection,
    ev: &AlarmEvent,
    now: i64,
) -> Result<Outcome> {
    use sqlx::Connection;
    let mut tries = 0;
    loop {
        let mut sp = c.begin().await?;
        match accept_in(app, &mut sp, ev, now).await {
            Ok(o) => {
                sp.commit().await?;
                return Ok(o);
            }
            Err(Error::Db(sqlx::Error::Database(e))) if e.is_unique_violation() && tries < 3 => {
                sp.rollback().await?;
                tries += 1;
            }
            Err(e) => {
                sp.rollback().await?;
                return Err(e);
            }
        }
    }
}

type Job = (AlarmEvent, tokio::sync::oneshot::Sender<Result<Outcome>>);

/// Group commit: events that arrive while a transaction is being written
/// are taken together in the next one, and all are answered after it
/// commits. One fsync per batch instead of per event; a 2xx still means
/// stored.
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: tokio::sync::mpsc::Sender<Job>,
    fast: Arc<AtomicBool>,
}

/// The largest batch.
pub const MAX_BATCH: usize = 256;

impl Batcher {
    /// The queue; [`Batcher::run`] drains it.
    pub fn new() -> (Self, tokio::sync::mpsc::Receiver<Job>) {
        let (tx, rx) = tokio::sync::mpsc::channel(4 * MAX_BATCH);
        (
            Self {
                tx,
                fast: Arc::new(AtomicBool::new(true)),
            },
            rx,
        )
    }

    /// Turns the batch fast path (see [`Batcher::run`]) on or off; on by
    /// default. Off, every event runs in its own savepoint, as before: the
    /// benchmark measures both in one run.
    pub fn set_fast_path(&self, on: bool) {
        self.fast.store(on, Ordering::Relaxed);
    }

    /// Takes one event (waits for its batch to commit).
    pub async fn accept(&self, ev: AlarmEvent) -> Result<Outcome> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send((ev, tx))
            .await
            .map_err(|_| Error::Unavailable("the intake worker stopped".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("the intake worker stopped".into()))?
    }

    /// The worker: runs until every sender is gone. A batch first goes
    /// through the fast path: one query finds the events already stored
    /// (answered as duplicates), the others are applied without a
    /// savepoint each. If anything in it fails (a race with another
    /// replica, a bad row), the whole transaction is rolled back and the
    /// batch is taken again event by event, each in its own savepoint, so
    /// one bad event cannot fail the others.
    pub async fn run(app: App, mut rx: tokio::sync::mpsc::Receiver<Job>) {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            let results = batch_once(&app, &batch).await;
            for r in &results {
                if let Ok(Outcome {
                    warning_id: Some(w),
                    duplicate: false,
                    ..
                }) = r
                {
                    app.live
                        .publish(crate::web::live::Change::Warning(w.clone()));
                }
            }
            for ((_, reply), r) in batch.into_iter().zip(results) {
                let _ = reply.send(r);
            }
        }
    }
}

async fn batch_once(app: &App, batch: &[Job]) -> Vec<Result<Outcome>> {
    let now = app.now_ms();
    if app.intake.fast.load(Ordering::Relaxed) {
        match fast_batch(app, batch, now).await {
            Ok(out) => {
                app.metrics
                    .intake_batches
                    .with_label_values(&["fast"])
                    .inc();
                return out;
            }
            Err(e) => {
                app.metrics
                    .intake_batches
                    .with_label_values(&["fallback"])
                    .inc();
                tracing::debug!(error = %e, events = batch.len(), "intake: batch fast path failed; taking the events one by one");
            }
        }
    }
    let fail = |e: &dyn std::fmt::Display| -> Vec<Result<Outcome>> {
        app.metrics.db_error("intake");
        tracing::error!(error = %e, events = batch.len(), "intake: cannot store the batch");
        batch
            .iter()
            .map(|_| {
                Err(Error::Unavailable(
                    "the database cannot store the alarm now; retry later".into(),
                ))
            })
            .collect()
    };
    let mut tx = match app.db.begin().await {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let mut out = Vec::with_capacity(batch.len());
    for (ev, _) in batch {
        out.push(accept_retrying(app, &mut tx, ev, now).await);
    }
    match tx.commit().await {
        Ok(()) => out,
        Err(e) => fail(&e),
    }
}

/// The whole batch in one transaction, no savepoints; any error aborts it
/// (nothing is stored, nobody is answered yet) and the caller retries the
/// batch the careful way.
async fn fast_batch(app: &App, batch: &[Job], now: i64) -> Result<Vec<Result<Outcome>>> {
    let mut tx = app.db.begin().await?;
    let mut seen = stored(&mut tx, batch).await?;
    let mut d = Deferred::default();
    let mut out = Vec::with_capacity(batch.len());
    for (ev, _) in batch {
        let id = ev.event_id.as_str();
        if let Some(w) = seen.get(id) {
            out.push(Ok(Outcome {
                event_id: id.to_string(),
                warning_id: w.clone(),
                duplicate: true,
            }));
            continue;
        }
        let warning_id = apply(app, &mut tx, &mut d, ev, now).await?;
        // Without ON CONFLICT: another replica storing the same event
        // meanwhile fails the batch, and the careful path answers it as a
        // duplicate.
        d.event(ev, warning_id.as_deref(), now);
        seen.insert(id.to_string(), warning_id.clone());
        out.push(Ok(Outcome {
            event_id: id.to_string(),
            warning_id,
            duplicate: false,
        }));
    }
    d.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// The events of `batch` already stored, with their warnings: one query.
async fn stored(c: &mut AnyConnection, batch: &[Job]) -> Result<HashMap<String, Option<String>>> {
    // Padded to a power of two (repeating an id), so at most nine shapes
    // of this statement exist and each stays prepared.
    let n = batch.len().next_power_of_two();
    let marks: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT event_id, warning_id FROM alarm_events WHERE event_id IN ({})",
        marks.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for i in 0..n {
        let (ev, _) = &batch[i.min(batch.len() - 1)];
        q = q.bind(ev.event_id.as_str());
    }
    let mut out = HashMap::new();
    for r in q.fetch_all(&mut *c).await? {
        out.insert(r.try_get("event_id")?, opt_str(&r, "warning_id")?);
    }
    Ok(out)
}

/// Stores the event row unless present; returns whether it was new.
async fn insert_event(c: &mut AnyConnection, ev: &AlarmEvent, now: i64) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO alarm_events (event_id, warning_id, site, device, kind, rule, level, state, \
         value, threshold, ts_ms, gateway, received_ms) \
         VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(ev.event_id.as_str())
    .bind(ev.site.as_str())
    .bind(ev.device.as_str())
    .bind(ev.kind.to_string())
    .bind(ev.rule.as_str())
    .bind(ev.level.as_str())
    .bind(ev.state.as_str())
    .bind(f64::from(ev.value))
    .bind(f64::from(ev.threshold))
    .bind(i64::try_from(ev.ts_ms).unwrap_or(i64::MAX))
    .bind(ev.gateway.as_str())
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

async fn accept_in(
    app: &App,
    tx: &mut AnyConnection,
    ev: &AlarmEvent,
    now: i64,
) -> Result<Outcome> {
    let inserted = insert_event(tx, ev, now).await?;
    if !inserted {
        let row = sqlx::query("SELECT warning_id FROM alarm_events WHERE event_id = $1")
            .bind(ev.event_id.as_str())
            .fetch_one(&mut *tx)
            .await?;
        let warning_id = opt_str(&row, "warning_id")?;
        return Ok(Outcome {
            event_id: ev.event_id.to_string(),
            warning_id,
            duplicate: true,
        });
    }
    let mut d = Deferred::default();
    let warning_id = apply(app, tx, &mut d, ev, now).await?;
    d.flush(tx).await?;
    if let Some(w) = &warning_id {
        sqlx::query("UPDATE alarm_events SET warning_id = $1 WHERE event_id = $2")
            .bind(w)
            .bind(ev.event_id.as_str())
            .execute(&mut *tx)
            .await?;
    }
    Ok(Outcome {
        event_id: ev.event_id.to_string(),
        warning_id,
        duplicate: false,
    })
}

/// The alarm identity: transitions of one alarm share it.
pub fn alarm_key(ev: &AlarmEvent) -> String {
    format!("{}/{}/{}", ev.site, ev.device, ev.rule)
}

async fn apply(
    app: &App,
    c: &mut AnyConnection,
    d: &mut Deferred,
    ev: &AlarmEvent,
    now: i64,
) -> Result<Option<String>> {
    let key = alarm_key(ev);
    let actor = format!("gateway:{}", ev.gateway);
    let open = sqlx::query(
        "SELECT id, state, level, max_level, acked_ms, ack_due_ms, notify_rank, region_id, venue_id \
         FROM warnings WHERE alarm_key = $1 AND state <> 'RESOLVED'",
    )
    .bind(&key)
    .fetch_optional(&mut *c)
    .await?;
    let Some(w) = open else {
        if ev.state == AlarmState::Cleared {
            // A clear for an alarm we have no open warning for: kept as an
            // event, nothing to do.
            return Ok(None);
        }
        return create(app, c, d, ev, &key, &actor, now).await.map(Some);
    };
    let id: String = w.try_get("id")?;
    let state: String = w.try_get("state")?;
    let old = Level::parse(&w.try_get::<String, _>("level")?).unwrap_or(Level::Blue);
    let max = Level::parse(&w.try_get::<String, _>("max_level")?).unwrap_or(old);
    let acked = w.try_get::<Option<i64>, _>("acked_ms")?.is_some();
    let due: Option<i64> = w.try_get("ack_due_ms")?;
    match ev.state {
        AlarmState::Cleared => {
            sqlx::query("UPDATE warnings SET clearable = 1, updated_ms = $1 WHERE id = $2")
                .bind(now)
                .bind(&id)
                .execute(&mut *c)
                .await?;
            d.audit(
                now,
                &actor,
                "warning_clear",
                &id,
                Some(&state),
                "CLEARABLE",
                &format!("alarm {} cleared at the source (event {}); the warning may be resolved once disposed", ev.rule, ev.event_id),
            );
        }
        _ => {
            let new = ev.level;
            let mut new_due = due;
            if !acked && new > old {
                let d = now + app.cfg.sla.ack_ms(new);
                new_due = Some(due.map_or(d, |x| x.min(d)));
            }
            if !acked && new > max {
                notify_escalation(app, c, d, ev, &w, new, now).await?;
            }
            sqlx::query(
                "UPDATE warnings SET level = $1, max_level = $2, clearable = 0, ack_due_ms = $3, \
                 updated_ms = $4 WHERE id = $5",
            )
            .bind(new.as_str())
            .bind(max.max(new).as_str())
            .bind(new_due)
            .bind(now)
            .bind(&id)
            .execute(&mut *c)
            .await?;
            d.audit(
                now,
                &actor,
                "warning_level",
                &id,
                Some(old.as_str()),
                new.as_str(),
                &format!(
                    "alarm {} {} (event {}, value {} vs {})",
                    ev.rule, ev.state, ev.event_id, ev.value, ev.threshold
                ),
            );
        }
    }
    Ok(Some(id))
}

async fn create(
    app: &App,
    c: &mut AnyConnection,
    d: &mut Deferred,
    ev: &AlarmEvent,
    key: &str,
    actor: &str,
    now: i64,
) -> Result<String> {
    let (venue, region) = venue_of(c, ev.site.as_str(), ev.device.as_str()).await?;
    let id = db::new_id();
    let due = now + app.cfg.sla.ack_ms(ev.level);
    sqlx::query(
        "INSERT INTO warnings (id, alarm_key, venue_id, region_id, site, device, kind, rule, level, \
         max_level, state, clearable, false_alarm, raised_ms, acked_ms, acked_by, resolved_ms, \
         notify_rank, ack_due_ms, updated_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 'RAISED', 0, NULL, $10, NULL, NULL, NULL, 0, $11, $10)",
    )
    .bind(&id)
    .bind(key)
    .bind(venue.clone())
    .bind(region.clone())
    .bind(ev.site.as_str())
    .bind(ev.device.as_str())
    .bind(ev.kind.to_string())
    .bind(ev.rule.as_str())
    .bind(ev.level.as_str())
    .bind(now)
    .bind(due)
    .execute(&mut *c)
    .await?;
    let place = venue
        .clone()
        .unwrap_or_else(|| format!("unregistered site {}", ev.site));
    d.audit(
        now,
        actor,
        "warning",
        &id,
        None,
        "RAISED",
        &format!(
            "{} alarm {} on {} at {place}: {} vs threshold {} (event {})",
            ev.level, ev.rule, ev.device, ev.value, ev.threshold, ev.event_id
        ),
    );
    let calls =
        warnings::call_list_channels_upto(app, c, ev.level, region.as_deref(), now, 1).await?;
    match calls.first() {
        Some(p) => {
            let msg = warnings::message(
                &id,
                ev.level,
                ev.rule.as_str(),
                ev.device.as_str(),
                &place,
                ev.value,
                ev.threshold,
            );
            notify::queue_deferred(
                app,
                c,
                d,
                now,
                &format!("warning:{id}:call:0"),
                "warning",
                &id,
                p,
                "call",
                &msg.0,
                &msg.1,
            )
            .await?;
        }
        None => {
            d.audit(
                now,
                "system:router",
                "warning_call",
                &id,
                None,
                "NOBODY",
                "no one on duty for this region and level; fix the roster",
            );
        }
    }
    if let Some(v) = &venue {
        warnings::check_key_risk(app, c, v, now).await?;
        warnings::check_recurrence(app, c, v, region.as_deref(), ev.rule.as_str(), &id, now)
            .await?;
    }
    Ok(id)
}

/// Tells the person currently called that the alarm got worse (once per
/// new highest level).
async fn notify_escalation(
    app: &App,
    c: &mut AnyConnection,
    d: &mut Deferred,
    ev: &AlarmEvent,
    w: &sqlx::any::AnyRow,
    level: Level,
    now: i64,
) -> Result<()> {
    let id: String = w.try_get("id")?;
    let id = id.as_str();
    let rank: i64 = w.try_get("notify_rank")?;
    let region = opt_str(w, "region_id")?;
    let place = opt_str(w, "venue_id")?.unwrap_or_else(|| format!("unregistered site {}", ev.site));
    let rank = usize::try_from(rank).unwrap_or(usize::MAX);
    let calls = warnings::call_list_channels_upto(
        app,
        c,
        level,
        region.as_deref(),
        now,
        rank.saturating_add(1),
    )
    .await?;
    if let Some(p) = calls.get(rank) {
        let (t, b) = warnings::message(
            id,
            level,
            ev.rule.as_str(),
            ev.device.as_str(),
            &place,
            ev.value,
            ev.threshold,
        );
        notify::queue_deferred(
            app,
            c,
            d,
            now,
            &format!("warning:{id}:level:{level}"),
            "warning",
            id,
            p,
            "update",
            &format!("[升级 escalated] {t}"),
            &b,
        )
        .await?;
    }
    Ok(())
}

/// The venue and region of a device (by binding) or of a site.
pub async fn venue_of(
    c: &mut AnyConnection,
    site: &str,
    device: &str,
) -> Result<(Option<String>, Option<String>)> {
    // One query: the device's binding first, else the first venue of the
    // site.
    let row = sqlx::query(
        "SELECT id, region_id FROM ( \
           SELECT v.id AS id, v.region_id AS region_id, 0 AS pri \
           FROM devices d JOIN venues v ON v.id = d.venue_id WHERE d.id = $1 \
           UNION ALL \
           SELECT id, region_id, 1 AS pri FROM venues WHERE site = $2) x \
         ORDER BY pri, id LIMIT 1",
    )
    .bind(device)
    .bind(site)
    .fetch_optional(&mut *c)
    .await?;
    match row {
        Some(r) => Ok((Some(r.try_get("id")?), Some(r.try_get("region_id")?))),
        None => Ok((None, None)),
    }
}
