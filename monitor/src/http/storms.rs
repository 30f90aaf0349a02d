//! The members of a group warning (an alarm storm, [`crate::correlation`]).

use axum::extract::{Path, State};

use super::caller::Caller;
use crate::App;
use crate::correlation::GroupMember;
use crate::error::Result;
use crate::warnings;

#[utoipa::path(get, path = "/api/v1/warnings/{id}/members", tag = "warnings", operation_id = "warning_members",
    summary = "The alarms a group warning gathers (one cause: a site's power loss, one rule on many devices); empty for a warning of one alarm",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Warning id")),
    responses(
        (status = 200, description = "Members in the group first, then those that left", body = [GroupMember]),
        crate::openapi::LookupErrors,
    ))]
pub(super) async fn warning_members(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<GroupMember>>> {
    let mut c = app.db.acquire().await?;
    let w = warnings::get(&mut c, &id).await?;
    caller.sees_row(&mut c, &w.row).await?;
    Ok(axum::Json(crate::correlation::members(&mut c, &id).await?))
}
