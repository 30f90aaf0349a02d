//! 报告生成: the daily, weekly, half-monthly (15-day node), monthly,
//! quarterly and yearly (annual) report per region (the region and everything under
//! it) with the spec's indicators (§4) and the alarm KPIs, as JSON, CSV and
//! HTML. Months are China Standard Time (UTC+8) calendar months.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use chrono::{Datelike, FixedOffset, NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::db::opt_str;
use crate::error::{Error, Result};

/// `num / den`, none when `den` is 0.
pub fn ratio(num: i64, den: i64) -> Option<f64> {
    (den != 0).then(|| num as f64 / den as f64)
}

/// 事故下降率 = (prior − current) ÷ prior. Negative = a rise ("同比上升").
pub fn decline_rate(prior: i64, current: i64) -> Option<f64> {
    ratio(prior - current, prior)
}

/// The prior-year value implied by "current, 同比上升 `rise_pct`%".
pub fn implied_prior(current: f64, rise_pct: f64) -> f64 {
    current / (1.0 + rise_pct / 100.0)
}

/// `[start, end)` of month `ym` (`2026-11`) in Unix ms, CST.
pub fn month_bounds(ym: &str) -> Result<(i64, i64)> {
    let bad = || Error::Invalid(format!("month: {ym:?} is not YYYY-MM"));
    let (y, m) = ym.split_once('-').ok_or_else(bad)?;
    let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .ok_or_else(bad)?;
    let tz = FixedOffset::east_opt(8 * 3600).ok_or_else(bad)?;
    let ms = |d: NaiveDate| -> Result<i64> {
        let dt = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
        Ok(tz
            .from_local_datetime(&dt)
            .single()
            .ok_or_else(bad)?
            .timestamp_millis())
    };
    Ok((ms(first)?, ms(next)?))
}

/// The same month one year earlier.
pub fn prior_year(ym: &str) -> Result<String> {
    let (s, _) = month_bounds(ym)?;
    let d = chrono::DateTime::from_timestamp_millis(s + 8 * 3_600_000)
        .ok_or_else(|| Error::Invalid("month".into()))?;
    Ok(format!("{:04}-{:02}", d.year() - 1, d.month()))
}

/// The title of a report of `period` (`daily` … `yearly`), Chinese and
/// English.
pub fn title_of(period: &str) -> (&'static str, &'static str) {
    match period {
        "daily" => ("日报", "Daily report"),
        "weekly" => ("周报", "Weekly report"),
        "half-monthly" => ("半月报", "Half-monthly report"),
        "quarterly" => ("季度报告", "Quarterly report"),
        "yearly" => ("年度报告", "Annual report"),
        _ => ("月度报告", "Monthly report"),
    }
}

/// The monthly report.
#[derive(Debug, Clone, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct Monthly {
    /// Region (with its subregions).
    pub region_id: String,
    /// Only the venues of this sector, when given.
    pub sector: Option<String>,
    /// `daily`, `weekly`, `half-monthly`, `monthly`, `quarterly`, `yearly`.
    pub period: String,
    /// The period's label (`2026-11`, `2026-W49`, `2026-11 16-end`,
    /// `2026-Q4`, `2026`, …).
    pub month: String,
    /// Registered venues.
    pub venues: i64,
    /// Venues inspected at least once (done inspection-type tasks).
    pub venues_inspected: i64,
    /// 检查覆盖率.
    pub inspection_coverage: Option<f64>,
    /// Inspections done.
    pub inspections: i64,
    /// Inspections that found ≥ 1 hazard.
    pub inspections_with_hazard: i64,
    /// 发现隐患率.
    pub hazard_discovery_rate: Option<f64>,
    /// Hazards due this month.
    pub hazards_due: i64,
    /// … of which closed by their due time.
    pub hazards_closed_on_time: i64,
    /// 隐患整改率.
    pub rectification_rate: Option<f64>,
    /// Hazards found this month.
    pub hazards_found: i64,
    /// … with a penalty case.
    pub hazards_penalized: i64,
    /// 执法处罚率.
    pub penalty_rate: Option<f64>,
    /// Accidents this month / same month last year.
    // A pair, stated as a two-item array: tools that read the document
    // (schemathesis among them) do not all take 3.1's `prefixItems`.
    #[schema(value_type = Vec<i64>, min_items = 2, max_items = 2)]
    pub accidents: (i64, i64),
    /// Deaths this month / same month last year.
    // A pair, stated as a two-item array: tools that read the document
    // (schemathesis among them) do not all take 3.1's `prefixItems`.
    #[schema(value_type = Vec<i64>, min_items = 2, max_items = 2)]
    pub deaths: (i64, i64),
    /// 事故下降率 (accidents).
    pub accident_decline: Option<f64>,
    /// 事故下降率 (deaths).
    pub death_decline: Option<f64>,
    /// Open 重大 hazards at the end of the month (target 0).
    pub open_major_hazards: i64,
    /// Warnings raised, by `kind/level`.
    pub alarms_by_kind_level: BTreeMap<String, i64>,
    /// Warnings raised.
    pub alarms: i64,
    /// Mean time to acknowledge, s.
    pub mtta_s: Option<f64>,
    /// Mean time to resolve, s.
    pub mttr_s: Option<f64>,
    /// Share of warnings that became hazards.
    pub alarm_hazard_share: Option<f64>,
    /// Alarm storms: the group warnings raised ([`crate::correlation`]),
    /// each counted once in `alarms` with its members listed here. The
    /// warnings folded into a group when it formed are not counted again.
    #[serde(default)]
    pub storms: Vec<Storm>,
}

/// One alarm storm in a report: a group warning and its members.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Storm {
    /// The group warning.
    pub warning_id: String,
    /// Its venue (none for a site the registry does not know).
    #[schema(required = true)]
    pub venue_id: Option<String>,
    /// `group.<rule name>`.
    pub rule: String,
    /// The highest level it reached.
    pub max_level: String,
    /// Raised (Unix ms).
    pub raised_ms: i64,
    /// The alarms it gathered (left or not).
    pub members: i64,
    /// Their devices, sorted, at most 50.
    pub devices: Vec<String>,
}

/// `root` and every region under it.
pub async fn subtree(c: &mut AnyConnection, root: &str) -> Result<HashSet<String>> {
    let rows = sqlx::query("SELECT id, parent_id FROM regions")
        .fetch_all(&mut *c)
        .await?;
    let mut pairs = Vec::new();
    for r in &rows {
        pairs.push((r.try_get::<String, _>("id")?, opt_str(r, "parent_id")?));
    }
    if !pairs.iter().any(|(id, _)| id == root) {
        return Err(Error::NotFound {
            what: "region",
            id: root.into(),
        });
    }
    let mut set: HashSet<String> = HashSet::from([root.to_string()]);
    loop {
        let before = set.len();
        for (id, p) in &pairs {
            if p.as_ref().is_some_and(|p| set.contains(p)) {
                set.insert(id.clone());
            }
        }
        if set.len() == before {
            return Ok(set);
        }
    }
}

/// The periods a report can cover.
pub const PERIODS: [&str; 6] = [
    "daily",
    "weekly",
    "half-monthly",
    "monthly",
    "quarterly",
    "yearly",
];

/// The period's name as in [`PERIODS`]; `year` and `annual` are taken for
/// `yearly`.
pub fn period_name(period: &str) -> Option<&'static str> {
    match period {
        "year" | "annual" => Some("yearly"),
        p => PERIODS.iter().copied().find(|x| *x == p),
    }
}

/// `(label, start, end)` in Unix ms (CST) of the `period` containing `date`
/// (`YYYY-MM-DD`): a day, an ISO week from Monday, a 15-day node (1–15,
/// 16–end), a month, a quarter or a calendar year (1 January 00:00 CST to
/// the next).
pub fn period_bounds(period: &str, date: &str) -> Result<(String, i64, i64)> {
    let bad = || Error::Invalid(format!("date: {date:?} is not YYYY-MM-DD"));
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| bad())?;
    let first = |y: i32, m: u32| NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad);
    let add_months = |y: i32, m: u32, k: u32| {
        let z = (m - 1 + k) as i32;
        first(y + z / 12, (z % 12) as u32 + 1)
    };
    let (label, a, b) = match period_name(period).unwrap_or_default() {
        "daily" => (
            d.format("%Y-%m-%d").to_string(),
            d,
            d + chrono::Duration::days(1),
        ),
        "weekly" => {
            let a = d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday()));
            let w = a.iso_week();
            (
                format!("{:04}-W{:02}", w.year(), w.week()),
                a,
                a + chrono::Duration::days(7),
            )
        }
        "half-monthly" => {
            if d.day() <= 15 {
                let a = first(d.year(), d.month())?;
                (
                    format!("{:04}-{:02} 1-15", d.year(), d.month()),
                    a,
                    a + chrono::Duration::days(15),
                )
            } else {
                let a = first(d.year(), d.month())? + chrono::Duration::days(15);
                (
                    format!("{:04}-{:02} 16-end", d.year(), d.month()),
                    a,
                    add_months(d.year(), d.month(), 1)?,
                )
            }
        }
        "monthly" => (
            format!("{:04}-{:02}", d.year(), d.month()),
            first(d.year(), d.month())?,
            add_months(d.year(), d.month(), 1)?,
        ),
        "quarterly" => {
            let q = (d.month() - 1) / 3;
            (
                format!("{:04}-Q{}", d.year(), q + 1),
                first(d.year(), q * 3 + 1)?,
                add_months(d.year(), q * 3 + 1, 3)?,
            )
        }
        "yearly" => (
            format!("{:04}", d.year()),
            first(d.year(), 1)?,
            first(d.year() + 1, 1)?,
        ),
        _ => {
            return Err(Error::NotFound {
                what: "report period",
                id: period.into(),
            });
        }
    };
    let tz = FixedOffset::east_opt(8 * 3600).ok_or_else(bad)?;
    let ms = |d: NaiveDate| -> Result<i64> {
        let dt = d.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
        Ok(tz
            .from_local_datetime(&dt)
            .single()
            .ok_or_else(bad)?
            .timestamp_millis())
    };
    Ok((label, ms(a)?, ms(b)?))
}

/// The same date one year earlier (29 Feb → 28 Feb).
fn year_earlier(date: &str) -> Result<String> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| Error::Invalid(format!("date: {date:?} is not YYYY-MM-DD")))?;
    let p = NaiveDate::from_ymd_opt(d.year() - 1, d.month(), d.day())
        .or_else(|| NaiveDate::from_ymd_opt(d.year() - 1, d.month(), d.day() - 1))
        .ok_or_else(|| Error::Invalid("date".into()))?;
    Ok(p.format("%Y-%m-%d").to_string())
}

/// Computes the monthly report for `ym` (`YYYY-MM`).
pub async fn monthly(c: &mut AnyConnection, region: &str, ym: &str) -> Result<Monthly> {
    month_bounds(ym)?;
    report(c, region, "monthly", &format!("{ym}-01")).await
}

/// Computes the report of `period` containing `date`.
pub async fn report(
    c: &mut AnyConnection,
    region: &str,
    period: &str,
    date: &str,
) -> Result<Monthly> {
    report_for(c, region, None, period, date).await
}

/// Computes the report of `period` containing `date`, for the venues of
/// one `sector` only when given.
pub async fn report_for(
    c: &mut AnyConnection,
    region: &str,
    sector: Option<&str>,
    period: &str,
    date: &str,
) -> Result<Monthly> {
    let (label, start, end) = period_bounds(period, date)?;
    let (_, pstart, pend) = period_bounds(period, &year_earlier(date)?)?;
    let ym = label.as_str();
    let regions = subtree(c, region).await?;
    let in_region = |r: &Option<String>| r.as_ref().is_some_and(|r| regions.contains(r));
    let mut m = Monthly {
        region_id: region.into(),
        sector: sector.map(str::to_string),
        period: period_name(period).unwrap_or(period).into(),
        month: ym.into(),
        ..Monthly::default()
    };

    let venues = sqlx::query("SELECT id, region_id, sector FROM venues")
        .fetch_all(&mut *c)
        .await?;
    let mut venue_set = HashSet::new();
    for v in &venues {
        let sec: String = v.try_get("sector")?;
        if in_region(&Some(v.try_get("region_id")?)) && sector.is_none_or(|s| s == sec) {
            venue_set.insert(v.try_get::<String, _>("id")?);
        }
    }
    m.venues = venue_set.len() as i64;
    // A row counts when it is in the region and, with a sector, at one of
    // the sector's venues.
    let keep = |r: &Option<String>, v: &Option<String>| {
        in_region(r) && (sector.is_none() || v.as_ref().is_some_and(|v| venue_set.contains(v)))
    };

    let tasks = sqlx::query(
        "SELECT id, venue_id, region_id FROM tasks WHERE kind IN ('inspection', 'patrol', 'grid_visit', 'sampling') \
         AND state = 'DONE' AND done_ms >= $1 AND done_ms < $2",
    )
    .bind(start)
    .bind(end)
    .fetch_all(&mut *c)
    .await?;
    let hazards = sqlx::query("SELECT source, source_ref, region_id, venue_id, severity, state, due_ms, closed_ms, created_ms, penalty_case FROM hazards")
        .fetch_all(&mut *c)
        .await?;
    let mut hazard_refs = HashSet::new();
    for h in &hazards {
        if let Some(r) = opt_str(h, "source_ref")? {
            hazard_refs.insert(r);
        }
    }
    let mut inspected = HashSet::new();
    for t in &tasks {
        if !keep(&opt_str(t, "region_id")?, &opt_str(t, "venue_id")?) {
            continue;
        }
        m.inspections += 1;
        if let Some(v) = opt_str(t, "venue_id")? {
            inspected.insert(v);
        }
        if hazard_refs.contains(&t.try_get::<String, _>("id")?) {
            m.inspections_with_hazard += 1;
        }
    }
    m.venues_inspected = inspected.len() as i64;
    m.inspection_coverage = ratio(m.venues_inspected, m.venues);
    m.hazard_discovery_rate = ratio(m.inspections_with_hazard, m.inspections);

    for h in &hazards {
        if !keep(&opt_str(h, "region_id")?, &opt_str(h, "venue_id")?) {
            continue;
        }
        let due: Option<i64> = h.try_get("due_ms")?;
        let closed: Option<i64> = h.try_get("closed_ms")?;
        let created: i64 = h.try_get("created_ms")?;
        if let Some(d) = due.filter(|d| (start..end).contains(d)) {
            m.hazards_due += 1;
            if closed.is_some_and(|c| c <= d) {
                m.hazards_closed_on_time += 1;
            }
        }
        if (start..end).contains(&created) {
            m.hazards_found += 1;
            m.hazards_penalized += h.try_get::<i64, _>("penalty_case")?;
        }
        let open_at_end = created < end
            && closed.is_none_or(|c| c >= end)
            && !["CLOSED", "ARCHIVED"].contains(&h.try_get::<String, _>("state")?.as_str());
        if open_at_end && opt_str(h, "severity")?.as_deref() == Some("major") {
            m.open_major_hazards += 1;
        }
    }
    m.rectification_rate = ratio(m.hazards_closed_on_time, m.hazards_due);
    m.penalty_rate = ratio(m.hazards_penalized, m.hazards_found);

    let acc = sqlx::query("SELECT region_id, venue_id, at_ms, deaths FROM accidents")
        .fetch_all(&mut *c)
        .await?;
    for a in &acc {
        if !keep(&Some(a.try_get("region_id")?), &opt_str(a, "venue_id")?) {
            continue;
        }
        let at: i64 = a.try_get("at_ms")?;
        // Bounded on the way in; saturating here all the same, so no row
        // can turn a count negative.
        let d: i64 = a.try_get::<i64, _>("deaths")?.max(0);
        if (start..end).contains(&at) {
            m.accidents.0 = m.accidents.0.saturating_add(1);
            m.deaths.0 = m.deaths.0.saturating_add(d);
        } else if (pstart..pend).contains(&at) {
            m.accidents.1 = m.accidents.1.saturating_add(1);
            m.deaths.1 = m.deaths.1.saturating_add(d);
        }
    }
    m.accident_decline = decline_rate(m.accidents.1, m.accidents.0);
    m.death_decline = decline_rate(m.deaths.1, m.deaths.0);

    let ws = sqlx::query("SELECT id, region_id, venue_id, kind, rule, alarm_key, max_level, raised_ms, acked_ms, resolved_ms FROM warnings WHERE raised_ms >= $1 AND raised_ms < $2")
        .bind(start)
        .bind(end)
        .fetch_all(&mut *c)
        .await?;
    // Storms first: their members, and the warnings folded into them when
    // they formed (resolved at that moment, under a member's alarm key).
    let mut folded = HashSet::new();
    for w in &ws {
        if w.try_get::<String, _>("kind")? != crate::correlation::GROUP_KIND
            || !keep(&opt_str(w, "region_id")?, &opt_str(w, "venue_id")?)
        {
            continue;
        }
        let id: String = w.try_get("id")?;
        let raised: i64 = w.try_get("raised_ms")?;
        let members =
            sqlx::query("SELECT alarm_key, device FROM warning_members WHERE group_id = $1")
                .bind(&id)
                .fetch_all(&mut *c)
                .await?;
        let mut devices = Vec::with_capacity(members.len());
        for r in &members {
            folded.insert((r.try_get::<String, _>("alarm_key")?, raised));
            devices.push(r.try_get::<String, _>("device")?);
        }
        devices.sort();
        devices.dedup();
        devices.truncate(50);
        m.storms.push(Storm {
            warning_id: id,
            venue_id: opt_str(w, "venue_id")?,
            rule: w.try_get("rule")?,
            max_level: w.try_get("max_level")?,
            raised_ms: raised,
            members: members.len() as i64,
            devices,
        });
    }
    m.storms.sort_by_key(|s| s.raised_ms);
    let (mut ack_sum, mut ack_n, mut res_sum, mut res_n, mut became) =
        (0i64, 0i64, 0i64, 0i64, 0i64);
    for w in &ws {
        if !keep(&opt_str(w, "region_id")?, &opt_str(w, "venue_id")?) {
            continue;
        }
        let resolved: Option<i64> = w.try_get("resolved_ms")?;
        if let Some(r) = resolved
            && w.try_get::<String, _>("kind")? != crate::correlation::GROUP_KIND
            && folded.contains(&(w.try_get::<String, _>("alarm_key")?, r))
        {
            continue;
        }
        m.alarms += 1;
        let key = format!(
            "{}/{}",
            w.try_get::<String, _>("kind")?,
            w.try_get::<String, _>("max_level")?
        );
        *m.alarms_by_kind_level.entry(key).or_default() += 1;
        let raised: i64 = w.try_get("raised_ms")?;
        if let Some(a) = w.try_get::<Option<i64>, _>("acked_ms")? {
            ack_sum += a - raised;
            ack_n += 1;
        }
        if let Some(r) = w.try_get::<Option<i64>, _>("resolved_ms")? {
            res_sum += r - raised;
            res_n += 1;
        }
        if hazard_refs.contains(&w.try_get::<String, _>("id")?) {
            became += 1;
        }
    }
    m.mtta_s = ratio(ack_sum, ack_n).map(|x| x / 1000.0);
    m.mttr_s = ratio(res_sum, res_n).map(|x| x / 1000.0);
    m.alarm_hazard_share = ratio(became, m.alarms);
    Ok(m)
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{:.2}%", x * 100.0))
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x:.0} s"))
}

impl Monthly {
    /// `(indicator, value)` rows.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut r = vec![
            ("region".into(), self.region_id.clone()),
            ("period".into(), format!("{} {}", self.period, self.month)),
            (
                "sector".into(),
                self.sector.clone().unwrap_or_else(|| "all".into()),
            ),
            ("registered venues".into(), self.venues.to_string()),
            (
                "检查覆盖率 inspection coverage".into(),
                pct(self.inspection_coverage),
            ),
            (
                "发现隐患率 hazard discovery rate".into(),
                pct(self.hazard_discovery_rate),
            ),
            (
                "隐患整改率 rectification rate".into(),
                pct(self.rectification_rate),
            ),
            ("执法处罚率 penalty rate".into(), pct(self.penalty_rate)),
            (
                "accidents (this period / a year before)".into(),
                format!("{} / {}", self.accidents.0, self.accidents.1),
            ),
            (
                "事故下降率 accident decline".into(),
                pct(self.accident_decline),
            ),
            (
                "deaths (this period / a year before)".into(),
                format!("{} / {}", self.deaths.0, self.deaths.1),
            ),
            ("事故下降率 death decline".into(), pct(self.death_decline)),
            (
                "重大隐患存量 open major hazards".into(),
                self.open_major_hazards.to_string(),
            ),
            ("alarms".into(), self.alarms.to_string()),
            ("mean time to acknowledge".into(), secs(self.mtta_s)),
            ("mean time to resolve".into(), secs(self.mttr_s)),
            (
                "alarms that became hazards".into(),
                pct(self.alarm_hazard_share),
            ),
        ];
        for (k, v) in &self.alarms_by_kind_level {
            r.push((format!("alarms {k}"), v.to_string()));
        }
        r.push((
            "alarm storms (each one warning above)".into(),
            format!(
                "{} ({} alarms)",
                self.storms.len(),
                self.storms.iter().map(|s| s.members).sum::<i64>()
            ),
        ));
        for s in &self.storms {
            let more = s.members - s.devices.len() as i64;
            r.push((
                format!(
                    "storm {} {} {} ({})",
                    crate::messages::time(crate::messages::Lang::Zh, s.raised_ms),
                    s.venue_id.as_deref().unwrap_or("-"),
                    s.rule,
                    s.max_level
                ),
                format!(
                    "{} alarms: {}{}",
                    s.members,
                    s.devices.join(", "),
                    if more > 0 {
                        format!(" (+{more})")
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        r
    }

    /// CSV (`indicator,value`).
    pub fn csv(&self) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut out = String::from("indicator,value\n");
        for (k, v) in self.rows() {
            let _ = writeln!(out, "{},{}", q(&k), q(&v));
        }
        out
    }

    /// A self-contained HTML page.
    pub fn html(&self) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let (zh, en) = title_of(&self.period);
        let mut out = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>{zh} {} {}</title></head><body>\
             <h1>{zh} {en}: {} {}</h1><table border=\"1\"><tr><th>Indicator</th><th>Value</th></tr>",
            esc(&self.region_id),
            esc(&self.month),
            esc(&self.region_id),
            esc(&self.month)
        );
        for (k, v) in self.rows() {
            let _ = write!(out, "<tr><td>{}</td><td>{}</td></tr>", esc(&k), esc(&v));
        }
        out.push_str("</table></body></html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.005
    }

    #[test]
    fn year_on_year_vectors_of_the_spec() {
        // 003:L41: 2022 24 accidents (+33.33%), 31 deaths (+34.78%):
        // priors 18 and 23.
        assert!(close(implied_prior(24.0, 33.33), 18.0));
        assert!(close(implied_prior(31.0, 34.78), 23.0));
        assert!(close(decline_rate(18, 24).unwrap_or(0.0) * 100.0, -33.33));
        assert!(close(decline_rate(23, 31).unwrap_or(0.0) * 100.0, -34.78));
        // 2023 Jan–Apr: 9 (+200%), 11 (+83.33%): priors 3 and 6.
        assert!(close(implied_prior(9.0, 200.0), 3.0));
        assert!(close(implied_prior(11.0, 83.33), 6.0));
        assert!(close(decline_rate(3, 9).unwrap_or(0.0) * 100.0, -200.0));
        assert!(close(decline_rate(6, 11).unwrap_or(0.0) * 100.0, -83.33));
        // 003:L59: 12 … 6 … 50%.
        assert!(close(ratio(6, 12).unwrap_or(0.0), 0.5));
        assert_eq!(decline_rate(0, 3), None);
        assert_eq!(ratio(1, 0), None);
    }

    #[test]
    fn periods() {
        let day = 86_400_000;
        let (l, s, e) = period_bounds("monthly", "2026-12-09").unwrap();
        assert_eq!(
            (l.as_str(), s, e - s),
            ("2026-12", 1_796_054_400_000, 31 * day)
        );
        let (l, s2, e) = period_bounds("daily", "2026-12-01").unwrap();
        assert_eq!((l.as_str(), s2, e - s2), ("2026-12-01", s, day));
        let (l, a, e) = period_bounds("weekly", "2026-12-03").unwrap();
        assert_eq!((l.as_str(), a, e - a), ("2026-W49", s - day, 7 * day));
        let (l, a, e) = period_bounds("half-monthly", "2026-12-16").unwrap();
        assert_eq!(
            (l.as_str(), a, e - a),
            ("2026-12 16-end", s + 15 * day, 16 * day)
        );
        let (l, _, _) = period_bounds("half-monthly", "2026-12-15").unwrap();
        assert_eq!(l, "2026-12 1-15");
        let (l, a, e) = period_bounds("quarterly", "2026-11-30").unwrap();
        assert_eq!((l.as_str(), e - a), ("2026-Q4", 92 * day));
        assert!(period_bounds("fortnightly", "2026-11-30").is_err());
        assert!(period_bounds("daily", "2026-02-30").is_err());
        assert_eq!(year_earlier("2028-02-29").unwrap(), "2027-02-28");
    }

    #[test]
    fn years_are_cst_calendar_years() {
        let day = 86_400_000;
        let (l, a, e) = period_bounds("yearly", "2026-07-15").unwrap();
        // 2026-01-01T00:00+08:00 = 2025-12-31T16:00Z.
        assert_eq!(
            (l.as_str(), a, e - a),
            ("2026", 1_767_196_800_000, 365 * day)
        );
        // The year's first and last days, and the aliases.
        for d in ["2026-01-01", "2026-12-31"] {
            assert_eq!(period_bounds("yearly", d).unwrap(), (l.clone(), a, e));
        }
        assert_eq!(
            period_bounds("year", "2026-03-01").unwrap(),
            (l.clone(), a, e)
        );
        assert_eq!(period_bounds("annual", "2026-03-01").unwrap(), (l, a, e));
        assert_eq!(period_name("annual"), Some("yearly"));
        assert_eq!(period_name("quarterly"), Some("quarterly"));
        assert_eq!(period_name("decade"), None);
        // The next year starts where this one ends; a leap year is 366 days.
        let (l, a2, e2) = period_bounds("yearly", "2027-01-01").unwrap();
        assert_eq!((l.as_str(), a2), ("2027", e));
        let (_, a3, e3) = period_bounds("yearly", "2028-02-29").unwrap();
        assert_eq!((a3, e3 - a3), (e2, 366 * day));
        // 2026-12-31T16:30Z is already 2027 in Beijing: it falls in 2027.
        let t = e + 30 * 60_000;
        assert!(!(a..e).contains(&t) && (a2..e2).contains(&t));
        // The year-on-year base of a year is the year before.
        let (l, pa, pe) = period_bounds("yearly", &year_earlier("2028-02-29").unwrap()).unwrap();
        assert_eq!((l.as_str(), pe), ("2027", a3));
        assert_eq!(pe - pa, 365 * day);
        assert!(period_bounds("yearly", "2026-13-01").is_err());
    }

    #[test]
    fn months_are_cst() {
        let (s, e) = month_bounds("2026-12").unwrap();
        // 2026-12-01T00:00+08:00 = 2026-11-30T16:00Z.
        assert_eq!(s, 1_796_054_400_000);
        assert_eq!(e - s, 31 * 86_400_000);
        assert_eq!(prior_year("2026-03").unwrap(), "2025-03");
        assert!(month_bounds("2026-13").is_err());
        assert!(month_bounds("nope").is_err());
    }

    #[test]
    fn csv_and_html_escape() {
        let m = Monthly {
            region_id: "a<b".into(),
            period: "monthly".into(),
            month: "2026-01".into(),
            ..Monthly::default()
        };
        assert!(m.html().contains("a&lt;b"));
        assert!(m.csv().starts_with("indicator,value\n\"region\",\"a<b\"\n"));
    }
}
