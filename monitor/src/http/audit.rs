//! The audit trail and the notification deliveries.

use axum::extract::{Query, State};

use super::Q;
use super::caller::{self, Caller};
use crate::db::Columns;
use crate::error::Result;
use crate::rows::{AuditRow, Delivery};
use crate::{App, notify};

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", operation_id = "audit",
    summary = "The audit trail (at most 5000 rows, oldest first)",
    security(("api_token" = []), ("session" = [])),
    params(("entity_id" = Option<String>, Query, description = "Only rows of this entity")),
    responses(
        (status = 200, description = "Audit rows, oldest first", body = [crate::rows::AuditRow]),
        crate::openapi::ListErrors,
    ))]
pub(super) async fn audit(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<AuditRow>>> {
    caller.require(caller::may_read_records, "read the audit trail")?;
    Ok(axum::Json(
        sqlx::query_as(&format!(
            "SELECT {} FROM audit WHERE ($1 = '' OR entity_id = $1) ORDER BY id LIMIT 5000",
            AuditRow::select()
        ))
        .bind(q.get("entity_id").cloned().unwrap_or_default())
        .fetch_all(&app.db)
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/deliveries", tag = "audit", operation_id = "deliveries",
    summary = "Notification deliveries and their receipts",
    security(("api_token" = []), ("session" = [])),
    params(("subject_id" = Option<String>, Query, description = "Only deliveries about this warning or task")),
    responses(
        (status = 200, description = "Delivery rows, oldest first (at most 1000)", body = [crate::rows::Delivery]),
        crate::openapi::ListErrors,
    ))]
pub(super) async fn deliveries(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<Delivery>>> {
    caller.require(caller::may_read_records, "read the deliveries")?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(
        notify::list(&mut c, q.get("subject_id").map(String::as_str)).await?,
    ))
}
