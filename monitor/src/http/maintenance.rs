//! Maintenance windows ([`crate::maintenance`]): set, list, end early.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use super::caller::Caller;
use super::{Q, body, parse};
use crate::App;
use crate::error::{Error, Result};
use crate::maintenance::{self, NewWindow, Window};

/// Who may set and end windows: the venue's own people (an enterprise
/// account, for the venues it is a person of) and the officers over the
/// venue's region; not the admin, who runs the system and takes no part in
/// the workflow. A window silences calls: letting anyone of a region set
/// one on any venue would be the cross-site suppression of S1 again.
pub(crate) async fn may_hold(caller: &Caller, c: &mut AnyConnection, venue: &str) -> Result<()> {
    caller.require(may_set, "set maintenance windows")?;
    let region = crate::registry::venue_region(c, venue).await?;
    if region.is_none() {
        return Err(Error::NotFound {
            what: "venue",
            id: venue.into(),
        });
    }
    caller.in_scope(c, region.as_deref()).await?;
    if let Some(s) = caller.person()
        && s.role == "enterprise"
    {
        let person = s.person()?;
        let mine: Option<String> = sqlx::query_scalar(
            "SELECT person_id FROM venue_people WHERE venue_id = $1 AND person_id = $2",
        )
        .bind(venue)
        .bind(person)
        .fetch_optional(&mut *c)
        .await?;
        if mine.is_none() {
            return Err(Error::Forbidden(format!(
                "venue {venue:?} is not one of yours: an enterprise sets windows on its own venues"
            )));
        }
    }
    Ok(())
}

/// The roles that may set windows (for their venues, see [`may_hold`]).
pub fn may_set(role: &str) -> bool {
    matches!(role, "enterprise" | "grid" | "county" | "city")
}

#[utoipa::path(get, path = "/api/v1/maintenance", tag = "warnings", operation_id = "list_maintenance",
    summary = "Maintenance windows not over yet (current and planned), soonest end first; `all=true` adds those over",
    security(("api_token" = []), ("session" = [])),
    params(("all" = Option<bool>, Query, description = "Also the windows that are over (newest first)")),
    responses(
        (status = 200, description = "The windows the caller's region covers, with the warnings each holds", body = [crate::rows::ListedWindow]),
        crate::openapi::ReadErrors,
    ))]
pub(super) async fn list_maintenance(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<crate::rows::ListedWindow>>> {
    let all = match q.get("all").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Error::Invalid(format!(
                "all: {other:?} is not true or false"
            )));
        }
    };
    let mut c = app.db.acquire().await?;
    let scope = caller.scope(&mut c).await?;
    let mut windows = maintenance::list(&mut c, app.now_ms(), all).await?;
    windows.retain(|w| scope.sees(Some(&w.region_id)));
    Ok(axum::Json(maintenance::with_holds(&mut c, windows).await?))
}

#[utoipa::path(post, path = "/api/v1/maintenance", tag = "warnings", operation_id = "set_maintenance",
    summary = "Set a maintenance window on a device or a venue: its alarms are recorded and shown, nobody is called until it ends",
    security(("api_token" = []), ("session" = [])),
    request_body(content = NewWindow, content_type = "application/json"),
    responses(
        (status = 201, description = "Set", body = Window),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn set_maintenance(
    State(app): State<App>,
    caller: Caller,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Window>)> {
    let w: NewWindow = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let mut tx = app.db.begin().await?;
    may_hold(&caller, &mut tx, &w.venue_id).await?;
    let win = maintenance::create(&mut tx, app.now_ms(), &actor(&caller)?, w).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, axum::Json(win)))
}

/// Why a window ends early.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EndWindow {
    /// Why (1 to 200 characters).
    #[schema(min_length = 1, max_length = 200)]
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/maintenance/{id}/end", tag = "warnings", operation_id = "end_maintenance",
    summary = "End a maintenance window now; alarms it held that are still active start calling",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Window id")),
    request_body(content = EndWindow, content_type = "application/json"),
    responses(
        (status = 200, description = "Ended", body = Window),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn end_maintenance(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Window>> {
    let e: EndWindow = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let mut tx = app.db.begin().await?;
    let w = maintenance::get(&mut tx, &id).await?;
    may_hold(&caller, &mut tx, &w.venue_id).await?;
    let w = maintenance::end(&mut tx, app.now_ms(), &id, &actor(&caller)?, &e.reason).await?;
    tx.commit().await?;
    Ok(axum::Json(w))
}

/// Who the audit trail names: the person of a personal credential, the
/// operator (by name when it has one) of a machine's.
fn actor(caller: &Caller) -> Result<String> {
    match caller.person() {
        Some(s) => Ok(format!("person:{}", s.person()?)),
        None => Ok(caller.audit_name()),
    }
}
