//! The queries behind the pages: read-only views over the same tables the
//! API writes, as typed rows for the templates and the dashboard's JSON.

use std::collections::{HashMap, HashSet};

use anquan_protocol::Level;
use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use crate::db::{Columns, opt_str, row};
use crate::error::Result;
use crate::messages::{self, Lang};
use crate::registry::Region;
use crate::rows::{
    self, AuditRow, DashboardExtra, DashboardRow, DashboardWarning, DeviceState, LevelCounts,
};
use crate::warnings;

/// The `SELECT` of a [`DashboardRow`] (the venue, device and acknowledger's
/// names joined in).
const WARNING_SELECT: &str = "SELECT w.id AS id, w.region_id AS region_id, w.venue_id AS venue_id, v.name AS venue_name, w.site AS site, \
     w.device AS device, w.kind AS kind, w.rule AS rule, w.level AS level, w.max_level AS max_level, \
     w.state AS state, w.clearable AS clearable, w.raised_ms AS raised_ms, w.acked_by AS acked_by, \
     w.value AS value, w.threshold AS threshold, w.ack_due_ms AS ack_due_ms, w.ladder_step AS ladder_step, \
     d.name AS device_name, d.location AS location, p.name AS acked_by_name \
     FROM warnings w LEFT JOIN venues v ON v.id = w.venue_id LEFT JOIN devices d ON d.id = w.device \
     LEFT JOIN people p ON p.id = w.acked_by";

/// Red first, then orange, yellow, blue; newest first within a level.
const RED_FIRST: &str = "CASE w.level WHEN 'red' THEN 4 WHEN 'orange' THEN 3 WHEN 'yellow' THEN 2 ELSE 1 END DESC, \
     w.raised_ms DESC, w.id";

/// Adds what the dashboard shows beside each row: the reading's name and
/// unit, now, who is being called, the ladder.
async fn enrich(
    c: &mut AnyConnection,
    rows: Vec<DashboardRow>,
    lang: Lang,
    now: i64,
) -> Result<Vec<DashboardWarning>> {
    let ids: Vec<String> = rows.iter().map(|w| w.id.clone()).collect();
    let mut ladders = warnings::rungs_of(c, &ids).await?;
    let blind = blind_sites(c).await?;
    let offline = offline_devices(c).await?;
    let mut held: HashMap<String, String> = HashMap::new();
    for r in sqlx::query("SELECT warning_id, window_id FROM maintenance_holds")
        .fetch_all(&mut *c)
        .await?
    {
        let why = if opt_str(&r, "window_id")?.is_some() {
            "maintenance"
        } else {
            "storm"
        };
        held.insert(r.try_get("warning_id")?, why.to_string());
    }
    let mut members: HashMap<String, Vec<crate::correlation::GroupMember>> = HashMap::new();
    for w in rows
        .iter()
        .filter(|w| w.kind == crate::correlation::GROUP_KIND)
    {
        let mut m = crate::correlation::members(c, &w.id).await?;
        m.retain(|m| m.left_ms.is_none());
        m.truncate(50);
        members.insert(w.id.clone(), m);
    }
    Ok(rows
        .into_iter()
        .map(|w| {
            let ladder = ladders.remove(&w.id).unwrap_or_default();
            let waiting = matches!(w.state.as_str(), "RAISED" | "NOTIFIED")
                && w.clearable != 1
                && w.ack_due_ms.is_some();
            let calling = if waiting {
                ladder
                    .iter()
                    .filter(|r| r.purpose == "call" && r.step == w.ladder_step)
                    .map(|r| {
                        if r.name.is_empty() {
                            r.person_id.clone()
                        } else {
                            r.name.clone()
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
            // An offline or gateway warning is about the silence itself.
            let about_silence = w.rule.contains("offline") || w.kind == crate::liveness::KIND;
            let stale = !about_silence
                && w.clearable != 1
                && (offline.contains(&w.device) || blind.contains(&w.site));
            let more = DashboardExtra {
                reading: messages::reading(lang, &w.rule),
                unit: messages::unit(&w.kind, &w.rule),
                now_ms: now,
                calling,
                ladder,
                held: held.remove(&w.id),
                stale,
                members: members.remove(&w.id).unwrap_or_default(),
            };
            DashboardWarning { row: w, more }
        })
        .collect())
}

/// What a signed-in user sees: the region of their registry person and
/// every region under it (a county sees its towns, the city everything in
/// it); the admin sees all. Warnings of unregistered sites (no region) are
/// routed to the cities, so the city and the admin see those.
#[derive(Debug, Clone)]
pub struct Scope {
    regions: Option<HashSet<String>>,
    unplaced: bool,
}

impl Scope {
    /// Everything.
    pub fn all() -> Self {
        Self {
            regions: None,
            unplaced: true,
        }
    }

    /// The scope of session `s`.
    pub async fn of(c: &mut AnyConnection, s: &crate::web::auth::Session) -> Result<Self> {
        if s.role == "admin" {
            return Ok(Self::all());
        }
        let Some(root) = &s.region_id else {
            return Ok(Self {
                regions: Some(HashSet::new()),
                unplaced: false,
            });
        };
        Self::under(c, std::slice::from_ref(root), s.role == "city").await
    }

    /// Regions `roots` and every region under them; `unplaced`: also what
    /// has no region.
    pub async fn under(c: &mut AnyConnection, roots: &[String], unplaced: bool) -> Result<Self> {
        let rows = sqlx::query("SELECT id, parent_id FROM regions")
            .fetch_all(&mut *c)
            .await?;
        let mut edges: Vec<(String, Option<String>)> = Vec::with_capacity(rows.len());
        for r in &rows {
            edges.push((r.try_get("id")?, opt_str(r, "parent_id")?));
        }
        let mut set: HashSet<String> = roots.iter().cloned().collect();
        // Breadth-first down the tree (regions form a tree; the set stops
        // a cycle from looping).
        let mut frontier = roots.to_vec();
        while let Some(p) = frontier.pop() {
            for (id, parent) in &edges {
                if parent.as_deref() == Some(p.as_str()) && set.insert(id.clone()) {
                    frontier.push(id.clone());
                }
            }
        }
        Ok(Self {
            regions: Some(set),
            unplaced,
        })
    }

    /// Whether something in `region` is visible.
    pub fn sees(&self, region: Option<&str>) -> bool {
        match (&self.regions, region) {
            (None, _) => true,
            (Some(set), Some(r)) => set.contains(r),
            (Some(_), None) => self.unplaced,
        }
    }

    /// Whether the row's region is visible.
    pub fn sees_row(&self, row: &impl InRegion) -> bool {
        self.sees(row.region())
    }
}

/// A row placed in a region (or in none: an unregistered site's warning).
pub trait InRegion {
    /// Its region.
    fn region(&self) -> Option<&str>;
}

/// [`InRegion`] for rows with a nullable `region_id`.
macro_rules! in_region {
    ($($t:ty),*) => {$(
        impl InRegion for $t {
            fn region(&self) -> Option<&str> {
                self.region_id.as_deref()
            }
        }
    )*};
}

in_region!(
    rows::Warning,
    rows::Task,
    rows::Hazard,
    rows::DashboardRow,
    LedgerRow,
    TaskRow,
    ReminderRow
);

impl InRegion for rows::SnapshotRow {
    fn region(&self) -> Option<&str> {
        Some(&self.region_id)
    }
}

/// One warning for the dashboard.
pub async fn warning_row(
    c: &mut AnyConnection,
    id: &str,
    lang: Lang,
    now: i64,
) -> Result<Option<DashboardWarning>> {
    let row = sqlx::query_as(&format!("{WARNING_SELECT} WHERE w.id = $1"))
        .bind(id)
        .fetch_optional(&mut *c)
        .await?;
    Ok(enrich(c, Vec::from_iter(row), lang, now).await?.pop())
}

/// Open warnings (not resolved), red first (level, then newest).
pub async fn active_warnings(
    c: &mut AnyConnection,
    lang: Lang,
    now: i64,
) -> Result<Vec<DashboardWarning>> {
    let rows = sqlx::query_as(&format!(
        "{WARNING_SELECT} WHERE w.state <> 'RESOLVED' ORDER BY {RED_FIRST} LIMIT 500"
    ))
    .fetch_all(&mut *c)
    .await?;
    enrich(c, rows, lang, now).await
}

/// Open warnings by level, zero-filled.
pub fn counts_by_level(ws: &[DashboardWarning]) -> LevelCounts {
    let mut n = LevelCounts::default();
    for w in ws {
        match Level::parse(&w.row.level) {
            Some(Level::Red) => n.red += 1,
            Some(Level::Orange) => n.orange += 1,
            Some(Level::Yellow) => n.yellow += 1,
            Some(Level::Blue) => n.blue += 1,
            None => {}
        }
    }
    n
}

/// A venue with its risk color, devices and map position.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VenueView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Sector.
    pub sector: String,
    /// Region.
    pub region_id: String,
    /// Dynamic color (`green`, `blue`, `yellow`, `orange`, `red`).
    #[schema(value_type = String)]
    pub color: &'static str,
    /// Open hazards.
    pub open_hazards: i64,
    /// Active warnings.
    pub active_warnings: i64,
    /// Devices.
    pub devices: Vec<DeviceState>,
    /// Devices the monitor believes offline.
    pub offline: usize,
    /// Latitude (WGS 84), if known.
    #[schema(required = true)]
    pub lat: Option<f64>,
    /// Longitude, if known.
    #[schema(required = true)]
    pub lon: Option<f64>,
    /// Where its marker goes on the configured map tiles: `lat`/`lon` in
    /// `web.map_datum` (see [`map_positions`]); WGS-84 until then.
    #[schema(required = true)]
    pub map_lat: Option<f64>,
    /// Marker longitude in `web.map_datum`.
    #[schema(required = true)]
    pub map_lon: Option<f64>,
    /// Map position (SVG units), when the venue has coordinates.
    #[schema(required = true)]
    pub x: Option<f64>,
    /// Map position.
    #[schema(required = true)]
    pub y: Option<f64>,
}

/// Map drawing area (SVG user units).
pub const MAP_W: f64 = 800.0;
/// Map drawing area height.
pub const MAP_H: f64 = 460.0;

/// Every venue with color and devices, in four queries whatever the number
/// of venues (the dashboard re-reads this after each pushed change). The
/// color is [`warnings::color`] over the same rows `venue_status` reads (a
/// test compares the two). A device is offline, as far as the monitor
/// knows, while it has an open warning of an `offline` rule that was not
/// cleared at the source.
pub async fn venues(c: &mut AnyConnection, scope: &Scope) -> Result<Vec<VenueView>> {
    use std::collections::HashMap;
    let rows = sqlx::query(
        "SELECT id, name, sector, region_id, lat, lon, site FROM venues ORDER BY region_id, id",
    )
    .fetch_all(&mut *c)
    .await?;
    // Active warnings per venue: count and highest level.
    let mut active: HashMap<String, (i64, Option<Level>)> = HashMap::new();
    let offline = offline_devices(c).await?;
    for r in sqlx::query(
        "SELECT venue_id, level FROM warnings WHERE state <> 'RESOLVED' AND clearable = 0",
    )
    .fetch_all(&mut *c)
    .await?
    {
        if let Some(v) = opt_str(&r, "venue_id")? {
            let e = active.entry(v).or_default();
            e.0 += 1;
            if let Some(l) = Level::parse(&r.try_get::<String, _>("level")?) {
                e.1 = Some(e.1.map_or(l, |m| m.max(l)));
            }
        }
    }
    // Open hazards per venue: (major, other).
    let mut open: HashMap<String, (i64, i64)> = HashMap::new();
    for r in sqlx::query(
        "SELECT venue_id, severity FROM hazards WHERE state NOT IN ('CLOSED', 'ARCHIVED')",
    )
    .fetch_all(&mut *c)
    .await?
    {
        let e = open.entry(r.try_get("venue_id")?).or_default();
        if opt_str(&r, "severity")?.as_deref() == Some("major") {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let mut devices: HashMap<String, Vec<DeviceState>> = HashMap::new();
    for d in sqlx::query("SELECT id, venue_id, kind, name, registration FROM devices ORDER BY id")
        .fetch_all(&mut *c)
        .await?
    {
        let id: String = d.try_get("id")?;
        let online = !offline.contains(&id);
        devices
            .entry(d.try_get("venue_id")?)
            .or_default()
            .push(DeviceState {
                id,
                kind: d.try_get("kind")?,
                name: opt_str(&d, "name")?,
                registration: opt_str(&d, "registration")?,
                online,
                no_data: false,
            });
    }
    // Sites whose gateway is silent: their venues are blind, never green.
    let blind = blind_sites(c).await?;
    let mut out = Vec::with_capacity(rows.len());
    let mut coords = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: String = r.try_get("id")?;
        let region: String = r.try_get("region_id")?;
        if !scope.sees(Some(&region)) {
            continue;
        }
        let (n_active, max) = active.get(&id).copied().unwrap_or_default();
        let (major, other) = open.get(&id).copied().unwrap_or_default();
        let no_data = opt_str(r, "site")?.is_some_and(|s| blind.contains(&s));
        let mut devs = devices.remove(&id).unwrap_or_default();
        for d in devs.iter_mut().filter(|_| no_data) {
            d.no_data = true;
        }
        let off = devs.iter().filter(|d| !d.online).count();
        let (lat, lon) = (
            r.try_get::<Option<f64>, _>("lat")?,
            r.try_get::<Option<f64>, _>("lon")?,
        );
        coords.push((lat, lon));
        out.push(VenueView {
            color: match warnings::color(max, major, other) {
                "green" if no_data => "grey",
                c => c,
            },
            id,
            name: r.try_get("name")?,
            sector: r.try_get("sector")?,
            region_id: region,
            open_hazards: major + other,
            active_warnings: n_active,
            devices: devs,
            offline: off,
            lat,
            lon,
            map_lat: lat,
            map_lon: lon,
            x: None,
            y: None,
        });
    }
    place(&mut out, &coords);
    Ok(out)
}

/// Puts each venue's marker position into the tiles' datum.
pub fn map_positions(vs: &mut [VenueView], datum: crate::geo::Datum) {
    for v in vs {
        if let (Some(lat), Some(lon)) = (v.lat, v.lon) {
            let (mlat, mlon) = crate::geo::from_wgs84(datum, lat, lon);
            (v.map_lat, v.map_lon) = (Some(mlat), Some(mlon));
        }
    }
}

/// Sites whose gateway the monitor judged silent (`crate::liveness`).
async fn blind_sites(c: &mut AnyConnection) -> Result<HashSet<String>> {
    Ok(sqlx::query(
        "SELECT s.site FROM gateway_sites s JOIN gateway_heartbeats g ON g.gateway = s.gateway \
         WHERE g.silent_since_ms IS NOT NULL",
    )
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>("site"))
    .collect::<std::result::Result<_, _>>()?)
}

/// Devices the monitor believes offline: an open, uncleared warning of an
/// offline rule, or an offline alarm still in an open group (a site's
/// power loss gathers them into one warning).
async fn offline_devices(c: &mut AnyConnection) -> Result<HashSet<String>> {
    Ok(sqlx::query(
        "SELECT device FROM warnings WHERE state <> 'RESOLVED' AND clearable = 0 AND rule LIKE '%offline%' \
         UNION SELECT m.device AS device FROM warning_members m JOIN warnings g ON g.id = m.group_id \
         WHERE m.left_ms IS NULL AND g.state <> 'RESOLVED' AND m.rule LIKE '%offline%'",
    )
    .fetch_all(&mut *c)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>("device"))
    .collect::<std::result::Result<_, _>>()?)
}

/// Projects coordinates into the map box (equirectangular over the
/// venues' own bounding box, with a margin); venues without coordinates
/// stay unplaced and are listed beside the map.
fn place(vs: &mut [VenueView], coords: &[(Option<f64>, Option<f64>)]) {
    let pts: Vec<(f64, f64)> = coords
        .iter()
        .filter_map(|&(la, lo)| Some((la?, lo?)))
        .collect();
    if pts.is_empty() {
        return;
    }
    let (mut lat0, mut lat1, mut lon0, mut lon1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(la, lo) in &pts {
        lat0 = lat0.min(la);
        lat1 = lat1.max(la);
        lon0 = lon0.min(lo);
        lon1 = lon1.max(lo);
    }
    let span_lat = (lat1 - lat0).max(1e-3);
    let span_lon = (lon1 - lon0).max(1e-3);
    let m = 40.0;
    for (v, &(la, lo)) in vs.iter_mut().zip(coords) {
        if let (Some(la), Some(lo)) = (la, lo) {
            v.x = Some(m + (lo - lon0) / span_lon * (MAP_W - 2.0 * m));
            v.y = Some(m + (lat1 - la) / span_lat * (MAP_H - 2.0 * m));
        }
    }
}

/// Ledger filter and sort.
#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
#[serde(default)]
pub struct LedgerQuery {
    /// State, or empty for all; `open` for every state but CLOSED/ARCHIVED.
    pub state: String,
    /// `general`, `major` or empty.
    pub severity: String,
    /// Venue id or empty.
    pub venue: String,
    /// Text in title or category.
    pub q: String,
    /// `created`, `due`, `state`, `severity`, `venue`.
    pub sort: String,
    /// `asc` or `desc`.
    pub dir: String,
}

row! {
    /// A row of the 隐患台账 (the venue's name joined in).
    #[derive(Debug, Serialize)]
    pub struct LedgerRow {
        pub id: String,
        pub region_id: Option<String>,
        pub venue_id: String,
        pub venue_name: Option<String>,
        pub category: String,
        pub title: String,
        pub source: String,
        pub severity: Option<String>,
        pub state: String,
        pub due_ms: Option<i64>,
        pub created_ms: i64,
        pub closed_ms: Option<i64>,
        pub listed_level: Option<String>,
        pub owner_id: Option<String>,
    }
}

/// The ledger rows.
pub async fn hazards(c: &mut AnyConnection, q: &LedgerQuery) -> Result<Vec<LedgerRow>> {
    let order = match q.sort.as_str() {
        "due" => "h.due_ms",
        "state" => "h.state",
        "severity" => "h.severity",
        "venue" => "v.name",
        _ => "h.created_ms",
    };
    let dir = if q.dir == "asc" { "ASC" } else { "DESC" };
    Ok(sqlx::query_as(&format!(
        "SELECT h.id AS id, h.region_id AS region_id, h.venue_id AS venue_id, v.name AS venue_name, h.category AS category, h.title AS title, \
         h.source AS source, h.severity AS severity, h.state AS state, h.due_ms AS due_ms, h.created_ms AS created_ms, \
         h.closed_ms AS closed_ms, h.listed_level AS listed_level, h.owner_id AS owner_id \
         FROM hazards h LEFT JOIN venues v ON v.id = h.venue_id \
         WHERE ($1 = '' OR h.state = $1 OR ($1 = 'open' AND h.state NOT IN ('CLOSED', 'ARCHIVED'))) \
         AND ($2 = '' OR h.severity = $2) AND ($3 = '' OR h.venue_id = $3) \
         AND ($4 = '' OR h.title LIKE $5 OR h.category LIKE $5) \
         ORDER BY {order} {dir}, h.id LIMIT 2000"
    ))
    .bind(&q.state)
    .bind(&q.severity)
    .bind(&q.venue)
    .bind(&q.q)
    .bind(format!("%{}%", q.q))
    .fetch_all(&mut *c)
    .await?)
}

/// CSV of ledger rows (RFC 4180 quoting; a UTF-8 BOM so spreadsheet
/// programs read the Chinese text right).
pub fn ledger_csv(rows: &[impl Serialize]) -> String {
    // The ledger's columns; the region only scopes the rows.
    let cols: Vec<&str> = LedgerRow::COLS
        .iter()
        .copied()
        .filter(|c| *c != "region_id")
        .collect();
    let cell = |v: &Value| {
        let s = match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        // Cells starting with a formula character are prefixed, so a
        // spreadsheet does not run them (CSV injection).
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s
        };
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s
        }
    };
    let mut out = String::from("\u{feff}");
    out.push_str(&cols.join(","));
    out.push_str("\r\n");
    for r in rows {
        let r = serde_json::to_value(r).unwrap_or_default();
        let line: Vec<String> = cols.iter().map(|c| cell(&r[*c])).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The audit trail of one entity, oldest first.
pub async fn history(c: &mut AnyConnection, entity_id: &str) -> Result<Vec<AuditRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {} FROM audit WHERE entity_id = $1 ORDER BY id LIMIT 1000",
        AuditRow::select()
    ))
    .bind(entity_id)
    .fetch_all(&mut *c)
    .await?)
}

row! {
    /// An open task as the tasks page lists it.
    #[derive(Debug, Serialize)]
    pub struct TaskRow {
        pub id: String,
        pub region_id: Option<String>,
        pub kind: String,
        pub title: String,
        pub venue_id: Option<String>,
        pub venue_name: Option<String>,
        pub assignee_id: Option<String>,
        pub state: String,
        pub due_ms: i64,
        pub created_ms: i64,
    }
}

/// Tasks a role sees: the enterprise its own (assigned to its person),
/// everyone else all open tasks; newest deadline last.
pub async fn tasks(
    c: &mut AnyConnection,
    person: Option<&str>,
    own_only: bool,
) -> Result<Vec<TaskRow>> {
    Ok(sqlx::query_as(
        "SELECT t.id AS id, t.region_id AS region_id, t.kind AS kind, t.title AS title, t.venue_id AS venue_id, v.name AS venue_name, \
         t.assignee_id AS assignee_id, t.state AS state, t.due_ms AS due_ms, t.created_ms AS created_ms \
         FROM tasks t LEFT JOIN venues v ON v.id = t.venue_id \
         WHERE t.state <> 'DONE' AND ($1 = '' OR t.assignee_id = $1) ORDER BY t.due_ms, t.id LIMIT 1000",
    )
    .bind(if own_only { person.unwrap_or("-") } else { "" })
    .fetch_all(&mut *c)
    .await?)
}

row! {
    /// A reminder step with its task's or hazard's title and region.
    #[derive(Debug, Serialize)]
    pub struct ReminderRow {
        pub subject: String,
        pub subject_id: String,
        pub step: String,
        pub fired_ms: i64,
        pub title: Option<String>,
        pub region_id: Option<String>,
    }
}

/// Recent reminder steps (事项催办), newest first, with the title and
/// region of their task or hazard (for scoping).
pub async fn reminders(c: &mut AnyConnection) -> Result<Vec<ReminderRow>> {
    Ok(sqlx::query_as(
        "SELECT r.subject AS subject, r.subject_id AS subject_id, r.step AS step, r.fired_ms AS fired_ms, \
         COALESCE(t.title, h.title) AS title, COALESCE(t.region_id, h.region_id) AS region_id \
         FROM reminders r \
         LEFT JOIN tasks t ON r.subject = 'task' AND t.id = r.subject_id \
         LEFT JOIN hazards h ON r.subject = 'hazard' AND h.id = r.subject_id \
         ORDER BY r.fired_ms DESC LIMIT 200",
    )
    .fetch_all(&mut *c)
    .await?)
}

/// Regions for the report picker.
pub async fn regions(c: &mut AnyConnection) -> Result<Vec<Region>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {} FROM regions ORDER BY id",
        Region::select()
    ))
    .fetch_all(&mut *c)
    .await?)
}

/// One bar of the device chart: a CST day and its alarm events by level.
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    /// `MM-DD`.
    pub day: String,
    /// Events that day.
    pub total: i64,
    /// Highest level that day (`none` without events).
    pub top: &'static str,
    /// SVG x.
    pub x: f64,
    /// SVG height.
    pub h: f64,
}

/// Alarm events of `device` per CST day over the `days` days up to `now`.
pub async fn device_history(
    c: &mut AnyConnection,
    device: &str,
    now: i64,
    days: i64,
) -> Result<(Vec<Bar>, i64)> {
    const DAY: i64 = 86_400_000;
    const CST: i64 = 8 * 3_600_000;
    let first = (now + CST).div_euclid(DAY) - days + 1;
    let rows = sqlx::query(
        "SELECT level, ts_ms FROM alarm_events WHERE device = $1 AND ts_ms >= $2 ORDER BY ts_ms",
    )
    .bind(device)
    .bind(first * DAY - CST)
    .fetch_all(&mut *c)
    .await?;
    let mut per: Vec<(i64, Option<Level>)> = vec![(0, None); days.max(1) as usize];
    for r in &rows {
        let ts: i64 = r.try_get("ts_ms")?;
        let i = (ts + CST).div_euclid(DAY) - first;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| per.get_mut(i)) {
            slot.0 += 1;
            if let Some(l) = Level::parse(&r.try_get::<String, _>("level")?) {
                slot.1 = Some(slot.1.map_or(l, |m| m.max(l)));
            }
        }
    }
    let max = per.iter().map(|p| p.0).max().unwrap_or(0).max(1);
    let w = 600.0 / per.len() as f64;
    let bars = per
        .iter()
        .enumerate()
        .map(|(i, &(n, top))| {
            let day = chrono::DateTime::from_timestamp_millis((first + i as i64) * DAY)
                .map(|d| d.format("%m-%d").to_string())
                .unwrap_or_default();
            Bar {
                day,
                total: n,
                top: top.map_or("none", Level::as_str),
                x: 40.0 + i as f64 * w,
                h: n as f64 / max as f64 * 160.0,
            }
        })
        .collect();
    Ok((bars, rows.len() as i64))
}

/// The venue, kind and region of a device, if registered.
pub async fn device_venue(
    c: &mut AnyConnection,
    device: &str,
) -> Result<Option<(String, String, String)>> {
    let r = sqlx::query("SELECT d.venue_id AS venue_id, d.kind AS kind, v.region_id AS region_id FROM devices d JOIN venues v ON v.id = d.venue_id WHERE d.id = $1")
        .bind(device)
        .fetch_optional(&mut *c)
        .await?;
    r.map(|r| {
        Ok((
            r.try_get("venue_id")?,
            r.try_get("kind")?,
            r.try_get("region_id")?,
        ))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        use serde_json::json;
        let rows = vec![json!({"id": "h1", "title": "a,\"b\"", "category": "=cmd()", "due_ms": 5})];
        let csv = ledger_csv(&rows);
        assert!(csv.starts_with('\u{feff}'));
        assert!(csv.contains("\"a,\"\"b\"\"\""), "{csv}");
        assert!(csv.contains(",'=cmd(),"), "{csv}");
        assert!(csv.contains(",5,"), "{csv}");
    }
}
