//! The public side, no token: what the venue's 文旅安全码 page shows (the
//! QR code at the entrance points to it) and the 举报 entry. No personal
//! data is shown or stored: the page has counts and dates only, and a
//! report keeps no reporter identity (不得对举报人进行打击报复). The page
//! itself is rendered in [`crate::web::public`].

use anquan_protocol::Level;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::error::{Error, Result};
use crate::warnings;

/// What the safety-code page shows.
#[derive(Debug, Clone, Serialize)]
pub struct SafetyCode {
    /// Venue id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Sector.
    pub sector: String,
    /// Address.
    pub address: String,
    /// The code color of the period: the worse of the current dynamic
    /// color and the highest level of the real (not false-alarm) warnings
    /// raised in the period.
    pub color: &'static str,
    /// The dynamic color now (as `GET /api/v1/venues/{id}/status`).
    pub current: &'static str,
    /// The period (`web.code_period`, CST): `2026-W46`, `2026-11`, `2026-Q4`.
    pub period: String,
    /// Open 重大 hazards.
    pub open_major: i64,
    /// Open 一般 hazards (incl. not yet judged).
    pub open_general: i64,
    /// Last done inspection-type task, Unix ms.
    pub last_inspection_ms: Option<i64>,
    /// A hazard of the venue is under 挂牌督办.
    pub listed: bool,
    /// Operation suspended (interim control).
    pub operation_blocked: bool,
}

const RANK: [&str; 5] = ["green", "blue", "yellow", "orange", "red"];

fn worse(a: &'static str, b: &'static str) -> &'static str {
    let r = |c: &str| RANK.iter().position(|x| *x == c).unwrap_or(0);
    if r(b) > r(a) { b } else { a }
}

/// The periods a safety code's color can cover (`web.code_period`).
pub const PERIODS: [&str; 3] = ["week", "month", "quarter"];

/// The period (CST) of kind `kind` that contains `now_ms`: its label
/// (`2026-W46`, `2026-11`, `2026-Q4`) and its start in Unix ms. An unknown
/// kind is taken as `month` (the configuration rejects it before).
pub fn period_of(kind: &str, now_ms: i64) -> (String, i64) {
    use chrono::Datelike;
    let cst = 8 * 3_600_000;
    let d = chrono::DateTime::from_timestamp_millis(now_ms + cst)
        .map(|d| d.date_naive())
        .unwrap_or_default();
    let (first, label) = match kind {
        "week" => {
            let w = d.iso_week();
            let back = i64::from(d.weekday().num_days_from_monday());
            (
                d - chrono::Duration::days(back),
                format!("{}-W{:02}", w.year(), w.week()),
            )
        }
        "quarter" => {
            let q = (d.month() - 1) / 3;
            (
                chrono::NaiveDate::from_ymd_opt(d.year(), q * 3 + 1, 1).unwrap_or(d),
                format!("{}-Q{}", d.year(), q + 1),
            )
        }
        _ => (d.with_day(1).unwrap_or(d), d.format("%Y-%m").to_string()),
    };
    let start = first
        .and_hms_opt(0, 0, 0)
        .map_or(now_ms, |t| t.and_utc().timestamp_millis() - cst);
    (label, start)
}

/// The safety-code data of `venue` at `now_ms`, its color over the period
/// of kind `period` (see [`PERIODS`]).
pub async fn safety_code(
    c: &mut AnyConnection,
    venue: &str,
    now_ms: i64,
    period: &str,
) -> Result<SafetyCode> {
    let v = sqlx::query("SELECT name, sector, address FROM venues WHERE id = $1")
        .bind(venue)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(Error::NotFound {
            what: "venue",
            id: venue.into(),
        })?;
    let st = warnings::venue_status(c, venue).await?;
    let last: Option<i64> = sqlx::query(
        "SELECT MAX(done_ms) AS t FROM tasks WHERE venue_id = $1 AND state = 'DONE' \
         AND kind IN ('inspection', 'patrol', 'grid_visit', 'sampling')",
    )
    .bind(venue)
    .fetch_one(&mut *c)
    .await?
    .try_get("t")?;
    let listed: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM hazards WHERE venue_id = $1 AND listed_level IS NOT NULL \
         AND state NOT IN ('CLOSED', 'ARCHIVED')",
    )
    .bind(venue)
    .fetch_one(&mut *c)
    .await?
    .try_get("n")?;
    let (period, start) = period_of(period, now_ms);
    let mut color = st.color;
    for r in sqlx::query(
        "SELECT max_level FROM warnings WHERE venue_id = $1 AND raised_ms >= $2 AND (false_alarm IS NULL OR false_alarm = 0)",
    )
    .bind(venue)
    .bind(start)
    .fetch_all(&mut *c)
    .await?
    {
        if let Some(l) = Level::parse(&r.try_get::<String, _>("max_level")?) {
            color = worse(color, l.as_str());
        }
    }
    Ok(SafetyCode {
        id: venue.into(),
        name: v.try_get("name")?,
        sector: v.try_get("sector")?,
        address: v.try_get("address")?,
        color,
        current: st.color,
        period,
        open_major: st.open_major_hazards,
        open_general: st.open_general_hazards,
        last_inspection_ms: last,
        listed: listed > 0,
        operation_blocked: st.operation_blocked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_cst() {
        // 2026-11-30T16:30Z is Tuesday 2026-12-01 00:30 CST.
        let now = 1_796_056_200_000;
        let (p, start) = period_of("month", now);
        assert_eq!(p, "2026-12");
        assert_eq!(start, 1_796_054_400_000);
        let (p, start) = period_of("quarter", now);
        assert_eq!(p, "2026-Q4");
        // 2026-10-01 00:00 CST.
        assert_eq!(start, 1_790_784_000_000);
        let (p, start) = period_of("week", now);
        assert_eq!(p, "2026-W49");
        // Monday 2026-11-30 00:00 CST.
        assert_eq!(start, 1_796_054_400_000 - 86_400_000);
        assert_eq!(worse("yellow", "red"), "red");
        assert_eq!(worse("orange", "blue"), "orange");
    }
}
