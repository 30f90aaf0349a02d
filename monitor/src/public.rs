//! The public side, no token: the venue's 文旅安全码 page (what the QR code
//! at the entrance points to) and the 举报 entry. No personal data is shown
//! or stored: the page has counts and dates only, and a report keeps no
//! reporter identity (不得对举报人进行打击报复).

use std::fmt::Write as _;

use sqlx::{AnyConnection, Row};

use crate::error::{Error, Result};
use crate::warnings;

/// The safety-code page of `venue`, as HTML.
pub async fn safety_code(c: &mut AnyConnection, venue: &str, now_ms: i64) -> Result<String> {
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
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let date = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms + 8 * 3_600_000)
            .map(|d| d.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let (cn, css) = match st.color {
        "red" => ("红码 red", "#d32f2f"),
        "orange" => ("橙码 orange", "#f57c00"),
        "yellow" => ("黄码 yellow", "#fbc02d"),
        "blue" => ("蓝码 blue", "#1976d2"),
        _ => ("绿码 green", "#388e3c"),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>安全码 {name}</title></head><body>\
         <h1>{name}</h1><p>{sector} · {address}</p>\
         <div style=\"background:{css};color:#fff;padding:1em;font-size:2em\">{cn}</div>\
         <table>\
         <tr><td>As of</td><td>{asof}</td></tr>\
         <tr><td>Open hazards, 重大 major</td><td>{major}</td></tr>\
         <tr><td>Open hazards, 一般 general</td><td>{general}</td></tr>\
         <tr><td>Last inspection</td><td>{last}</td></tr>\
         <tr><td>挂牌督办</td><td>{listed}</td></tr>\
         <tr><td>Operation</td><td>{blocked}</td></tr>\
         </table>\
         <p>举报 Report a hazard: <code>POST /public/reports</code> \
         {{\"venue_id\":\"{id}\",\"category\":\"…\",\"description\":\"…\"}} — no name needed, none is kept.</p>\
         </body></html>",
        name = esc(&v.try_get::<String, _>("name")?),
        sector = esc(&v.try_get::<String, _>("sector")?),
        address = esc(&v.try_get::<String, _>("address")?),
        asof = date(now_ms),
        major = st.open_major_hazards,
        general = st.open_general_hazards,
        last = last.map_or_else(|| "none".to_string(), date),
        listed = if listed > 0 { "yes" } else { "no" },
        blocked = if st.operation_blocked {
            "suspended (不得组织作业)"
        } else {
            "normal"
        },
        id = esc(venue),
    );
    Ok(out)
}
