//! No token: the 安全码 page, 举报 into the moderation queue; and its judgement.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::Caller;
use super::{Q, body, parse};
use crate::App;
use crate::error::Result;
use crate::web::auth;

#[utoipa::path(get, path = "/public/venues/{id}", tag = "public", operation_id = "public_venue",
    summary = "Public 文旅安全码 page of a venue (HTML, no token, no personal data)",
    params(("id" = String, Path, description = "Venue id")),
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
        crate::openapi::PublicReadErrors,
    ))]
pub(super) async fn public_venue(
    State(app): State<App>,
    crate::web::UiLang(lang): crate::web::UiLang,
    Path(id): Path<String>,
) -> Result<Response> {
    Ok(crate::web::public::venue_page(&app, lang, &id)
        .await?
        .into_response())
}

/// A public hazard report (no identity is taken or kept).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PublicReportBody {
    /// The venue (from its 安全码 page).
    venue_id: String,
    /// What kind of hazard.
    #[schema(example = "fire")]
    category: crate::openapi::ReportCategory,
    /// What was seen.
    #[schema(min_length = 1, max_length = 2000)]
    description: String,
}

#[utoipa::path(post, path = "/public/reports", tag = "public", operation_id = "public_report",
    summary = "A public hazard report (no token; the reporter is not stored; rate-limited per client address)",
    description = "The report waits for an officer's judgement (`/api/v1/public-reports`); only an accepted report enters the hazard ledger and may colour the venue's public code.",
    request_body(content = PublicReportBody, content_type = "application/json"),
    responses(
        (status = 202, description = "Received, waiting for judgement", body = PublicReceipt),
        crate::openapi::PublicWriteErrors,
    ))]
pub(super) async fn public_report(
    State(app): State<App>,
    client: crate::web::pages::ClientIp,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<PublicReceipt>)> {
    app.public_limit.admit(&client.0)?;
    let r: PublicReportBody = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let mut tx = app.db.begin().await?;
    let id = crate::moderation::receive(
        &mut tx,
        app.now_ms(),
        &r.venue_id,
        r.category.as_str(),
        &r.description,
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(PublicReceipt {
            received: true,
            report_id: id,
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/public-reports", tag = "hazards", operation_id = "list_public_reports",
    summary = "Anonymous reports, oldest first (the moderation queue with `state=PENDING`)",
    security(("api_token" = []), ("session" = [])),
    params(("state" = Option<crate::openapi::ReportState>, Query, description = "Only reports in this state")),
    responses(
        (status = 200, description = "The reports", body = [crate::moderation::PublicReport]),
        crate::openapi::ReadErrors,
    ))]
pub(super) async fn list_public_reports(
    State(app): State<App>,
    caller: Caller,
    Query(q): Q,
) -> Result<axum::Json<Vec<crate::moderation::PublicReport>>> {
    caller.require(
        |r| auth::may_judge_reports(r) || r == "admin",
        "read anonymous reports",
    )?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(
        crate::moderation::list(&mut c, q.get("state").map(String::as_str)).await?,
    ))
}

/// An officer's judgement of an anonymous report.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReportDecision {
    /// The person judging (registry id).
    /// Required with an operator token; a personal credential (session or
    /// personal token) acts as its own person and may leave it out.
    #[serde(default)]
    person_id: Option<String>,
    /// Accept into the hazard ledger, or reject.
    accept: bool,
    /// The category to file it under (default: the reporter's).
    #[serde(default)]
    category: Option<crate::openapi::ReportCategory>,
    /// Why.
    reason: String,
}

#[utoipa::path(post, path = "/api/v1/public-reports/{id}/decide", tag = "hazards", operation_id = "decide_public_report",
    summary = "Judge an anonymous report: accepted, it becomes a DETECTED hazard; rejected, it stays on record",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Report id")),
    request_body(content = ReportDecision, content_type = "application/json"),
    responses(
        (status = 200, description = "Judged", body = crate::moderation::PublicReport),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn decide_public_report(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<crate::moderation::PublicReport>> {
    caller.require(auth::may_judge_reports, "judge anonymous reports")?;
    let d: ReportDecision = parse(&body(b, app.cfg.server.max_body_bytes)?)?;
    let person = caller.acts_as("person_id", d.person_id.as_deref())?;
    let mut tx = app.db.begin().await?;
    crate::moderation::decide(
        &mut tx,
        app.now_ms(),
        &id,
        &crate::moderation::Decision {
            person: &person,
            accept: d.accept,
            category: d
                .category
                .as_ref()
                .map(crate::openapi::ReportCategory::as_str),
            reason: &d.reason,
        },
    )
    .await?;
    let out = crate::moderation::get(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(axum::Json(out))
}

/// The receipt of a public report.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PublicReceipt {
    /// Always true.
    received: bool,
    /// The report, waiting for an officer's judgement.
    report_id: String,
}
