//! 举报 moderation. An anonymous report from a venue's public 安全码 page is
//! held in `public_reports` until an officer judges it: accepted, it
//! becomes a hazard in the official ledger (DETECTED, source `report`)
//! under a category of the catalogue; rejected, it stays on record with
//! the reason. Until then it changes nothing anyone else sees: not the
//! ledger, not the venue's public code, not the reports. Without this a
//! form anyone can post to wrote straight into the official ledger and
//! turned a venue's public code yellow.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::db::{self, Columns};
use crate::error::{Error, Result};

/// The report categories the public form offers and an officer files
/// under: `fire` (消防), `gas` (燃气), `electrical` (用电), `crowd` (人员密集),
/// `other`.
pub const CATEGORIES: [&str; 5] = ["fire", "gas", "electrical", "crowd", "other"];

/// The longest description kept.
pub const MAX_DESCRIPTION: usize = 2000;

/// The states of a report.
pub const STATES: [&str; 3] = ["PENDING", "ACCEPTED", "REJECTED"];

crate::db::row! {
    /// A report as an officer sees it (there is no reporter to show).
    #[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
    pub struct PublicReport {
        /// Report id.
        pub id: String,
        /// The venue whose page it came from.
        pub venue_id: String,
        /// The venue's region.
        pub region_id: String,
        /// The category the reporter chose (one of the catalogue).
        pub category: String,
        /// What was seen.
        pub description: String,
        /// When it arrived, Unix ms.
        pub received_ms: i64,
        /// `PENDING`, `ACCEPTED` or `REJECTED`.
        pub state: String,
        /// When it was judged.
        pub decided_ms: Option<i64>,
        /// Who judged it (`person:<id>`).
        pub decided_by: Option<String>,
        /// Why.
        pub reason: Option<String>,
        /// The hazard an accepted report became.
        pub hazard_id: Option<String>,
    }
}

fn check_category(key: &str, category: &str) -> Result<()> {
    if CATEGORIES.contains(&category) {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "{key}: unknown category {category:?}; use one of {CATEGORIES:?}"
        )))
    }
}

/// Takes a report into the queue; returns its id. 404 for an unknown
/// venue; 422 for a category outside the catalogue or an empty or
/// oversized description.
pub async fn receive(
    c: &mut AnyConnection,
    now: i64,
    venue: &str,
    category: &str,
    description: &str,
) -> Result<String> {
    check_category("category", category)?;
    let text = description.trim();
    if text.is_empty() {
        return Err(Error::Invalid("description: say what you saw".into()));
    }
    crate::text::free("description", text, MAX_DESCRIPTION)?;
    let region: String = sqlx::query_scalar("SELECT region_id FROM venues WHERE id = $1")
        .bind(venue)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| Error::NotFound {
            what: "venue",
            id: venue.into(),
        })?;
    let id = db::new_id();
    sqlx::query(
        "INSERT INTO public_reports (id, venue_id, region_id, category, description, received_ms, state) \
         VALUES ($1, $2, $3, $4, $5, $6, 'PENDING')",
    )
    .bind(&id)
    .bind(venue)
    .bind(&region)
    .bind(category)
    .bind(text)
    .bind(now)
    .execute(&mut *c)
    .await?;
    db::audit(
        c,
        now,
        "public",
        "public_report",
        &id,
        None,
        "PENDING",
        category,
    )
    .await?;
    Ok(id)
}

/// Reports, oldest first, optionally of one state (422 for a state that
/// does not exist); at most 1000.
pub async fn list(c: &mut AnyConnection, state: Option<&str>) -> Result<Vec<PublicReport>> {
    if let Some(s) = state
        && !STATES.contains(&s)
    {
        return Err(Error::Invalid(format!(
            "state: unknown {s:?}; use one of {STATES:?}"
        )));
    }
    let cols = PublicReport::select();
    Ok(match state {
        Some(s) => sqlx::query_as(&format!(
            "SELECT {cols} FROM public_reports WHERE state = $1 ORDER BY received_ms, id LIMIT 1000"
        ))
        .bind(s)
        .fetch_all(&mut *c)
        .await?,
        None => {
            sqlx::query_as(&format!(
                "SELECT {cols} FROM public_reports ORDER BY received_ms, id LIMIT 1000"
            ))
            .fetch_all(&mut *c)
            .await?
        }
    })
}

/// One report (404 when unknown).
pub async fn get(c: &mut AnyConnection, id: &str) -> Result<PublicReport> {
    sqlx::query_as(&format!(
        "SELECT {} FROM public_reports WHERE id = $1",
        PublicReport::select()
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| Error::NotFound {
        what: "public report",
        id: id.into(),
    })
}

/// An officer's judgement.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// The registry person judging.
    pub person: &'a str,
    /// Accept into the ledger, or reject.
    pub accept: bool,
    /// The category to file an accepted report under (default: the
    /// reporter's); one of [`CATEGORIES`].
    pub category: Option<&'a str>,
    /// Why.
    pub reason: &'a str,
}

/// Judges a PENDING report (409 otherwise): accepted, it becomes a hazard
/// (deduplicated with an open hazard of the venue and category, as any
/// hazard); returns that hazard. Audited.
pub async fn decide(
    c: &mut AnyConnection,
    now: i64,
    id: &str,
    d: &Decision<'_>,
) -> Result<Option<String>> {
    crate::registry::check_person(c, "person_id", d.person).await?;
    crate::text::free("reason", d.reason, 2000)?;
    let r = get(c, id).await?;
    if r.state != "PENDING" {
        return Err(Error::Conflict(format!(
            "report {id} was already judged ({})",
            r.state
        )));
    }
    let actor = format!("person:{}", d.person);
    let hazard = if d.accept {
        let category = d.category.unwrap_or(&r.category);
        check_category("category", category)?;
        let title: String = r
            .description
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        let (h, _) = crate::work::create_hazard(
            c,
            now,
            &actor,
            crate::work::NewHazard {
                venue_id: r.venue_id.clone(),
                region_id: None,
                category: category.to_string(),
                title,
                source: "report".into(),
                source_ref: Some(r.id.clone()),
            },
        )
        .await?;
        Some(h)
    } else {
        None
    };
    let to = if d.accept { "ACCEPTED" } else { "REJECTED" };
    // The state in the WHERE: another officer judging at the same moment
    // changes nothing here, and this one is told.
    let n = sqlx::query(
        "UPDATE public_reports SET state = $1, decided_ms = $2, decided_by = $3, reason = $4, hazard_id = $5 \
         WHERE id = $6 AND state = 'PENDING'",
    )
    .bind(to)
    .bind(now)
    .bind(&actor)
    .bind(d.reason)
    .bind(hazard.clone())
    .bind(id)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(Error::Conflict(format!("report {id} was judged meanwhile")));
    }
    db::audit(
        c,
        now,
        &actor,
        "public_report",
        id,
        Some("PENDING"),
        to,
        d.reason,
    )
    .await?;
    Ok(hazard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::ReportCategory;

    #[test]
    fn the_catalogue_and_the_schema_agree() {
        let all = [
            ReportCategory::Fire,
            ReportCategory::Gas,
            ReportCategory::Electrical,
            ReportCategory::Crowd,
            ReportCategory::Other,
        ];
        assert_eq!(all.map(|c| c.as_str()), CATEGORIES);
    }
}
