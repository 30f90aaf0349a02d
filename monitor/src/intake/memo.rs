//! What the alarm rules read while an intake batch is taken: the open
//! warning of each alarm, the venue of each device, the call lists, the
//! alarm counts behind the 重点风控 and recurrence rules, the hazards those
//! rules look at.
//!
//! On the fast path ([`Memo::batch`]) these are fetched with one query per
//! kind for the whole batch. With SQLite each statement is a round trip to
//! the connection's worker thread, and those round trips were most of the
//! intake's time: per event the fast path now makes almost none. On the
//! careful path ([`Memo::empty`], one per event in its own savepoint) each
//! is fetched with the same queries when first needed. Either way a value
//! is then kept current in memory as the events change it, and the
//! warnings they open or change are written once, with the other rows,
//! just before the commit ([`Memo::write`], [`Deferred::flush`]). A lookup
//! the prefetch did not cover still goes to the database, so the prefetch
//! only saves time and never decides an answer.

use std::collections::{HashMap, HashSet};

use anquan_protocol::{AlarmEvent, AlarmState, Level};
use sqlx::{AnyConnection, Row};

use crate::App;
use crate::db::opt_str;
use crate::deferred::Deferred;
use crate::error::Result;
use crate::registry::OnCall;

/// A warning that is not RESOLVED, as the intake rules see it.
#[derive(Debug, Clone)]
pub struct Open {
    /// The warning.
    pub id: String,
    /// RAISED, NOTIFIED, ACKED or DISPOSING.
    pub state: String,
    /// The alarm's current level.
    pub level: Level,
    /// The highest level it reached (a new highest one is notified).
    pub max_level: Level,
    /// Someone acknowledged it (no SLA any more).
    pub acked: bool,
    /// When the acknowledgement is due (the SLA of the highest level).
    pub ack_due_ms: Option<i64>,
    /// Who on the call list is called now (0 = the first).
    pub notify_rank: i64,
    /// The venue's region (none for an unregistered site).
    pub region_id: Option<String>,
    /// The venue (none for an unregistered site).
    pub venue_id: Option<String>,
    /// The source cleared the alarm.
    pub clearable: bool,
}

/// A venue and its region (none for an unregistered site).
pub type Place = (Option<String>, Option<String>);

/// The hazards of one venue and category that the recurrence rule reads.
#[derive(Debug, Clone, Default)]
pub struct HazardsOf {
    /// Hazards not CLOSED or ARCHIVED.
    pub open: i64,
    /// The newest CLOSED or ARCHIVED hazard: id and state.
    pub latest_closed: Option<(String, String)>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Memo {
    open: HashMap<String, Option<Open>>,
    dirty: Vec<String>,
    places: HashMap<(String, String), Place>,
    calls: HashMap<(Level, Option<String>, usize), Vec<OnCall>>,
    /// Venues whose counts below are known (`since` of the batch).
    counted: HashSet<String>,
    venue_alarms: HashMap<String, i64>,
    rule_alarms: HashMap<(String, String), i64>,
    proposed: HashMap<String, bool>,
    hazards: HashMap<(String, String), HazardsOf>,
}

/// Placeholders for `n` values bound in order from the `from`th: `$from, …`,
/// or anonymous `?` on SQLite, which looks each `$name` up among the
/// statement's earlier ones (quadratic in their number). The value lists
/// are padded to a power of two (see [`padded`]), so few shapes of each
/// statement exist and each stays prepared.
pub(super) fn marks(c: &AnyConnection, from: usize, n: usize) -> String {
    let sqlite = is_sqlite(c);
    (from..from + n)
        .map(|i| {
            if sqlite {
                "?".to_string()
            } else {
                format!("${i}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `values` padded to a power of two, the last one repeated.
fn padded(values: &[String]) -> Vec<&str> {
    let n = values.len().next_power_of_two();
    (0..n)
        .filter_map(|i| values.get(i.min(values.len().saturating_sub(1))))
        .map(String::as_str)
        .collect()
}

fn is_sqlite(c: &AnyConnection) -> bool {
    c.backend_name().eq_ignore_ascii_case("sqlite")
}

fn open_from(r: &sqlx::any::AnyRow) -> Result<Open> {
    let level = Level::parse(&r.try_get::<String, _>("level")?).unwrap_or(Level::Blue);
    Ok(Open {
        id: r.try_get("id")?,
        state: r.try_get("state")?,
        level,
        max_level: Level::parse(&r.try_get::<String, _>("max_level")?).unwrap_or(level),
        acked: r.try_get::<Option<i64>, _>("acked_ms")?.is_some(),
        ack_due_ms: r.try_get("ack_due_ms")?,
        notify_rank: r.try_get("notify_rank")?,
        region_id: opt_str(r, "region_id")?,
        venue_id: opt_str(r, "venue_id")?,
        clearable: r.try_get::<i64, _>("clearable")? != 0,
    })
}

const OPEN_COLS: &str = "id, alarm_key, state, level, max_level, acked_ms, ack_due_ms, notify_rank, \
                         region_id, venue_id, clearable";

impl Memo {
    /// Nothing fetched yet: each lookup queries when first needed (the
    /// careful path, one event at a time).
    pub fn empty() -> Self {
        Self::default()
    }

    /// The fast path's memo, prefetched for the new events of a batch.
    pub async fn batch(
        app: &App,
        c: &mut AnyConnection,
        events: &[&AlarmEvent],
        now: i64,
    ) -> Result<Self> {
        let mut m = Self::empty();
        if events.is_empty() {
            return Ok(m);
        }
        // Open warnings of every alarm in the batch.
        let keyed: Vec<(String, &AlarmEvent)> =
            events.iter().map(|e| (super::alarm_key(e), *e)).collect();
        let mut keys: Vec<String> = keyed.iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        m.fetch_open(c, &keys).await?;
        // Places of the alarms that may open a warning.
        let opening: Vec<&AlarmEvent> = keyed
            .iter()
            .filter(|(k, e)| e.state != AlarmState::Cleared && matches!(m.open.get(k), Some(None)))
            .map(|(_, e)| *e)
            .collect();
        if opening.is_empty() {
            return Ok(m);
        }
        m.prefetch_places(c, &opening).await?;
        let mut venues: Vec<String> = m.places.values().filter_map(|p| p.0.clone()).collect();
        venues.sort();
        venues.dedup();
        if venues.is_empty() {
            return Ok(m);
        }
        m.prefetch_counts(app, c, &venues, now).await?;
        Ok(m)
    }

    /// The open warnings of the alarms `keys` (locked on PostgreSQL until
    /// the commit); `None` for those without one.
    async fn fetch_open(&mut self, c: &mut AnyConnection, keys: &[String]) -> Result<()> {
        let keys_p = padded(keys);
        let sql = format!(
            "SELECT {OPEN_COLS} FROM warnings WHERE alarm_key IN ({}) AND state <> 'RESOLVED'{}",
            marks(c, 1, keys_p.len()),
            if is_sqlite(c) { "" } else { " FOR UPDATE" }
        );
        let mut q = sqlx::query(&sql);
        for k in &keys_p {
            q = q.bind(*k);
        }
        for k in keys {
            self.open.insert(k.clone(), None);
        }
        for r in q.fetch_all(&mut *c).await? {
            let key: String = r.try_get("alarm_key")?;
            self.open.insert(key, Some(open_from(&r)?));
        }
        Ok(())
    }

    async fn prefetch_places(&mut self, c: &mut AnyConnection, evs: &[&AlarmEvent]) -> Result<()> {
        let mut devices: Vec<String> = evs.iter().map(|e| e.device.to_string()).collect();
        let mut sites: Vec<String> = evs.iter().map(|e| e.site.to_string()).collect();
        devices.sort();
        devices.dedup();
        sites.sort();
        sites.dedup();
        let (dp, sp) = (padded(&devices), padded(&sites));
        let sql = format!(
            "SELECT 0 AS pri, d.id AS k, v.id AS id, v.region_id AS region_id \
             FROM devices d JOIN venues v ON v.id = d.venue_id WHERE d.id IN ({}) \
             UNION ALL \
             SELECT 1 AS pri, site AS k, id, region_id FROM venues WHERE site IN ({})",
            marks(c, 1, dp.len()),
            marks(c, 1 + dp.len(), sp.len())
        );
        let mut q = sqlx::query(&sql);
        for v in dp.iter().chain(sp.iter()) {
            q = q.bind(*v);
        }
        let mut by_device: HashMap<String, (String, String)> = HashMap::new();
        let mut by_site: HashMap<String, (String, String)> = HashMap::new();
        for r in q.fetch_all(&mut *c).await? {
            let pri: i64 = r.try_get("pri")?;
            let k: String = r.try_get("k")?;
            let id: String = r.try_get("id")?;
            let region: String = r.try_get("region_id")?;
            let map = if pri == 0 {
                &mut by_device
            } else {
                &mut by_site
            };
            // The first venue by id, as `venue_of` orders them.
            match map.get(&k) {
                Some((have, _)) if *have <= id => {}
                _ => {
                    map.insert(k, (id, region));
                }
            }
        }
        for e in evs {
            let place = by_device
                .get(e.device.as_str())
                .or_else(|| by_site.get(e.site.as_str()))
                .map_or((None, None), |(v, r)| (Some(v.clone()), Some(r.clone())));
            self.places
                .insert((e.site.to_string(), e.device.to_string()), place);
        }
        Ok(())
    }

    async fn prefetch_counts(
        &mut self,
        app: &App,
        c: &mut AnyConnection,
        venues: &[String],
        now: i64,
    ) -> Result<()> {
        let since = now - (app.cfg.key_risk.window_days as i64) * 86_400_000;
        let vp = padded(venues);
        let list = marks(c, 2, vp.len());
        let sql = format!(
            "SELECT venue_id, rule, COUNT(*) AS n FROM warnings \
             WHERE raised_ms >= {} AND venue_id IN ({list}) GROUP BY venue_id, rule",
            marks(c, 1, 1)
        );
        let mut q = sqlx::query(&sql).bind(since);
        for v in &vp {
            q = q.bind(*v);
        }
        for r in q.fetch_all(&mut *c).await? {
            let v: String = r.try_get("venue_id")?;
            let rule: String = r.try_get("rule")?;
            let n: i64 = r.try_get("n")?;
            *self.venue_alarms.entry(v.clone()).or_default() += n;
            self.rule_alarms.insert((v, rule), n);
        }
        let list = marks(c, 1, vp.len());
        let sql = format!("SELECT venue_id FROM key_risk_proposals WHERE venue_id IN ({list})");
        let mut q = sqlx::query(&sql);
        for v in &vp {
            q = q.bind(*v);
        }
        for v in venues {
            self.proposed.insert(v.clone(), false);
        }
        for r in q.fetch_all(&mut *c).await? {
            self.proposed.insert(r.try_get("venue_id")?, true);
        }
        let sql = format!(
            "SELECT venue_id, category, id, state, created_ms FROM hazards WHERE venue_id IN ({list}) \
             ORDER BY created_ms DESC"
        );
        let mut q = sqlx::query(&sql);
        for v in &vp {
            q = q.bind(*v);
        }
        let mut hazards: HashMap<(String, String), HazardsOf> = HashMap::new();
        for r in q.fetch_all(&mut *c).await? {
            let key = (r.try_get("venue_id")?, r.try_get("category")?);
            let state: String = r.try_get("state")?;
            let h = hazards.entry(key).or_default();
            if state == "CLOSED" || state == "ARCHIVED" {
                if h.latest_closed.is_none() {
                    h.latest_closed = Some((r.try_get("id")?, state));
                }
            } else {
                h.open += 1;
            }
        }
        self.hazards.extend(hazards);
        self.counted.extend(venues.iter().cloned());
        Ok(())
    }

    /// The open warning of the alarm `key`.
    pub async fn open(&mut self, c: &mut AnyConnection, key: &str) -> Result<Option<Open>> {
        if !self.open.contains_key(key) {
            self.fetch_open(c, &[key.to_string()]).await?;
        }
        Ok(self.open.get(key).cloned().flatten())
    }

    /// Keeps the changed `level`, `max_level`, `clearable` and
    /// `ack_due_ms` of an open warning, written by [`Memo::write`].
    pub fn save(&mut self, key: &str, w: Open) {
        if !self.dirty.iter().any(|k| k == key) {
            self.dirty.push(key.to_string());
        }
        self.open.insert(key.to_string(), Some(w));
    }

    /// A new warning (`RAISED`), written with the other rows of `d`.
    pub fn insert(&mut self, d: &mut Deferred, key: &str, ev: &AlarmEvent, w: Open, now: i64) {
        d.warning(key, ev, &w, now);
        self.open.insert(key.to_string(), Some(w));
    }

    /// Hands the warnings changed since to `d` (as UPDATEs after its
    /// INSERTs).
    pub fn write(&mut self, d: &mut Deferred, now: i64) {
        for key in std::mem::take(&mut self.dirty) {
            if let Some(Some(w)) = self.open.get(&key) {
                d.warning_update(w, now);
            }
        }
    }

    /// The venue and region of a device (by binding) or of a site.
    pub async fn place(
        &mut self,
        c: &mut AnyConnection,
        site: &str,
        device: &str,
    ) -> Result<Place> {
        let k = (site.to_string(), device.to_string());
        if let Some(p) = self.places.get(&k) {
            return Ok(p.clone());
        }
        let p = super::venue_of(c, site, device).await?;
        self.places.insert(k, p.clone());
        Ok(p)
    }

    /// The first `n` of the call list at `level` in `region`.
    pub async fn calls(
        &mut self,
        app: &App,
        c: &mut AnyConnection,
        level: Level,
        region: Option<&str>,
        now: i64,
        n: usize,
    ) -> Result<Vec<OnCall>> {
        let k = (level, region.map(str::to_string), n);
        if let Some(v) = self.calls.get(&k) {
            return Ok(v.clone());
        }
        let roles = app.cfg.roles_for(level);
        let v = crate::registry::call_list_channels_upto(c, &roles, region, now, n).await?;
        self.calls.insert(k, v.clone());
        Ok(v)
    }

    /// Fetches the counts, proposal and hazards of `venue` unless known.
    /// Warnings opened here are written only at the end, so the counts
    /// fetched never include them, and [`Memo::count_opened`] adds each.
    async fn ensure_counted(
        &mut self,
        app: &App,
        c: &mut AnyConnection,
        venue: &str,
        now: i64,
    ) -> Result<()> {
        if !self.counted.contains(venue) {
            self.prefetch_counts(app, c, &[venue.to_string()], now)
                .await?;
        }
        Ok(())
    }

    /// Counts a warning just opened at `venue` for `rule` and returns the
    /// warnings of the venue, and of the venue and rule, in the window
    /// (this one included).
    pub async fn count_opened(
        &mut self,
        app: &App,
        c: &mut AnyConnection,
        venue: &str,
        rule: &str,
        now: i64,
    ) -> Result<(i64, i64)> {
        self.ensure_counted(app, c, venue, now).await?;
        let v = self.venue_alarms.entry(venue.to_string()).or_default();
        *v += 1;
        let v = *v;
        let r = self
            .rule_alarms
            .entry((venue.to_string(), rule.to_string()))
            .or_default();
        *r += 1;
        Ok((v, *r))
    }

    /// Whether `venue` has a 重点风控 proposal (in any state).
    pub async fn proposed(
        &mut self,
        app: &App,
        c: &mut AnyConnection,
        venue: &str,
        now: i64,
    ) -> Result<bool> {
        self.ensure_counted(app, c, venue, now).await?;
        Ok(self.proposed.get(venue).copied().unwrap_or(false))
    }

    /// Notes that `venue` now has a proposal.
    pub fn set_proposed(&mut self, venue: &str) {
        self.proposed.insert(venue.to_string(), true);
    }

    /// The hazards of `venue` in `category` that recurrence reads.
    pub async fn hazards(
        &mut self,
        app: &App,
        c: &mut AnyConnection,
        venue: &str,
        category: &str,
        now: i64,
    ) -> Result<HazardsOf> {
        self.ensure_counted(app, c, venue, now).await?;
        let k = (venue.to_string(), category.to_string());
        Ok(self.hazards.get(&k).cloned().unwrap_or_default())
    }

    /// Notes that a hazard of `venue` in `category` is open now (created or
    /// reopened).
    pub fn hazard_opened(&mut self, venue: &str, category: &str) {
        self.hazards
            .entry((venue.to_string(), category.to_string()))
            .or_default()
            .open += 1;
    }
}

/// The UPDATE of an open warning's changeable columns: level, max_level,
/// clearable, ack_due_ms, updated_ms, id; its placeholders `$(n + 1)` on,
/// or anonymous `?` for SQLite's multi-statement batch (see
/// [`crate::deferred`]).
pub fn update_sql(anonymous: bool, n: usize) -> String {
    if anonymous {
        return "UPDATE warnings SET level = ?, max_level = ?, clearable = ?, ack_due_ms = ?, \
                updated_ms = ? WHERE id = ?"
            .into();
    }
    format!(
        "UPDATE warnings SET level = ${}, max_level = ${}, clearable = ${}, ack_due_ms = ${}, \
         updated_ms = ${} WHERE id = ${}",
        n + 1,
        n + 2,
        n + 3,
        n + 4,
        n + 5,
        n + 6
    )
}
