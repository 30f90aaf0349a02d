//! Site liveness: a site whose gateway has gone silent is blind, and a
//! blind site must never look green.
//!
//! Each gateway posts a heartbeat (`POST /api/v1/gateways/{id}/heartbeat`,
//! on its intake token) every `interval_s` with the sites it serves and its
//! own state (broker link, buffered frames, queued alarms, last frame).
//! The scheduler ([`check`]) judges a gateway silent after [`MISSED`]
//! intervals without one and raises, for each site it serves, a
//! [`LEVEL`] warning of rule [`RULE`] (device = the gateway, kind
//! `gateway`), through the same warning logic and call ladder as a device
//! alarm; the venues of those sites report `no_data` and are never green
//! ([`crate::warnings::venue_status`]: grey when nothing else colours
//! them). The next heartbeat clears the warnings (cleared at the source:
//! the climb stops, those called hear it). Judging is a compare-and-set on
//! `silent_since_ms`, so replicas ticking together raise it once.

use anquan_protocol::{AlarmState, Level};
use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::App;
use crate::error::{Error, Result};
use crate::intake::{Signal, apply_signal};

/// The rule of a silent gateway's warnings.
pub const RULE: &str = "site.gateway_offline";
/// The device kind those warnings carry.
pub const KIND: &str = "gateway";
/// Heartbeat intervals without one before a gateway is silent.
pub const MISSED: i64 = 2;
/// The level of a silent gateway's warnings: a whole site blind is worse
/// than one device offline (yellow by default).
pub const LEVEL: Level = Level::Orange;

/// A gateway's heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The sites the gateway serves (1 to 256 ids; a scoped token may name
    /// only its own).
    pub sites: Vec<String>,
    /// Seconds until the next heartbeat (5 to 3600).
    pub interval_s: u32,
    /// Whether its link to the site broker is up.
    pub broker_connected: bool,
    /// Frames buffered for the time-series database.
    #[serde(default)]
    pub buffered: u64,
    /// Alarms waiting for delivery.
    #[serde(default)]
    pub alarms_queued: u64,
    /// When it last received a frame (ms since the epoch).
    #[serde(default)]
    pub last_frame_ms: Option<u64>,
}

impl Heartbeat {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<()> {
        if self.sites.is_empty() || self.sites.len() > 256 {
            return Err(Error::Invalid("sites: 1 to 256 site ids".into()));
        }
        for (i, s) in self.sites.iter().enumerate() {
            anquan_protocol::Id::new(s).map_err(|e| Error::Invalid(format!("sites[{i}]: {e}")))?;
        }
        if !(5..=3600).contains(&self.interval_s) {
            return Err(Error::Invalid("interval_s: 5 to 3600".into()));
        }
        Ok(())
    }
}

/// What a heartbeat did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Beat {
    /// The gateway had been judged silent: its warnings are cleared.
    pub recovered: bool,
    /// The sites it serves now.
    pub sites: usize,
}

/// Records a heartbeat of `gateway` (already authorised for its sites).
pub async fn beat(app: &App, gateway: &str, hb: &Heartbeat) -> Result<Beat> {
    hb.validate()?;
    anquan_protocol::Id::new(gateway).map_err(|e| Error::Invalid(format!("gateway: {e}")))?;
    let now = app.now_ms();
    let mut sites = hb.sites.clone();
    sites.sort();
    sites.dedup();
    let mut tx = app.db.begin().await?;
    let was: Option<(Option<i64>, i64)> =
        sqlx::query("SELECT silent_since_ms, last_ms FROM gateway_heartbeats WHERE gateway = $1")
            .bind(gateway)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| -> Result<_> { Ok((r.try_get("silent_since_ms")?, r.try_get("last_ms")?)) })
            .transpose()?;
    let report = serde_json::to_string(hb).map_err(|e| Error::Invalid(e.to_string()))?;
    let interval_ms = i64::from(hb.interval_s) * 1000;
    sqlx::query(
        "INSERT INTO gateway_heartbeats (gateway, last_ms, interval_ms, report, silent_since_ms) \
         VALUES ($1, $2, $3, $4, NULL) \
         ON CONFLICT (gateway) DO UPDATE SET last_ms = excluded.last_ms, \
         interval_ms = excluded.interval_ms, report = excluded.report, silent_since_ms = NULL",
    )
    .bind(gateway)
    .bind(now)
    .bind(interval_ms)
    .bind(&report)
    .execute(&mut *tx)
    .await?;
    // The sites it was silent for are the ones to clear.
    let before = sites_of(&mut tx, gateway).await?;
    sqlx::query("DELETE FROM gateway_sites WHERE gateway = $1")
        .bind(gateway)
        .execute(&mut *tx)
        .await?;
    for s in &sites {
        sqlx::query("INSERT INTO gateway_sites (gateway, site) VALUES ($1, $2)")
            .bind(gateway)
            .bind(s)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let silent_since = was.and_then(|(s, _)| s);
    if let Some(since) = silent_since {
        let silence_s = ((now - since) / 1000) as f32;
        let mut blind: Vec<&String> = before.iter().chain(sites.iter()).collect();
        blind.sort();
        blind.dedup();
        for site in blind {
            signal(
                app,
                gateway,
                site,
                AlarmState::Cleared,
                silence_s,
                hb.interval_s,
                now,
            )
            .await?;
        }
        tracing::info!(
            gateway,
            "gateway heard again; its sites' liveness warnings cleared"
        );
        crate::db::audit(
            &mut *app.db.acquire().await?,
            now,
            &format!("gateway:{gateway}"),
            "gateway",
            gateway,
            Some("SILENT"),
            "HEARD",
            "heartbeat after silence",
        )
        .await?;
    }
    Ok(Beat {
        recovered: silent_since.is_some(),
        sites: sites.len(),
    })
}

async fn sites_of(c: &mut AnyConnection, gateway: &str) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT site FROM gateway_sites WHERE gateway = $1 ORDER BY site")
        .bind(gateway)
        .fetch_all(&mut *c)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>("site").map_err(Error::from))
        .collect()
}

async fn signal(
    app: &App,
    gateway: &str,
    site: &str,
    state: AlarmState,
    silence_s: f32,
    interval_s: u32,
    now: i64,
) -> Result<()> {
    apply_signal(
        app,
        &Signal {
            site: site.to_string(),
            device: gateway.to_string(),
            kind: KIND.into(),
            rule: RULE.into(),
            level: LEVEL,
            state,
            value: silence_s,
            threshold: (MISSED * i64::from(interval_s)) as f32,
            event_id: format!("monitor/{site}/{gateway}/{RULE}/{now}"),
            gateway: gateway.to_string(),
        },
    )
    .await?;
    Ok(())
}

/// Judges the gateways silent for [`MISSED`] intervals and raises their
/// sites' warnings; returns how many gateways it judged silent now.
pub async fn check(app: &App, now: i64) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT gateway, last_ms, interval_ms FROM gateway_heartbeats \
         WHERE silent_since_ms IS NULL AND last_ms + $1 * interval_ms < $2",
    )
    .bind(MISSED)
    .bind(now)
    .fetch_all(&app.db)
    .await?;
    let mut judged = 0;
    for r in rows {
        let gateway: String = r.try_get("gateway")?;
        let last_ms: i64 = r.try_get("last_ms")?;
        let interval_ms: i64 = r.try_get("interval_ms")?;
        // Compare-and-set: one replica raises it.
        let won = sqlx::query(
            "UPDATE gateway_heartbeats SET silent_since_ms = $1 \
             WHERE gateway = $2 AND silent_since_ms IS NULL AND last_ms = $3",
        )
        .bind(now)
        .bind(&gateway)
        .bind(last_ms)
        .execute(&app.db)
        .await?
        .rows_affected()
            == 1;
        if !won {
            continue;
        }
        judged += 1;
        app.metrics.gateways_silent.inc();
        let sites = sites_of(&mut *app.db.acquire().await?, &gateway).await?;
        tracing::warn!(
            gateway,
            ?sites,
            silent_ms = now - last_ms,
            "gateway silent: its sites are blind"
        );
        crate::db::audit(
            &mut *app.db.acquire().await?,
            now,
            "system:liveness",
            "gateway",
            &gateway,
            Some("HEARD"),
            "SILENT",
            &format!("no heartbeat for {} s", (now - last_ms) / 1000),
        )
        .await?;
        let interval_s = u32::try_from(interval_ms / 1000).unwrap_or(u32::MAX);
        for site in &sites {
            signal(
                app,
                &gateway,
                site,
                AlarmState::Raised,
                ((now - last_ms) / 1000) as f32,
                interval_s,
                now,
            )
            .await?;
        }
    }
    Ok(judged)
}

/// Whether a gateway serving `site` is judged silent.
pub async fn site_blind(c: &mut AnyConnection, site: &str) -> Result<bool> {
    Ok(blind_since(c, site).await?.is_some())
}

/// Since when `site` is blind (the earliest silence of its gateways), if
/// it is.
pub async fn blind_since(c: &mut AnyConnection, site: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT MIN(g.silent_since_ms) FROM gateway_sites s JOIN gateway_heartbeats g ON g.gateway = s.gateway \
         WHERE s.site = $1 AND g.silent_since_ms IS NOT NULL",
    )
    .bind(site)
    .fetch_one(&mut *c)
    .await?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn hb(sites: &[&str], interval_s: u32) -> Heartbeat {
        Heartbeat {
            sites: sites.iter().map(|s| s.to_string()).collect(),
            interval_s,
            broker_connected: true,
            buffered: 0,
            alarms_queued: 0,
            last_frame_ms: None,
        }
    }

    #[test]
    fn heartbeats_are_checked_field_by_field() {
        assert!(hb(&["s1"], 30).validate().is_ok());
        let e = |h: Heartbeat| h.validate().unwrap_err().to_string();
        assert!(e(hb(&[], 30)).contains("sites"));
        assert!(e(hb(&["s 1"], 30)).contains("sites[0]"));
        assert!(e(hb(&["s1"], 4)).contains("interval_s"));
        assert!(e(hb(&["s1"], 3601)).contains("interval_s"));
        let many: Vec<String> = (0..257).map(|i| format!("s{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(e(hb(&refs, 30)).contains("sites"));
        assert!(
            serde_json::from_str::<Heartbeat>(
                r#"{"sites":["s1"],"interval_s":30,"broker_connected":true,"x":1}"#
            )
            .is_err()
        );
    }
}
