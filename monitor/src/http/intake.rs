//! The gateways' side: alarm events, heartbeats, and the providers' callbacks.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{bearer, body, parse};
use crate::error::{Error, Result};
use crate::{App, intake};

#[utoipa::path(post, path = "/api/v1/alarms", tag = "intake", operation_id = "alarm",
    summary = "Alarm intake from the gateway (idempotent on event_id)",
    description = "Takes a gateway token (`[[auth.gateways]]` or `auth.intake_tokens`); a gateway token bound to sites may only send events of those sites (403).",
    security(("intake_token" = [])),
    request_body(content = crate::openapi::AlarmEvent, content_type = "application/json"),
    responses(
        (status = 200, description = "Stored (or a duplicate of a stored event)", body = crate::intake::Outcome),
        crate::openapi::IntakeErrors,
    ))]
pub(super) async fn alarm(
    State(app): State<App>,
    h: HeaderMap,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let started = std::time::Instant::now();
    let ev = match admit(&app, &h, b) {
        Ok(ev) => ev,
        Err(e) => {
            let out: Result<intake::Outcome> = Err(e);
            crate::metrics::count_intake(&app.metrics, &out, started.elapsed());
            return out.map(|_| StatusCode::OK.into_response());
        }
    };
    // The intake worker counts what it takes (also when this request is
    // gone by then).
    let out = app.intake.accept(ev).await?;
    Ok((StatusCode::OK, axum::Json(out)).into_response())
}

/// The event of a request its credential may send; refusals name why.
fn admit(
    app: &App,
    h: &HeaderMap,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<anquan_protocol::AlarmEvent> {
    let grant = app.gatekeeper.admit(bearer(h)?)?;
    let b = body(b, app.cfg.server.max_body_bytes)?;
    let ev = intake::decode(&b)?;
    grant.allow_site(ev.site.as_str())?;
    Ok(ev)
}

#[utoipa::path(post, path = "/api/v1/gateways/{id}/heartbeat", tag = "intake", operation_id = "gateway_heartbeat",
    summary = "A gateway's heartbeat: the sites it serves and its state (site liveness)",
    description = "Takes a gateway token; a token bound to a gateway (`[[auth.gateways]]`) may report only for that gateway (its `name`) and its sites (403). Two intervals without a heartbeat make the gateway silent: an orange `site.gateway_offline` warning for each site it serves, and `no_data` on their venues until it is heard again.",
    security(("intake_token" = [])),
    params(("id" = String, Path, description = "The gateway's id (its `gateway.id`)")),
    request_body(content = crate::liveness::Heartbeat, content_type = "application/json"),
    responses(
        (status = 200, description = "Recorded", body = crate::liveness::Beat),
        crate::openapi::IntakeErrors,
    ))]
pub(super) async fn heartbeat(
    State(app): State<App>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<crate::liveness::Beat>> {
    let out = heartbeat_in(&app, &h, &id, b).await;
    let result = match &out {
        Ok(_) => Some("accepted"),
        Err(Error::Unauthorized(_) | Error::Forbidden(_)) => Some("refused"),
        Err(Error::Invalid(_) | Error::BadRequest(_) | Error::TooLarge(_)) => Some("invalid"),
        Err(_) => None,
    };
    if let Some(r) = result {
        app.metrics.heartbeats.with_label_values(&[r]).inc();
    }
    if let Err(e) = &out {
        tracing::warn!(gateway = %id, error = %e, "heartbeat refused");
    }
    Ok(axum::Json(out?))
}

pub(super) async fn heartbeat_in(
    app: &App,
    h: &HeaderMap,
    id: &str,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<crate::liveness::Beat> {
    let grant = app.gatekeeper.admit(bearer(h)?)?;
    grant.allow_gateway(id)?;
    let b = body(b, app.cfg.server.max_body_bytes)?;
    let hb: crate::liveness::Heartbeat = parse(&b)?;
    for s in &hb.sites {
        grant.allow_site(s)?;
    }
    crate::liveness::beat(app, id, &hb).await
}

#[utoipa::path(post, path = "/callbacks/{provider}/{kind}/{token}", tag = "intake", operation_id = "callback",
    summary = "A provider's receipts or SMS replies (the URL given in its console)",
    description = "Alibaba Cloud SMS delivery reports (`aliyun-sms/report`, SmsReport) and replies (`aliyun-sms/reply`, SmsUp), voice call reports (`aliyun-voice/report`, VoiceReport; the key 1 acknowledges), Tencent Cloud SMS status reports (`tencent-sms/report`) and replies (`tencent-sms/reply`). The path token is `notify.callbacks.token` (the providers do not sign callbacks); without one configured every callback is 404. A reply's person is found by the sender's number, the warning by the code.",
    params(
        ("provider" = String, Path, description = "`aliyun-sms`, `aliyun-voice` or `tencent-sms`"),
        ("kind" = String, Path, description = "`report` or `reply`"),
        ("token" = String, Path, description = "`notify.callbacks.token`"),
    ),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 200, description = "Taken: the answer the provider expects (`{\"code\":0,…}` or `{\"result\":0,…}`)", body = Object),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn callback(
    State(app): State<App>,
    Path((provider, kind, token)): Path<(String, String, String)>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>> {
    crate::callbacks::authorize(&app, &token)?;
    let b = body(b, app.cfg.server.max_body_bytes)?;
    let done = crate::callbacks::handle(&app, &provider, &kind, &b).await?;
    tracing::info!(%provider, %kind, ?done, "provider callback");
    Ok(axum::Json(crate::callbacks::answer(&provider)))
}
