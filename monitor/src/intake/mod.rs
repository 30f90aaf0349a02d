//! 风险预警: `POST /api/v1/alarms`. An alarm event (validated by
//! anquan-protocol) is stored once per (`site`, `event_id`); the
//! transitions of one alarm (site/device/rule) update one open warning
//! through the warning state machine ([`crate::warnings::machine`]):
//! `raised` opens it and starts the call ladder (the level's policy's
//! first group called at once, the 抄送 group informed),
//! `escalated`/`downgraded` change its level (a new highest level calls
//! that level's people, with the sooner deadline), `cleared` stops the
//! ladder and tells those reached. A redelivered event changes nothing and
//! gets the same answer.
//!
//! # Why the site is part of the idempotency key
//!
//! Event ids are predictable (`{gateway}/{site}/{device}/{rule}/{n}`) and a
//! gateway token is trusted only for its own sites (the API checks the
//! event's `site` against the token before it gets here). Keyed on the id
//! alone, one site's token could store another site's *next* id first and
//! that site's real alarm would then be answered "duplicate" and never
//! raised. Keyed on (site, id), an id can only be taken within a site the
//! sender may speak for. Within that namespace an id names one transition:
//! a second event under it that differs in device, kind, rule, level,
//! state, value, threshold or gateway is refused as [`Error::EventReused`]
//! (409, counted, logged), never answered as a silent duplicate. `ts_ms` is
//! not compared: a transition re-derived from a frame the broker
//! redelivered after a gateway crash may carry a later receive time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anquan_protocol::{AlarmEvent, AlarmState};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::db::{self, opt_str};
use crate::deferred::Deferred;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::warnings::ladder::Ladder;
use crate::warnings::machine::{self, Effect, Input, Phase};
use crate::{App, warnings};

mod groups;
pub mod memo;

use memo::{Memo, Open};

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

/// An event waiting in a lane: the event, when it was queued, and where
/// its answer goes.
type Job = (
    AlarmEvent,
    std::time::Instant,
    tokio::sync::oneshot::Sender<Result<Outcome>>,
);

/// Group commit: events that arrive while a transaction is being written
/// are taken together in the next one, and all are answered after it
/// commits. One fsync per batch instead of per event; a 2xx still means
/// stored.
///
/// Red first: red events wait in a lane of their own, and every batch
/// takes what waits there before anything else, so in a storm of lower
/// alarms (a power cut's offline events) a red alarm waits at most for the
/// batch being written, not for the queue in front of it.
#[derive(Debug, Clone)]
pub struct Batcher {
    tx: tokio::sync::mpsc::Sender<Job>,
    red: tokio::sync::mpsc::Sender<Job>,
    fast: Arc<AtomicBool>,
}

/// The queues [`Batcher::run`] drains: red events, and the rest.
#[derive(Debug)]
pub struct Lanes {
    red: tokio::sync::mpsc::Receiver<Job>,
    rest: tokio::sync::mpsc::Receiver<Job>,
}

/// The largest batch.
pub const MAX_BATCH: usize = 256;

impl Batcher {
    /// The queues; [`Batcher::run`] drains them.
    pub fn new() -> (Self, Lanes) {
        let (tx, rest) = tokio::sync::mpsc::channel(4 * MAX_BATCH);
        let (red_tx, red) = tokio::sync::mpsc::channel(MAX_BATCH);
        (
            Self {
                tx,
                red: red_tx,
                fast: Arc::new(AtomicBool::new(true)),
            },
            Lanes { red, rest },
        )
    }

    /// Turns the batch fast path (see [`Batcher::run`]) on or off; on by
    /// default. Off, every event runs in its own savepoint, as before: the
    /// benchmark measures both in one run.
    pub fn set_fast_path(&self, on: bool) {
        self.fast.store(on, Ordering::Relaxed);
    }

    /// Events waiting in the red lane and in the other.
    pub fn queued(&self) -> (usize, usize) {
        let waiting = |tx: &tokio::sync::mpsc::Sender<Job>| tx.max_capacity() - tx.capacity();
        (waiting(&self.red), waiting(&self.tx))
    }

    /// Takes one event (waits for its batch to commit). The worker counts
    /// it (`alarms_received_total`, `…_duplicate_total`, rejections after
    /// decoding, `intake_seconds` from queueing to commit).
    pub async fn accept(&self, ev: AlarmEvent) -> Result<Outcome> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lane = if ev.level == anquan_protocol::Level::Red {
            &self.red
        } else {
            &self.tx
        };
        lane.send((ev, std::time::Instant::now(), tx))
            .await
            .map_err(|_| Error::Unavailable("the intake worker stopped".into()))?;
        rx.await
            .map_err(|_| Error::Unavailable("the intake worker stopped".into()))?
    }

    /// The worker: runs until every sender is gone. A batch takes the red
    /// lane first, then fills up from the rest. It first goes through the
    /// fast path: one query finds the events already stored (answered as
    /// duplicates), the others are applied without a savepoint each. If
    /// anything in it fails (a race with another replica, a bad row), the
    /// whole transaction is rolled back and the batch is taken again event
    /// by event, each in its own savepoint, so one bad event cannot fail
    /// the others.
    pub async fn run(app: App, mut lanes: Lanes) {
        while let Some(batch) = lanes.next_batch().await {
            let results = batch_once(&app, &batch).await;
            for r in &results {
                if let Ok(Outcome {
                    warning_id: Some(w),
                    duplicate: false,
                    ..
                }) = r
                {
                    app.events.publish(Event::Warning(w.clone()));
                }
            }
            // Counted here, not by the request: an event stored after its
            // sender gave up waiting (a timeout in a storm) still counts.
            for ((_, queued, reply), r) in batch.into_iter().zip(results) {
                crate::metrics::count_intake(&app.metrics, &r, queued.elapsed());
                let _ = reply.send(r);
            }
        }
    }
}

impl Lanes {
    /// The next batch: waits for an event, then takes every red one
    /// waiting and fills up with the others, up to [`MAX_BATCH`]. None
    /// when both lanes are closed.
    async fn next_batch(&mut self) -> Option<Vec<Job>> {
        let first = tokio::select! {
            biased;
            Some(j) = self.red.recv() => j,
            Some(j) = self.rest.recv() => j,
            else => return None,
        };
        let mut batch = vec![first];
        for lane in [&mut self.red, &mut self.rest] {
            while batch.len() < MAX_BATCH {
                match lane.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
        }
        Some(batch)
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
    for (ev, _, _) in batch {
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
    let new: Vec<&AlarmEvent> = batch
        .iter()
        .map(|(ev, _, _)| ev)
        .filter(|ev| !seen.contains_key(&scoped_id(ev)))
        .collect();
    let mut m = Memo::batch(app, &mut tx, &new, now).await?;
    let mut d = Deferred::default();
    let mut out = Vec::with_capacity(batch.len());
    for (ev, _, _) in batch {
        if let Some(s) = seen.get(&scoped_id(ev)) {
            out.push(s.answer(ev));
            continue;
        }
        let warning_id = apply(app, &mut tx, &mut d, &mut m, &Signal::of(ev), now).await?;
        // Without ON CONFLICT: another replica storing the same event
        // meanwhile fails the batch, and the careful path answers it.
        d.event(ev, warning_id.as_deref(), now);
        seen.insert(scoped_id(ev), Stored::of(ev, warning_id.clone()));
        out.push(Ok(Outcome {
            event_id: ev.event_id.to_string(),
            warning_id,
            duplicate: false,
        }));
    }
    m.write(&mut d, now);
    d.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// An event's idempotency key: (site, event_id).
fn scoped_id(ev: &AlarmEvent) -> (String, String) {
    (ev.site.to_string(), ev.event_id.to_string())
}

/// An event as stored: what a later event under the same (site, id) must
/// match to be its redelivery.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    event_id: String,
    warning_id: Option<String>,
    device: String,
    kind: String,
    rule: String,
    level: String,
    state: String,
    value: f64,
    threshold: f64,
    gateway: String,
}

/// The columns [`Stored::from_row`] reads.
const STORED_COLS: &str =
    "site, event_id, warning_id, device, kind, rule, level, state, value, threshold, gateway";

impl Stored {
    fn of(ev: &AlarmEvent, warning_id: Option<String>) -> Self {
        Self {
            event_id: ev.event_id.to_string(),
            warning_id,
            device: ev.device.to_string(),
            kind: ev.kind.to_string(),
            rule: ev.rule.to_string(),
            level: ev.level.as_str().to_string(),
            state: ev.state.as_str().to_string(),
            value: f64::from(ev.value),
            threshold: f64::from(ev.threshold),
            gateway: ev.gateway.to_string(),
        }
    }

    fn from_row(r: &sqlx::any::AnyRow) -> Result<Self> {
        Ok(Self {
            event_id: r.try_get("event_id")?,
            warning_id: opt_str(r, "warning_id")?,
            device: r.try_get("device")?,
            kind: r.try_get("kind")?,
            rule: r.try_get("rule")?,
            level: r.try_get("level")?,
            state: r.try_get("state")?,
            value: r.try_get("value")?,
            threshold: r.try_get("threshold")?,
            gateway: r.try_get("gateway")?,
        })
    }

    /// The first field in which `ev` differs from this stored event, with
    /// both values.
    fn difference(&self, ev: &AlarmEvent) -> Option<(&'static str, String, String)> {
        let new = Self::of(ev, None);
        let text = [
            ("device", &self.device, &new.device),
            ("kind", &self.kind, &new.kind),
            ("rule", &self.rule, &new.rule),
            ("level", &self.level, &new.level),
            ("state", &self.state, &new.state),
            ("gateway", &self.gateway, &new.gateway),
        ];
        if let Some((f, a, b)) = text.into_iter().find(|(_, a, b)| a != b) {
            return Some((f, a.clone(), b.clone()));
        }
        let num = [
            ("value", self.value, new.value),
            ("threshold", self.threshold, new.threshold),
        ];
        num.into_iter()
            .find(|(_, a, b)| a.to_bits() != b.to_bits())
            .map(|(f, a, b)| (f, a.to_string(), b.to_string()))
    }

    /// The answer to `ev`, which has this event's (site, id): the stored
    /// answer when it is a redelivery, else [`Error::EventReused`].
    fn answer(&self, ev: &AlarmEvent) -> Result<Outcome> {
        match self.difference(ev) {
            None => Ok(Outcome {
                event_id: self.event_id.clone(),
                warning_id: self.warning_id.clone(),
                duplicate: true,
            }),
            Some((field, was, now)) => {
                tracing::warn!(site = %ev.site, event_id = %ev.event_id, field, was = %was, now = %now,
                    "intake: an event id of this site was reused for a different event; refused");
                Err(Error::EventReused(format!(
                    "event_id {:?} of site {:?} is already stored for another event ({field} was {was}, this one has {now}); \
                     an event id names one transition: a gateway whose state directory was reset must be given a new gateway id",
                    ev.event_id.as_str(),
                    ev.site.as_str()
                )))
            }
        }
    }
}

/// The events of `batch` already stored, by (site, id): one query.
async fn stored(c: &mut AnyConnection, batch: &[Job]) -> Result<HashMap<(String, String), Stored>> {
    // Padded to a power of two (repeating an id), so at most nine shapes
    // of this statement exist and each stays prepared. Selected by id and
    // then matched on the site here: ids are all but unique across sites.
    let n = batch.len().next_power_of_two();
    let sql = format!(
        "SELECT {STORED_COLS} FROM alarm_events WHERE event_id IN ({})",
        memo::marks(c, 1, n)
    );
    let mut q = sqlx::query(&sql);
    for i in 0..n {
        let (ev, _, _) = &batch[i.min(batch.len() - 1)];
        q = q.bind(ev.event_id.as_str());
    }
    let wanted: std::collections::HashSet<(String, String)> =
        batch.iter().map(|(ev, _, _)| scoped_id(ev)).collect();
    let mut out = HashMap::new();
    for r in q.fetch_all(&mut *c).await? {
        let key: (String, String) = (r.try_get("site")?, r.try_get("event_id")?);
        if wanted.contains(&key) {
            out.insert(key, Stored::from_row(&r)?);
        }
    }
    Ok(out)
}

/// Stores the event row unless its (site, id) is present; returns whether
/// it was new.
async fn insert_event(c: &mut AnyConnection, ev: &AlarmEvent, now: i64) -> Result<bool> {
    let n = sqlx::query(
        "INSERT INTO alarm_events (event_id, warning_id, site, device, kind, rule, level, state, \
         value, threshold, ts_ms, gateway, received_ms) \
         VALUES ($1, NULL, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
         ON CONFLICT (site, event_id) DO NOTHING",
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
        let row = sqlx::query(&format!(
            "SELECT {STORED_COLS} FROM alarm_events WHERE site = $1 AND event_id = $2"
        ))
        .bind(ev.site.as_str())
        .bind(ev.event_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        return Stored::from_row(&row)?.answer(ev);
    }
    let mut d = Deferred::default();
    let mut m = Memo::empty();
    let warning_id = apply(app, tx, &mut d, &mut m, &Signal::of(ev), now).await?;
    m.write(&mut d, now);
    d.flush(tx).await?;
    if let Some(w) = &warning_id {
        sqlx::query("UPDATE alarm_events SET warning_id = $1 WHERE site = $2 AND event_id = $3")
            .bind(w)
            .bind(ev.site.as_str())
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

/// What the warning logic reads of an alarm transition: an event a gateway
/// sent, or a condition the monitor judges itself (a gateway gone silent,
/// `crate::liveness`), which has no device kind of the wire contract.
#[derive(Debug, Clone)]
pub struct Signal {
    /// Site.
    pub site: String,
    /// Device (or the gateway, for a liveness signal).
    pub device: String,
    /// Device kind (`gas`, …, or `gateway`).
    pub kind: String,
    /// Rule id.
    pub rule: String,
    /// Level.
    pub level: anquan_protocol::Level,
    /// Raised, escalated, downgraded or cleared.
    pub state: AlarmState,
    /// The value judged.
    pub value: f32,
    /// The threshold crossed.
    pub threshold: f32,
    /// The transition's id, for the audit.
    pub event_id: String,
    /// Who judged it (`gateway:<id>` in the audit).
    pub gateway: String,
}

impl Signal {
    /// An event from a gateway.
    pub fn of(ev: &AlarmEvent) -> Self {
        Self {
            site: ev.site.to_string(),
            device: ev.device.to_string(),
            kind: ev.kind.to_string(),
            rule: ev.rule.to_string(),
            level: ev.level,
            state: ev.state,
            value: ev.value,
            threshold: ev.threshold,
            event_id: ev.event_id.to_string(),
            gateway: ev.gateway.to_string(),
        }
    }

    fn key(&self) -> String {
        format!("{}/{}/{}", self.site, self.device, self.rule)
    }
}

/// Applies a signal the monitor judged itself, in its own transaction:
/// the same warning logic as an event from a gateway, without an alarm
/// event row. Returns the warning it opened or changed.
pub async fn apply_signal(app: &App, sig: &Signal) -> Result<Option<String>> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let mut d = Deferred::default();
    let mut m = Memo::empty();
    let w = apply(app, &mut tx, &mut d, &mut m, sig, now).await?;
    m.write(&mut d, now);
    d.flush(&mut tx).await?;
    tx.commit().await?;
    if let Some(w) = &w {
        app.events.publish(Event::Warning(w.clone()));
    }
    Ok(w)
}

/// Applies a new event to its alarm's warning; returns the warning.
async fn apply(
    app: &App,
    c: &mut AnyConnection,
    d: &mut Deferred,
    m: &mut Memo,
    ev: &Signal,
    now: i64,
) -> Result<Option<String>> {
    let key = ev.key();
    let actor = format!("gateway:{}", ev.gateway);
    if app.cfg.correlation.enabled
        && ev.kind != crate::liveness::KIND
        && let groups::Grouped::Into(id) = groups::correlate(app, c, d, m, ev, &key, now).await?
    {
        return Ok(Some(id));
    }
    let Some(mut w) = m.open(c, &key).await? else {
        if ev.state == AlarmState::Cleared {
            // A clear for an alarm we have no open warning for: kept as an
            // event, nothing to do.
            return Ok(None);
        }
        return create(app, c, d, m, ev, &key, &actor, now).await.map(Some);
    };
    let id = w.id.clone();
    // The follow-up notices carry the latest reading.
    w.value = f64::from(ev.value);
    w.threshold = f64::from(ev.threshold);
    let input = Input::Alarm {
        state: ev.state,
        level: ev.level,
    };
    let from = w.w.phase;
    let (next, fx) = machine::step(&w.w, &input, w.rules(app))
        .map_err(|e| Error::Conflict(format!("warning {id}: {e}")))?;
    w.w = next;
    d.audit(
        now,
        &actor,
        "warning_event",
        &id,
        None,
        ev.state.as_str(),
        &format!(
            "alarm {} {} at {} (event {}, value {} vs {})",
            ev.rule, ev.state, ev.level, ev.event_id, ev.value, ev.threshold
        ),
    );
    if fx.iter().any(|e| matches!(e, Effect::Ladder(_))) {
        m.ensure_ctx(app, c, &w, now).await?;
    }
    warnings::apply(app, &mut m.ctx, d, &mut w, from, fx, &actor, now);
    m.save(w);
    Ok(Some(id))
}

#[allow(clippy::too_many_arguments)]
async fn create(
    app: &App,
    c: &mut AnyConnection,
    d: &mut Deferred,
    m: &mut Memo,
    ev: &Signal,
    key: &str,
    actor: &str,
    now: i64,
) -> Result<String> {
    let (venue, region) = m.place(c, &ev.site, &ev.device).await?;
    let id = db::new_id();
    let (state, fx) = machine::open(ev.level);
    let mut w = Open {
        id: id.clone(),
        alarm_key: key.to_string(),
        venue_id: venue.clone(),
        region_id: region.clone(),
        site: ev.site.to_string(),
        device: ev.device.to_string(),
        kind: ev.kind.clone(),
        rule: ev.rule.to_string(),
        w: state,
        ladder: Ladder::NEW,
        value: f64::from(ev.value),
        threshold: f64::from(ev.threshold),
        raised_ms: now,
        acked_ms: None,
        acked_by: None,
        acked_via: None,
        false_alarm: None,
        resolved_ms: None,
        new: true,
    };
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
    if let Some(wait) = groups::settle_of(app, ev) {
        m.ctx.settle.insert(id.clone(), now + wait);
    }
    m.ensure_ctx(app, c, &w, now).await?;
    warnings::apply(app, &mut m.ctx, d, &mut w, Phase::Raised, fx, actor, now);
    m.save(w);
    Ok(id)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn job(n: usize, level: &str) -> (Job, tokio::sync::oneshot::Receiver<Result<Outcome>>) {
        let body = serde_json::json!({
            "v": 1, "event_id": format!("gw1/s1/gas-0001/gas.lel/{n}"), "site": "s1",
            "device": format!("gas-{n:04}"), "kind": "gas", "rule": "gas.lel", "level": level,
            "state": "raised", "value": 60.0, "threshold": 50.0, "ts_ms": 1_800_000_000_000_u64, "gateway": "gw1",
        });
        let ev = decode(body.to_string().as_bytes()).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        ((ev, std::time::Instant::now(), tx), rx)
    }

    /// A red event queued behind a full batch and more of the others is in
    /// the very next batch, before them.
    #[tokio::test]
    async fn red_events_go_in_the_next_batch_first() {
        let (b, mut lanes) = Batcher::new();
        let mut keep = Vec::new();
        for n in 0..MAX_BATCH + 10 {
            let (j, rx) = job(n, "yellow");
            b.tx.send(j).await.unwrap();
            keep.push(rx);
        }
        let (j, rx) = job(9_999, "red");
        b.red.send(j).await.unwrap();
        keep.push(rx);
        let first = lanes.next_batch().await.unwrap();
        assert_eq!(first.len(), MAX_BATCH);
        assert_eq!(first[0].0.level, anquan_protocol::Level::Red);
        assert!(
            first[1..]
                .iter()
                .all(|(e, _, _)| e.level != anquan_protocol::Level::Red)
        );
        assert_eq!(b.queued(), (0, 11), "the rest wait");
        let second = lanes.next_batch().await.unwrap();
        assert_eq!(second.len(), 11, "the rest, in order");
        drop(b);
        drop((first, second));
        assert!(lanes.next_batch().await.is_none(), "both lanes closed");
    }
}
