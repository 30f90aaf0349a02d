//! 任务督导: recurring task templates (日巡查, 周排查, 月调度, monthly grid
//! visit, 双随机 sampling). Each period (CST day, ISO week from Monday, or
//! month) every venue in the template's region (or `sample` venues drawn at
//! random) gets one task, assigned to that venue's own person in
//! `assignee_role`: its principal or safety officer (`[[seed.venue_people]]`)
//! for those roles, its grid's officer for `grid_officer`; when the venue has
//! nobody in that role (or for the rota's roles: `county`, `city`, …), the
//! first person on duty in the role for the venue's region (nearest up the
//! regions). Due `due_h` hours after the
//! period starts. Generation is keyed on (template, period, venue), so it
//! happens once across restarts and replicas; the tasks then walk the
//! reminder ladder like any other.

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, TimeZone};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::config::{ConfigError, check_role};
use crate::error::Result;
use crate::{App, db, work};

/// `[[task_templates]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Id.
    pub id: String,
    /// `patrol`, `inspection`, `grid_visit`, `dispatch`, `sampling`.
    pub kind: String,
    /// Title of the generated tasks.
    pub title: String,
    /// `day`, `week` or `month`.
    pub every: String,
    /// Venues in this region and below.
    pub region_id: String,
    /// Role of the assignee (first on duty for the venue's region).
    pub assignee_role: String,
    /// Deadline, hours after the period starts.
    pub due_h: u64,
    /// Only this many venues, drawn at random each period (双随机).
    #[serde(default)]
    pub sample: Option<u32>,
}

impl Template {
    /// Checks the values.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !anquan_protocol::Id::is_valid(&self.id) {
            return Err(ConfigError::new(
                format!("{key}.id"),
                "must match [A-Za-z0-9_-]{1,64}",
            ));
        }
        if !["patrol", "inspection", "grid_visit", "dispatch", "sampling"]
            .contains(&self.kind.as_str())
        {
            return Err(ConfigError::new(
                format!("{key}.kind"),
                "must be patrol, inspection, grid_visit, dispatch or sampling",
            ));
        }
        if !["day", "week", "month"].contains(&self.every.as_str()) {
            return Err(ConfigError::new(
                format!("{key}.every"),
                "must be day, week or month",
            ));
        }
        check_role(&format!("{key}.assignee_role"), &self.assignee_role)?;
        if self.due_h == 0 {
            return Err(ConfigError::new(
                format!("{key}.due_h"),
                "must be at least 1",
            ));
        }
        if self.sample == Some(0) {
            return Err(ConfigError::new(
                format!("{key}.sample"),
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The period containing `now_ms` for `every`: its key and start (Unix ms),
/// in CST (UTC+8).
pub fn period(every: &str, now_ms: i64) -> Option<(String, i64)> {
    let tz = FixedOffset::east_opt(8 * 3600)?;
    let local = tz.timestamp_millis_opt(now_ms).single()?.date_naive();
    let start: NaiveDate = match every {
        "day" => local,
        "week" => local - Duration::days(i64::from(local.weekday().num_days_from_monday())),
        "month" => NaiveDate::from_ymd_opt(local.year(), local.month(), 1)?,
        _ => return None,
    };
    let key = match every {
        "month" => format!("{:04}-{:02}", start.year(), start.month()),
        "week" => {
            let w = start.iso_week();
            format!("{:04}-W{:02}", w.year(), w.week())
        }
        _ => start.format("%Y-%m-%d").to_string(),
    };
    let ms = tz
        .from_local_datetime(&start.and_hms_opt(0, 0, 0)?)
        .single()?
        .timestamp_millis();
    Some((key, ms))
}

/// Generates the tasks of the current periods. Returns how many.
pub async fn tick(app: &App, now: i64) -> Result<usize> {
    let mut made = 0;
    for t in &app.cfg.task_templates {
        let Some((key, start)) = period(&t.every, now) else {
            continue;
        };
        let mut tx = app.db.begin().await?;
        // One marker row per (template, period): the first replica to
        // insert it generates the period's tasks.
        let first = sqlx::query(
            "INSERT INTO task_runs (template_id, period, venue_id, task_id, created_ms) \
             VALUES ($1, $2, '*', NULL, $3) ON CONFLICT (template_id, period, venue_id) DO NOTHING",
        )
        .bind(&t.id)
        .bind(&key)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if first != 1 {
            continue;
        }
        let regions = crate::reports::subtree(&mut tx, &t.region_id).await?;
        let rows = sqlx::query("SELECT id, region_id FROM venues ORDER BY id")
            .fetch_all(&mut *tx)
            .await?;
        let mut venues = Vec::new();
        for r in rows {
            let region: String = r.try_get("region_id")?;
            if regions.contains(&region) {
                venues.push((r.try_get::<String, _>("id")?, region));
            }
        }
        if let Some(n) = t.sample {
            // 双随机: draw without replacement.
            let mut drawn = Vec::new();
            while drawn.len() < n as usize && !venues.is_empty() {
                let r = uuid::Uuid::new_v4().as_u128();
                drawn.push(venues.swap_remove({
                    let n = venues.len() as u128;
                    (r % n) as usize
                }));
            }
            venues = drawn;
        }
        let mut dir = crate::directory::Directory::new();
        let ids: Vec<String> = venues.iter().map(|(v, _)| v.clone()).collect();
        let regions: Vec<String> = venues.iter().map(|(_, r)| r.clone()).collect();
        dir.load(&mut tx, &ids, &[], &[], &regions, now).await?;
        let own = match t.assignee_role.as_str() {
            r if crate::policy::VENUE_ROLES.contains(&r) => {
                Some(crate::policy::Selector::Venue(r.to_string()))
            }
            "grid_officer" => Some(crate::policy::Selector::Grid),
            _ => None,
        };
        for (venue, region) in venues {
            let mut people = own
                .as_ref()
                .map(|s| dir.resolve(s, Some(&venue), now))
                .unwrap_or_default();
            if people.is_empty() {
                people = dir.nearest_on_duty(Some(&region), &t.assignee_role, now);
            }
            if t.sample.is_some() && people.len() > 1 {
                // … and a random inspector.
                let r = uuid::Uuid::new_v4().as_u128();
                let i = (r % people.len() as u128) as usize;
                people.swap(0, i);
            }
            let task = work::create_task(
                &mut tx,
                now,
                &format!("system:template:{}", t.id),
                work::NewTask {
                    kind: t.kind.clone(),
                    title: format!("{} ({key})", t.title),
                    venue_id: Some(venue.clone()),
                    region_id: Some(region),
                    warning_id: None,
                    level: None,
                    assignee_id: people.first().cloned(),
                    due_ms: Some(start + t.due_h as i64 * 3_600_000),
                },
            )
            .await?;
            sqlx::query(
                "INSERT INTO task_runs (template_id, period, venue_id, task_id, created_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&t.id)
            .bind(&key)
            .bind(&venue)
            .bind(&task)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            made += 1;
        }
        db::audit(
            &mut tx,
            now,
            "system:scheduler",
            "task_template",
            &t.id,
            None,
            &key,
            &format!("generated {} task(s)", made),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_cst() {
        // 2026-11-30T16:00Z = Tuesday 2026-12-01 00:00 CST.
        let t = 1_796_054_400_000;
        assert_eq!(period("day", t), Some(("2026-12-01".into(), t)));
        assert_eq!(period("day", t - 1).map(|p| p.0), Some("2026-11-30".into()));
        assert_eq!(period("month", t), Some(("2026-12".into(), t)));
        let (k, s) = period("week", t).unwrap();
        assert_eq!(k, "2026-W49");
        assert_eq!(s, t - 86_400_000, "the week starts on Monday");
        assert_eq!(period("year", t), None);
    }
}
