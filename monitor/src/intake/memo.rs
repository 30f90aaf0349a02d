//! What the alarm rules read while an intake batch is taken: the open
//! warning of each alarm, the venue of each device, the call lists. (The
//! 重点风控 and recurrence rules count only warnings a person confirmed
//! real: they run at the confirmation, `crate::recurrence`, not here.)
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

use std::collections::HashMap;

use anquan_protocol::{AlarmEvent, AlarmState};
use sqlx::{AnyConnection, Row};

use crate::App;
use crate::deferred::Deferred;
use crate::error::Result;

pub use crate::warnings::Record as Open;

/// A venue and its region (none for an unregistered site).
pub type Place = (Option<String>, Option<String>);

/// See the module documentation.
#[derive(Debug, Default)]
pub struct Memo {
    /// Alarm key → its open warning's id (none: no open warning).
    open: HashMap<String, Option<String>>,
    /// Every warning read or written, by id.
    rows: HashMap<String, Open>,
    /// Warnings to write, in order of first change.
    dirty: Vec<String>,
    places: HashMap<(String, String), Place>,
    /// Alarm key → its membership of an open group (none: not a member).
    members: HashMap<String, Option<Member>>,
    /// Memberships to write, by (group, alarm key), in order of change.
    dirty_members: Vec<((String, String), Member)>,
    /// Scopes (`site:<id>` / `venue:<id>`) whose open warnings were read.
    scopes: std::collections::HashSet<String>,
    /// People, contacts, histories, grants.
    pub ctx: crate::warnings::Ctx,
}

/// An alarm's place in a group warning ([`crate::correlation`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    /// The group warning.
    pub group_id: String,
    /// Device.
    pub device: String,
    /// Rule.
    pub rule: String,
    /// Its level now.
    pub level: anquan_protocol::Level,
    /// When it joined.
    pub joined_ms: i64,
    /// When and why it left (recovered, broke out).
    pub left: Option<(i64, &'static str)>,
}

/// Placeholders for `n` values bound in order from the `from`th: `$from, …`,
/// or anonymous `?` on SQLite, which looks each `$name` up among the
/// statement's earlier ones (quadratic in their number). The value lists
/// are padded to a power of two (see [`padded`]), so few shapes of each
/// statement exist and each stays prepared.
pub(crate) fn marks(c: &AnyConnection, from: usize, n: usize) -> String {
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
        if app.cfg.correlation.enabled {
            m.fetch_members(c, &keys).await?;
        }
        // Places of the alarms that may open a warning.
        let opening: Vec<&AlarmEvent> = keyed
            .iter()
            .filter(|(k, e)| e.state != AlarmState::Cleared && matches!(m.open.get(k), Some(None)))
            .map(|(_, e)| *e)
            .collect();
        if !opening.is_empty() {
            m.prefetch_places(c, &opening).await?;
        }
        // The people, rota and contacts of every venue in the batch, the
        // ladder histories and grants of its open warnings.
        let mut venues: Vec<String> = m.places.values().filter_map(|p| p.0.clone()).collect();
        venues.extend(m.rows.values().filter_map(|r| r.venue_id.clone()));
        venues.sort();
        venues.dedup();
        let mut devices: Vec<String> = events.iter().map(|e| e.device.to_string()).collect();
        devices.sort();
        devices.dedup();
        let ids: Vec<String> = m.rows.keys().cloned().collect();
        m.ctx
            .dir
            .load(c, &venues, &devices, &app.policies.people(), &[], now)
            .await?;
        for (w, g) in crate::warnings::history_of(c, &ids).await? {
            m.ctx.history.entry(w).or_default().given.push(g);
        }
        for g in crate::ack::of_warnings(c, &ids).await? {
            m.ctx
                .grants
                .entry(g.warning_id.clone())
                .or_default()
                .push(g);
        }
        m.ctx.loaded.extend(ids);
        Ok(m)
    }

    /// The open warnings of the alarms `keys` (locked on PostgreSQL until
    /// the commit); `None` for those without one.
    async fn fetch_open(&mut self, c: &mut AnyConnection, keys: &[String]) -> Result<()> {
        let keys_p = padded(keys);
        let sql = format!(
            "SELECT {} FROM warnings WHERE alarm_key IN ({}) AND state <> 'RESOLVED'{}",
            crate::warnings::RECORD_COLS,
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
            let rec = Open::from_row(&r)?;
            self.open
                .insert(rec.alarm_key.clone(), Some(rec.id.clone()));
            self.rows.insert(rec.id.clone(), rec);
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

    /// The open warning of the alarm `key`.
    pub async fn open(&mut self, c: &mut AnyConnection, key: &str) -> Result<Option<Open>> {
        if !self.open.contains_key(key) {
            self.fetch_open(c, &[key.to_string()]).await?;
        }
        Ok(self
            .open
            .get(key)
            .cloned()
            .flatten()
            .and_then(|id| self.rows.get(&id).cloned()))
    }

    /// Keeps a warning's new state (written by [`Memo::write`]); a
    /// resolved one no longer holds its alarm.
    pub fn save(&mut self, w: Open) {
        if !self.dirty.contains(&w.id) {
            self.dirty.push(w.id.clone());
        }
        if w.w.phase == crate::warnings::machine::Phase::Resolved {
            if self.open.get(&w.alarm_key) == Some(&Some(w.id.clone())) {
                self.open.insert(w.alarm_key.clone(), None);
            }
        } else {
            self.open.insert(w.alarm_key.clone(), Some(w.id.clone()));
        }
        self.rows.insert(w.id.clone(), w);
    }

    /// Makes sure [`Memo::ctx`] holds what applying effects to `w` reads
    /// (on the careful path, each is read when first needed).
    pub async fn ensure_ctx(
        &mut self,
        app: &App,
        c: &mut AnyConnection,
        w: &Open,
        now: i64,
    ) -> Result<()> {
        let venue_known = w
            .venue_id
            .as_ref()
            .is_none_or(|v| self.ctx.dir.has_venue(v));
        if venue_known && self.ctx.dir.has_device(&w.device) && self.ctx.loaded.contains(&w.id) {
            return Ok(());
        }
        self.ctx.load(app, c, &[w], now).await
    }

    /// Hands the warnings changed since to `d` (updates, then inserts),
    /// and the memberships.
    pub fn write(&mut self, d: &mut Deferred, now: i64) {
        for ((_, key), m) in std::mem::take(&mut self.dirty_members) {
            d.member(&key, &m);
        }
        let dirty = std::mem::take(&mut self.dirty);
        for id in dirty
            .iter()
            .filter(|id| self.rows.get(*id).is_some_and(|r| !r.new))
        {
            if let Some(r) = self.rows.get(id) {
                d.warning(r, now);
            }
        }
        for id in &dirty {
            if let Some(r) = self.rows.get_mut(id).filter(|r| r.new) {
                d.warning(r, now);
                // Written: a later change in this transaction updates it.
                r.new = false;
            }
        }
    }

    /// The active memberships of the alarms `keys` in open groups.
    async fn fetch_members(&mut self, c: &mut AnyConnection, keys: &[String]) -> Result<()> {
        let keys_p = padded(keys);
        let sql = format!(
            "SELECT m.group_id AS group_id, m.alarm_key AS alarm_key, m.device AS device, m.rule AS rule, \
             m.level AS level, m.joined_ms AS joined_ms FROM warning_members m \
             JOIN warnings w ON w.id = m.group_id \
             WHERE m.alarm_key IN ({}) AND m.left_ms IS NULL AND w.state <> 'RESOLVED'",
            marks(c, 1, keys_p.len())
        );
        let mut q = sqlx::query(&sql);
        for k in &keys_p {
            q = q.bind(*k);
        }
        for k in keys {
            self.members.insert(k.clone(), None);
        }
        for r in q.fetch_all(&mut *c).await? {
            let level: String = r.try_get("level")?;
            self.members.insert(
                r.try_get("alarm_key")?,
                Some(Member {
                    group_id: r.try_get("group_id")?,
                    device: r.try_get("device")?,
                    rule: r.try_get("rule")?,
                    level: anquan_protocol::Level::parse(&level)
                        .unwrap_or(anquan_protocol::Level::Blue),
                    joined_ms: r.try_get("joined_ms")?,
                    left: None,
                }),
            );
        }
        Ok(())
    }

    /// The active membership of alarm `key` in an open group.
    pub async fn member(&mut self, c: &mut AnyConnection, key: &str) -> Result<Option<Member>> {
        if !self.members.contains_key(key) {
            self.fetch_members(c, &[key.to_string()]).await?;
        }
        Ok(self
            .members
            .get(key)
            .cloned()
            .flatten()
            .filter(|m| m.left.is_none()))
    }

    /// Records a membership's new state (written by [`Memo::write`]); one
    /// that left is no longer found by [`Memo::member`].
    pub fn set_member(&mut self, key: &str, m: Member) {
        let k = (m.group_id.clone(), key.to_string());
        match self.dirty_members.iter_mut().find(|(have, _)| *have == k) {
            Some((_, pending)) => *pending = m.clone(),
            None => self.dirty_members.push((k, m.clone())),
        }
        self.members.insert(key.to_string(), Some(m));
    }

    /// A warning by id (an open group a member names), from memory or the
    /// database (locked on PostgreSQL); none when it is resolved.
    pub async fn by_id(&mut self, c: &mut AnyConnection, id: &str) -> Result<Option<Open>> {
        if let Some(r) = self.rows.get(id) {
            return Ok((r.w.phase != crate::warnings::machine::Phase::Resolved).then(|| r.clone()));
        }
        let sql = format!(
            "SELECT {} FROM warnings WHERE id = $1 AND state <> 'RESOLVED'{}",
            crate::warnings::RECORD_COLS,
            if is_sqlite(c) { "" } else { " FOR UPDATE" }
        );
        let Some(r) = sqlx::query(&sql).bind(id).fetch_optional(&mut *c).await? else {
            return Ok(None);
        };
        let rec = Open::from_row(&r)?;
        self.open
            .entry(rec.alarm_key.clone())
            .or_insert_with(|| Some(rec.id.clone()));
        self.rows.insert(rec.id.clone(), rec.clone());
        Ok(Some(rec))
    }

    /// The open warnings (not groups, waiting for an answer, not cleared)
    /// raised at or after `since` in a site (`by_site`) or venue `scope`:
    /// the candidates of a group. Read from the database once per scope
    /// (locked on PostgreSQL), then from memory, which holds the ones this
    /// batch opened.
    pub async fn open_in(
        &mut self,
        c: &mut AnyConnection,
        by_site: bool,
        scope: &str,
        since: i64,
    ) -> Result<Vec<Open>> {
        let tag = format!("{}:{scope}", if by_site { "site" } else { "venue" });
        if self.scopes.insert(tag) {
            let sql = format!(
                "SELECT {} FROM warnings WHERE {} = $1 AND state IN ('RAISED', 'NOTIFIED') AND clearable = 0 \
                 AND kind <> $2 AND raised_ms >= $3{}",
                crate::warnings::RECORD_COLS,
                if by_site { "site" } else { "venue_id" },
                if is_sqlite(c) { "" } else { " FOR UPDATE" }
            );
            let rows = sqlx::query(&sql)
                .bind(scope)
                .bind(crate::correlation::GROUP_KIND)
                .bind(since)
                .fetch_all(&mut *c)
                .await?;
            for r in rows {
                let rec = Open::from_row(&r)?;
                if self.rows.contains_key(&rec.id) {
                    continue;
                }
                self.open
                    .entry(rec.alarm_key.clone())
                    .or_insert_with(|| Some(rec.id.clone()));
                self.rows.insert(rec.id.clone(), rec);
            }
        }
        let mut out: Vec<Open> = self
            .rows
            .values()
            .filter(|r| {
                r.kind != crate::correlation::GROUP_KIND
                    && r.w.phase.awaits_ack()
                    && !r.w.cleared
                    && r.raised_ms >= since
                    && if by_site {
                        r.site == scope
                    } else {
                        r.venue_id.as_deref() == Some(scope)
                    }
            })
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.raised_ms, &a.id).cmp(&(b.raised_ms, &b.id)));
        Ok(out)
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
}
