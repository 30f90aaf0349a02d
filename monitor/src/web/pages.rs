//! Page and action handlers of the signed-in web. Every state-changing
//! handler checks, in this order: a session (401), the CSRF token (403),
//! the role policy of [`auth`] (403), then the same domain functions the
//! API uses (whose gates answer 409/422).

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::HAZARD;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::rows::DashboardWarning;
use crate::web::auth::{self, Session};
use crate::web::render::{base, page};
use crate::web::{UiLang, data, url_encode};
use crate::{App, reports, warnings, work};

/// `GET /`: to the dashboard.
pub async fn root() -> Redirect {
    Redirect::to("/web")
}

/// `GET /web/static/{file}`: the stylesheet and the script.
pub async fn asset(Path(file): Path<String>) -> Response {
    let (ct, body) = match file.as_str() {
        "app.css" => (
            "text/css; charset=utf-8",
            include_str!("../../web/static/app.css"),
        ),
        "app.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../web/static/app.js"),
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /web/static/vendor/leaflet/{file}`: the vendored Leaflet (BSD-2).
pub async fn leaflet(Path(file): Path<String>) -> Response {
    let (ct, body) = match file.as_str() {
        "leaflet.js" => (
            "text/javascript; charset=utf-8",
            include_str!("../../web/static/vendor/leaflet/leaflet.js"),
        ),
        "leaflet.css" => (
            "text/css; charset=utf-8",
            include_str!("../../web/static/vendor/leaflet/leaflet.css"),
        ),
        "LICENSE" => (
            "text/plain; charset=utf-8",
            include_str!("../../web/static/vendor/leaflet/LICENSE"),
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        body,
    )
        .into_response()
}

/// A local path to go back to (never another site).
fn local(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines and read `\` as `/` in URLs, so
        // `/\tevil` or `/\evil` would leave the site.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.into()
        }
        _ => "/web".into(),
    }
}

/// `GET /web/lang/{zh|en}?next=`: remembers the language in a cookie.
pub async fn set_lang(
    Path(code): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let code = if code == "en" { "en" } else { "zh" };
    (
        [(
            header::SET_COOKIE,
            format!("lang={code}; Path=/; Max-Age=31536000; SameSite=Lax"),
        )],
        Redirect::to(&local(q.get("next").map(String::as_str))),
    )
        .into_response()
}

pub use crate::web::client::ClientIp;

/// The pre-session CSRF cookie of the sign-in form (double submit): a
/// cross-site page cannot sign a victim's browser in to an attacker's
/// account, since it can neither read nor set this SameSite=Strict cookie.
const LOGIN_COOKIE: &str = "anquan_login";

fn login_cookie(app: &App, token: &str) -> String {
    let secure = if app.cfg.web.cookie_secure(&app.cfg.server.listen) {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{LOGIN_COOKIE}={token}; Path=/web/sign-in; HttpOnly; SameSite=Strict; Max-Age=3600{secure}"
    )
}

/// `GET /web/sign-in`.
pub async fn sign_in_form(
    State(app): State<App>,
    UiLang(lang): UiLang,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let token = auth::random_hex32()?;
    let html = page(
        "sign_in.html",
        base(lang, None),
        context! {
            next => local(q.get("next").map(String::as_str)),
            error => None::<String>,
            username => "",
            login_csrf => token.clone(),
        },
    )?;
    Ok(([(header::SET_COOKIE, login_cookie(&app, &token))], html).into_response())
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    login_csrf: String,
}

/// `POST /web/sign-in`: 303 to `next` with the session cookie; 401 with
/// the form again on a wrong name or password (the same message for both);
/// 429 over the rate limit.
pub async fn sign_in(
    State(app): State<App>,
    UiLang(lang): UiLang,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    Form(f): Form<SignInForm>,
) -> Result<Response> {
    let cookie = auth::cookie(&h, LOGIN_COOKIE).unwrap_or_default();
    if cookie.len() != 64 || !auth::ct_eq(cookie.as_bytes(), f.login_csrf.as_bytes()) {
        return Err(Error::Forbidden(
            "the sign-in form expired or was not sent from this site; reload it".into(),
        ));
    }
    let w = &app.cfg.web;
    let window = w.signin_window_s as i64 * 1000;
    let now = app.now_ms();
    let key = auth::limit_key(&f.username, &ip);
    let form_again = |status: StatusCode, error: String| -> Result<Response> {
        let html = page(
            "sign_in.html",
            base(lang, None),
            context! {
                next => local(f.next.as_deref()),
                error => Some(error),
                username => f.username.clone(),
                login_csrf => f.login_csrf.clone(),
            },
        )?;
        Ok((status, html).into_response())
    };
    // The try is counted before the password is checked: attempts in
    // flight cannot all be verified before the first failure lands.
    if !app
        .limiter
        .reserve(&key, now, w.signin_max_failures, window)
    {
        tracing::warn!(user = %f.username, %ip, "sign-in refused: too many failures for this user from this address");
        app.metrics
            .web_signins
            .with_label_values(&["refused"])
            .inc();
        let minutes = w.signin_window_s.div_ceil(60).to_string();
        let msg = crate::web::i18n::text(lang, "signin_locked").replace("{minutes}", &minutes);
        let mut r = form_again(StatusCode::TOO_MANY_REQUESTS, msg)?;
        r.headers_mut().insert(
            header::RETRY_AFTER,
            axum::http::HeaderValue::from(w.signin_window_s),
        );
        return Ok(r);
    }
    match auth::sign_in(&app, &f.username, &f.password).await {
        Ok(Some(raw)) => {
            app.limiter.clear(&key);
            app.metrics.web_signins.with_label_values(&["ok"]).inc();
            Ok((
                StatusCode::SEE_OTHER,
                [
                    (header::SET_COOKIE, auth::session_cookie(&app, &raw)),
                    (header::LOCATION, local(f.next.as_deref())),
                ],
            )
                .into_response())
        }
        Ok(None) => {
            app.metrics.web_signins.with_label_values(&["failed"]).inc();
            tracing::info!(user = %f.username, %ip, "sign-in failed");
            form_again(
                StatusCode::UNAUTHORIZED,
                crate::web::i18n::text(lang, "signin_failed"),
            )
        }
        Err(Error::TooMany(_)) => {
            // The gate is full: the password was not checked, so the try
            // is not a failure.
            app.limiter.refund(&key);
            app.metrics.web_signins.with_label_values(&["busy"]).inc();
            tracing::warn!(user = %f.username, %ip, "sign-in refused: every verification slot is taken");
            let mut r = form_again(
                StatusCode::TOO_MANY_REQUESTS,
                crate::web::i18n::text(lang, "signin_busy"),
            )?;
            r.headers_mut()
                .insert(header::RETRY_AFTER, axum::http::HeaderValue::from(2u32));
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

fn csrf_of<'a>(h: &'a HeaderMap, form: Option<&'a HashMap<String, String>>) -> Option<&'a str> {
    h.get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| form.and_then(|f| f.get("csrf")).map(String::as_str))
}

/// `POST /web/sign-out`.
pub async fn sign_out(
    State(app): State<App>,
    s: Session,
    h: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response> {
    s.check_csrf(csrf_of(&h, Some(&f)))?;
    if let Some(raw) = auth::cookie(&h, auth::SESSION_COOKIE) {
        auth::sign_out(&app, raw).await?;
    }
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, auth::session_cookie(&app, "")),
            (header::LOCATION, "/web/sign-in".to_string()),
        ],
    )
        .into_response())
}

async fn dashboard_data(
    app: &App,
    s: &Session,
) -> Result<(Vec<DashboardWarning>, Vec<data::VenueView>)> {
    let mut c = app.db.acquire().await?;
    let scope = data::Scope::of(&mut c, s).await?;
    let mut ws = data::active_warnings(&mut c, s.lang, app.now_ms()).await?;
    ws.retain(|w| scope.sees_row(&w.row));
    let vs = data::venues(&mut c, &scope).await?;
    Ok((ws, vs))
}

/// 403 unless the session's scope covers `region`.
async fn in_scope(c: &mut sqlx::AnyConnection, s: &Session, region: Option<&str>) -> Result<()> {
    let scope = data::Scope::of(c, s).await?;
    s.require(scope.sees(region), "act outside its region")
}

/// The region of a warning (404 if there is none).
async fn warning_region(app: &App, id: &str) -> Result<Option<String>> {
    let mut c = app.db.acquire().await?;
    let w = data::warning_row(&mut c, id, crate::messages::Lang::Zh, app.now_ms())
        .await?
        .ok_or(Error::NotFound {
            what: "warning",
            id: id.into(),
        })?;
    Ok(w.row.region_id)
}

/// `GET /web`: live alarms, counts by level, the risk map, devices.
pub async fn dashboard(State(app): State<App>, s: Session) -> Result<Html<String>> {
    let (ws, vs) = dashboard_data(&app, &s).await?;
    page(
        "dashboard.html",
        base(s.lang, Some(&s)),
        context! {
            nav => "dashboard",
            counts => data::counts_by_level(&ws),
            warnings => ws,
            venues => vs,
            may_ack => auth::may_ack(&s.role),
            now_ms => app.now_ms(),
            map_w => data::MAP_W,
            map_h => data::MAP_H,
        },
    )
}

/// `GET /web/api/dashboard`: the same as JSON.
#[utoipa::path(get, path = "/web/api/dashboard", tag = "web", operation_id = "web_dashboard",
    summary = "The signed-in user's dashboard: counts by level, warnings, venues (in the user's region)",
    security(("session" = [])),
    responses(
        (status = 200, description = "The dashboard", body = Dashboard),
        crate::openapi::SessionErrors,
    ))]
pub async fn dashboard_json(State(app): State<App>, s: Session) -> Result<axum::Json<Dashboard>> {
    let (ws, vs) = dashboard_data(&app, &s).await?;
    Ok(axum::Json(Dashboard {
        counts: data::counts_by_level(&ws),
        warnings: ws,
        venues: vs,
    }))
}

/// The dashboard's JSON: what the signed-in user's region shows.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    /// Open warnings by level.
    counts: crate::rows::LevelCounts,
    /// Open (not resolved) warnings, newest first.
    warnings: Vec<DashboardWarning>,
    /// The venues with color and devices.
    venues: Vec<data::VenueView>,
}

/// `POST /web/warnings/{id}/ack` (CSRF in `X-CSRF-Token` or the form).
#[utoipa::path(post, path = "/web/warnings/{id}/ack", tag = "web", operation_id = "web_ack",
    summary = "Acknowledge a warning as the signed-in user's registry person",
    security(("session" = [])),
    params(
        ("id" = String, Path, description = "Warning id"),
        ("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token (the page's `<meta name=\"csrf\">`), unless in the form's `csrf`"),
    ),
    request_body(content = crate::openapi::WebAckForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Acknowledged", body = crate::http::NewState),
        crate::openapi::SessionErrors,
    ))]
pub async fn ack(
    State(app): State<App>,
    s: Session,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Result<axum::Json<crate::http::NewState>> {
    s.check_csrf(csrf_of(&h, Some(&f)))?;
    s.require(auth::may_ack(&s.role), "acknowledge warnings")?;
    let region = warning_region(&app, &id).await?;
    in_scope(&mut *app.db.acquire().await?, &s, region.as_deref()).await?;
    let person = s.person()?;
    let note = f.get("note").map_or("", String::as_str);
    warnings::ack(
        &app,
        &id,
        person,
        warnings::Via::Web,
        &format!("web ({}) {note}", s.username),
    )
    .await?;
    Ok(axum::Json(crate::http::NewState {
        id,
        state: "ACKED".into(),
    }))
}

/// `POST /web/warnings/{id}/confirm` with `false_alarm=1|0`: false alarm →
/// RESOLVED; real → DISPOSING with a disposal task.
#[utoipa::path(post, path = "/web/warnings/{id}/confirm", tag = "web", operation_id = "web_confirm",
    summary = "Confirm a warning as the signed-in user's registry person",
    security(("session" = [])),
    params(
        ("id" = String, Path, description = "Warning id"),
        ("X-CSRF-Token" = Option<String>, Header, description = "The session's CSRF token (the page's `<meta name=\"csrf\">`), unless in the form's `csrf`"),
    ),
    request_body(content = crate::openapi::WebConfirmForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Confirmed", body = crate::http::warnings::Confirmed),
        crate::openapi::SessionErrors,
    ))]
pub async fn confirm(
    State(app): State<App>,
    s: Session,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Result<axum::Json<crate::http::warnings::Confirmed>> {
    s.check_csrf(csrf_of(&h, Some(&f)))?;
    s.require(auth::may_ack(&s.role), "confirm warnings")?;
    let region = warning_region(&app, &id).await?;
    in_scope(&mut *app.db.acquire().await?, &s, region.as_deref()).await?;
    let person = s.person()?;
    let false_alarm = f.get("false_alarm").is_some_and(|v| v == "1");
    let reason = f
        .get("reason")
        .filter(|r| !r.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| format!("confirmed in the web by {}", s.username));
    let task = warnings::confirm(&app, &id, person, false_alarm, None, &reason).await?;
    Ok(axum::Json(crate::http::warnings::Confirmed {
        id,
        state: if false_alarm { "RESOLVED" } else { "DISPOSING" }.into(),
        task_id: task,
    }))
}

/// `GET /web/map`: the 风险分布图.
pub async fn map(State(app): State<App>, s: Session) -> Result<Html<String>> {
    let mut c = app.db.acquire().await?;
    let scope = data::Scope::of(&mut c, &s).await?;
    let mut vs = data::venues(&mut c, &scope).await?;
    data::map_positions(&mut vs, app.cfg.web.map_datum);
    page(
        "map.html",
        base(s.lang, Some(&s)),
        context! {
            nav => "map",
            venues => vs,
            map_w => data::MAP_W,
            map_h => data::MAP_H,
            tile_url => app.cfg.web.map_tile_url.clone(),
            attribution => app.cfg.web.map_attribution.clone(),
        },
    )
}

/// `GET /web/hazards`: the 隐患台账 with filter and sort.
pub async fn hazards(
    State(app): State<App>,
    s: Session,
    Query(q): Query<data::LedgerQuery>,
) -> Result<Html<String>> {
    let mut c = app.db.acquire().await?;
    let scope = data::Scope::of(&mut c, &s).await?;
    let mut rows = data::hazards(&mut c, &q).await?;
    rows.retain(|r| scope.sees_row(r));
    let venues = data::venues(&mut c, &scope).await?;
    let qs = format!(
        "state={}&severity={}&venue={}&q={}&sort={}&dir={}",
        url_encode(&q.state),
        url_encode(&q.severity),
        url_encode(&q.venue),
        url_encode(&q.q),
        url_encode(&q.sort),
        url_encode(&q.dir)
    );
    page(
        "hazards.html",
        base(s.lang, Some(&s)),
        context! {
            nav => "hazards",
            rows => rows,
            f => q,
            qs => qs,
            venues => venues,
            now => app.now_ms(),
            states => ["DETECTED", "JUDGED", "FILED", "RECTIFYING", "INTERIM_CONTROL", "VERIFYING", "CLOSED", "ARCHIVED", "REOPENED"],
        },
    )
}

/// `GET /web/hazards.csv`: the filtered ledger as CSV.
pub async fn hazards_csv(
    State(app): State<App>,
    s: Session,
    Query(q): Query<data::LedgerQuery>,
) -> Result<Response> {
    let mut c = app.db.acquire().await?;
    let scope = data::Scope::of(&mut c, &s).await?;
    let mut rows = data::hazards(&mut c, &q).await?;
    rows.retain(|r| scope.sees_row(r));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"hazards.csv\"",
            ),
        ],
        data::ledger_csv(&rows),
    )
        .into_response())
}

/// The inputs each move asks for (the gates of `work::gate`, plus the
/// optional ones that belong to the step).
fn fields_for(from: &str, to: &str) -> &'static [&'static str] {
    match (from, to) {
        (_, "JUDGED") => &["severity"],
        ("DETECTED", "VERIFYING") => &["problem", "measures", "acceptance_record"],
        (_, "FILED") => &[
            "problem",
            "measures",
            "standard",
            "responsibility",
            "acceptance_unit",
            "owner_id",
            "due",
            "funds",
            "plan",
        ],
        (_, "INTERIM_CONTROL") => &["interim_watcher", "measures"],
        (_, "VERIFYING") => &["acceptance_record"],
        (_, "CLOSED") => &[
            "acceptance_unit",
            "acceptance_record",
            "signer",
            "penalty_case",
        ],
        _ => &[],
    }
}

/// `GET /web/hazards/{id}`: one hazard, its 四项清单, deadlines, evidence,
/// history, and only the actions its state allows for this role.
pub async fn hazard(
    State(app): State<App>,
    s: Session,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Html<String>> {
    let mut c = app.db.acquire().await?;
    let h = work::hazard(&mut c, &id).await?;
    in_scope(&mut c, &s, h.region_id.as_deref()).await?;
    let state = h.state.clone();
    let listed = h.listed_level.clone();
    let actions: Vec<Value> = HAZARD
        .next(&state)
        .into_iter()
        .filter(|to| auth::may_move_hazard(&s.role, &state, to))
        .filter(|to| *to != "CLOSED" || listed.as_deref().is_none_or(|l| l == s.role))
        .map(|to| json!({"to": to, "fields": fields_for(&state, to)}))
        .collect();
    let open = !matches!(state.as_str(), "CLOSED" | "ARCHIVED");
    let may_upload = open && s.role != "admin" && s.person_id.is_some();
    let history = data::history(&mut c, &id).await?;
    let photos = crate::evidence::list(&mut c, crate::evidence::Subject::Hazard, &id).await?;
    let venue = h.venue_id.clone();
    let venue_name: Option<String> = sqlx::query_scalar("SELECT name FROM venues WHERE id = $1")
        .bind(&venue)
        .fetch_optional(&mut *c)
        .await?;
    page(
        "hazard.html",
        base(s.lang, Some(&s)),
        context! {
            nav => "hazards",
            h => h,
            venue_name => venue_name.unwrap_or(venue),
            actions => actions,
            may_list => open && listed.is_none() && auth::may_list(&s.role),
            history => history,
            photos => photos,
            may_upload => may_upload,
            overdue => open && h.due_ms.is_some_and(|d| d < app.now_ms()),
            error => q.get("err").cloned(),
        },
    )
}

fn non_empty(f: &HashMap<String, String>, k: &str) -> Option<String> {
    f.get(k)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// `YYYY-MM-DD` → the end of that day in CST, Unix ms.
fn due_of(s: &str) -> Result<i64> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| Error::Invalid(format!("due: {s:?} is not a date (YYYY-MM-DD)")))?;
    let end = d
        .and_hms_opt(23, 59, 59)
        .ok_or_else(|| Error::Invalid("due: not a date".into()))?;
    Ok(end.and_utc().timestamp_millis() - 8 * 3_600_000)
}

/// `POST /web/hazards/{id}/transition` (form: `to`, `reason`, `csrf`, and
/// the step's fields). 403 when the role may not; a gate not met goes back
/// to the page with the reason.
pub async fn move_hazard(
    State(app): State<App>,
    s: Session,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response> {
    s.check_csrf(csrf_of(&h, Some(&f)))?;
    let to = f.get("to").cloned().unwrap_or_default();
    let row = {
        let mut c = app.db.acquire().await?;
        let row = work::hazard(&mut c, &id).await?;
        in_scope(&mut c, &s, row.region_id.as_deref()).await?;
        row
    };
    let from = row.state.as_str();
    s.require(
        auth::may_move_hazard(&s.role, from, &to),
        &format!("move a hazard {from} → {to}"),
    )?;
    if to == "CLOSED"
        && let Some(level) = row.listed_level.as_deref()
    {
        s.require(
            level == s.role,
            &format!("close (摘牌) a hazard listed by the {level} level"),
        )?;
    }
    let person = s.person()?.to_string();
    let fields = work::HazardFields {
        severity: non_empty(&f, "severity"),
        owner_id: non_empty(&f, "owner_id"),
        problem: non_empty(&f, "problem"),
        measures: non_empty(&f, "measures"),
        standard: non_empty(&f, "standard"),
        responsibility: non_empty(&f, "responsibility"),
        funds: non_empty(&f, "funds"),
        plan: non_empty(&f, "plan"),
        due_ms: non_empty(&f, "due").map(|d| due_of(&d)).transpose()?,
        acceptance_unit: non_empty(&f, "acceptance_unit"),
        acceptance_record: non_empty(&f, "acceptance_record"),
        signer: non_empty(&f, "signer"),
        interim_watcher: non_empty(&f, "interim_watcher"),
        penalty_case: f.get("penalty_case").map(|v| v == "on" || v == "1"),
    };
    let m = work::HazardMove {
        to: to.clone(),
        actor: person,
        reason: non_empty(&f, "reason").unwrap_or_else(|| format!("web ({})", s.username)),
        fields,
    };
    let back = format!("/web/hazards/{}", url_encode(&id));
    redirect_back(work::move_hazard(&app, &id, &m).await, &back, refused)
}

/// `POST /web/hazards/{id}/list`: 挂牌督办 by a county or city account.
pub async fn list_hazard(
    State(app): State<App>,
    s: Session,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response> {
    s.check_csrf(csrf_of(&h, Some(&f)))?;
    s.require(auth::may_list(&s.role), "list a hazard (挂牌督办)")?;
    {
        let mut c = app.db.acquire().await?;
        let row = work::hazard(&mut c, &id).await?;
        in_scope(&mut c, &s, row.region_id.as_deref()).await?;
    }
    let person = s.person()?;
    let reason = non_empty(&f, "reason").unwrap_or_else(|| format!("web ({})", s.username));
    let back = format!("/web/hazards/{}", url_encode(&id));
    let r = work::list_hazard(&app, &id, person, &reason).await;
    if r.is_ok() {
        app.events.publish(Event::Hazard(id.clone()));
    }
    redirect_back(r, &back, refused)
}

/// `GET /web/tasks`: open tasks (the enterprise sees its own) and the
/// latest 事项催办 reminder steps.
pub async fn tasks(
    State(app): State<App>,
    s: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Html<String>> {
    let mut c = app.db.acquire().await?;
    let own = s.role == "enterprise";
    let scope = data::Scope::of(&mut c, &s).await?;
    let mut ts = data::tasks(&mut c, s.person_id.as_deref(), own).await?;
    ts.retain(|t| scope.sees_row(t));
    /// A task with the moves this user may make.
    #[derive(serde::Serialize)]
    struct WithActions {
        #[serde(flatten)]
        t: data::TaskRow,
        actions: Vec<&'static str>,
    }
    let ts: Vec<WithActions> = ts
        .into_iter()
        .map(|t| {
            let mine = s.person_id.is_some() && t.assignee_id == s.person_id;
            let actions = crate::db::TASK
                .next(&t.state)
                .into_iter()
                .filter(|to| auth::may_move_task(&s.role, &t.state, to, mine))
                .collect();
            WithActions { t, actions }
        })
        .collect();
    let mut rs = data::reminders(&mut c).await?;
    rs.retain(|r| scope.sees_row(r));
    page(
        "tasks.html",
        base(s.lang, Some(&s)),
        context! { nav => "tasks", tasks => ts, reminders => rs, own => own, error => q.get("err").cloned() },
    )
}

/// `GET /web/public-reports`: the anonymous reports waiting for judgement
/// in the user's region.
pub async fn public_reports(
    State(app): State<App>,
    s: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Html<String>> {
    s.require(auth::may_judge_reports(&s.role), "judge public reports")?;
    let mut c = app.db.acquire().await?;
    let scope = data::Scope::of(&mut c, &s).await?;
    let names: HashMap<String, String> = data::venues(&mut c, &scope)
        .await?
        .iter()
        .map(|v| (v.id.clone(), v.name.clone()))
        .collect();
    let rows: Vec<Value> = crate::moderation::list(&mut c, Some("PENDING"))
        .await?
        .into_iter()
        .filter(|r| scope.sees(Some(&r.region_id)))
        .map(|r| {
            let name = names
                .get(&r.venue_id)
                .cloned()
                .unwrap_or_else(|| r.venue_id.clone());
            let mut v = json!(r);
            v["venue_name"] = json!(name);
            v
        })
        .collect();
    page(
        "public_reports.html",
        base(s.lang, Some(&s)),
        context! {
            nav => "public_reports",
            rows => rows,
            categories => crate::moderation::CATEGORIES,
            error => q.get("err").cloned(),
        },
    )
}

/// `POST /web/public-reports/{id}/decide`: accept (into the hazard ledger,
/// under the category chosen) or reject, with a reason; back to the list.
pub async fn decide_public_report(
    State(app): State<App>,
    s: Session,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response> {
    s.check_csrf(csrf_of(&h, Some(&f)))?;
    s.require(auth::may_judge_reports(&s.role), "judge public reports")?;
    let person = s.person()?.to_string();
    let mut tx = app.db.begin().await?;
    let report = crate::moderation::get(&mut tx, &id).await?;
    let scope = data::Scope::of(&mut tx, &s).await?;
    s.require(
        scope.sees(Some(&report.region_id)),
        "act outside its region",
    )?;
    let accept = f.get("accept").map(String::as_str) == Some("true");
    let reason = non_empty(&f, "reason").unwrap_or_default();
    let category = non_empty(&f, "category");
    let r = crate::moderation::decide(
        &mut tx,
        app.now_ms(),
        &id,
        &crate::moderation::Decision {
            person: &person,
            accept,
            category: category.as_deref(),
            reason: &reason,
        },
    )
    .await;
    if r.is_ok() {
        tx.commit().await?;
    }
    redirect_back(r, "/web/public-reports", refused)
}

/// `GET /web/maintenance`: the windows not over yet in the user's region,
/// with the alarms each holds; a form to set one and a button to end one
/// for those who may ([`crate::http::maintenance`] has the rule).
pub async fn maintenance(
    State(app): State<App>,
    s: Session,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Html<String>> {
    let mut c = app.db.acquire().await?;
    let scope = data::Scope::of(&mut c, &s).await?;
    let venues = data::venues(&mut c, &scope).await?;
    let mut windows = crate::maintenance::list(&mut c, app.now_ms(), false).await?;
    windows.retain(|w| scope.sees(Some(&w.region_id)));
    let rows: Vec<Value> = crate::maintenance::with_holds(&mut c, windows)
        .await?
        .into_iter()
        .map(|w| {
            let name = venues
                .iter()
                .find(|v| v.id == w.row.venue_id)
                .map_or_else(|| w.row.venue_id.clone(), |v| v.name.clone());
            let mut v = json!(w);
            v["venue_name"] = json!(name);
            v
        })
        .collect();
    page(
        "maintenance.html",
        base(s.lang, Some(&s)),
        context! {
            nav => "maintenance",
            windows => rows,
            venues => venues,
            may_set => crate::http::maintenance::may_set(&s.role),
            error => q.get("err").cloned(),
        },
    )
}

/// `POST /web/maintenance` (form: `venue_id`, `device_id`, `starts`
/// `YYYY-MM-DDTHH:MM` Beijing time or empty for now, `hours`, `reason`).
pub async fn set_maintenance(
    State(app): State<App>,
    s: Session,
    h: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response> {
    s.check_csrf(csrf_of(&h, Some(&f)))?;
    let now = app.now_ms();
    let caller =
        crate::http::caller::Caller::Person(s.clone(), crate::http::caller::Credential::Session);
    let venue = non_empty(&f, "venue_id").unwrap_or_default();
    let r: Result<_> = async {
        let starts = non_empty(&f, "starts")
            .map(|t| local_minute(&t))
            .transpose()?;
        let hours: i64 = non_empty(&f, "hours")
            .and_then(|h| h.parse().ok())
            .filter(|h| (1..=24 * crate::maintenance::MAX_DAYS).contains(h))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "hours: a whole number from 1 to {}",
                    24 * crate::maintenance::MAX_DAYS
                ))
            })?;
        let mut tx = app.db.begin().await?;
        crate::http::maintenance::may_hold(&caller, &mut tx, &venue).await?;
        let w = crate::maintenance::create(
            &mut tx,
            now,
            &format!("person:{}", s.person()?),
            crate::maintenance::NewWindow {
                venue_id: venue.clone(),
                device_id: non_empty(&f, "device_id"),
                starts_ms: starts,
                ends_ms: starts.unwrap_or(now).max(now) + hours * 3_600_000,
                reason: f.get("reason").cloned().unwrap_or_default(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(w)
    }
    .await;
    redirect_back(r, "/web/maintenance", |e| {
        refused(e) || matches!(e, Error::NotFound { .. })
    })
}

/// `POST /web/maintenance/{id}/end` (form: `reason`).
pub async fn end_maintenance(
    State(app): State<App>,
    s: Session,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response> {
    s.check_csrf(csrf_of(&h, Some(&f)))?;
    let caller =
        crate::http::caller::Caller::Person(s.clone(), crate::http::caller::Credential::Session);
    let mut tx = app.db.begin().await?;
    let w = crate::maintenance::get(&mut tx, &id).await?;
    crate::http::maintenance::may_hold(&caller, &mut tx, &w.venue_id).await?;
    let r = crate::maintenance::end(
        &mut tx,
        app.now_ms(),
        &id,
        &format!("person:{}", s.person()?),
        f.get("reason").map_or("", String::as_str),
    )
    .await;
    if r.is_ok() {
        tx.commit().await?;
    }
    redirect_back(r, "/web/maintenance", refused)
}

/// `YYYY-MM-DDTHH:MM` (a `datetime-local` input) in Beijing time → Unix ms.
fn local_minute(s: &str) -> Result<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .map_err(|_| Error::Invalid(format!("starts: {s:?} is not a time (YYYY-MM-DDTHH:MM)")))?;
    Ok(t.and_utc().timestamp_millis() - 8 * 3_600_000)
}

/// `GET /web/reports`: links to the generated reports.
pub async fn reports(State(app): State<App>, s: Session) -> Result<Html<String>> {
    let mut c = app.db.acquire().await?;
    let scope = data::Scope::of(&mut c, &s).await?;
    let mut regions = data::regions(&mut c).await?;
    regions.retain(|r| scope.sees(Some(&r.id)));
    drop(c);
    let mut snapshots = crate::snapshots::list(&app, None, None).await?;
    snapshots.retain(|r| scope.sees_row(r));
    snapshots.truncate(100);
    let today = crate::web::render::fmt_time(Some(app.now_ms()), false);
    page(
        "reports.html",
        base(s.lang, Some(&s)),
        context! {
            nav => "reports",
            regions => regions,
            today => today,
            periods => crate::reports::PERIODS,
            formats => ["html", "csv", "xlsx", "pdf", "json"],
            snapshots => snapshots,
        },
    )
}

/// `GET /web/reports/{period}?region=&date=&format=`: the API's report
/// for a signed-in user (the API itself takes an operator token).
pub async fn report(
    State(app): State<App>,
    s: Session,
    Path(period): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let region = q
        .get("region")
        .ok_or_else(|| Error::BadRequest("region: give ?region=<id>".into()))?;
    in_scope(&mut *app.db.acquire().await?, &s, Some(region)).await?;
    let date = q
        .get("date")
        .ok_or_else(|| Error::BadRequest("date: give ?date=YYYY-MM-DD".into()))?;
    let mut c = app.db.acquire().await?;
    let m = reports::report_for(
        &mut c,
        region,
        q.get("sector").map(String::as_str),
        &period,
        date,
    )
    .await?;
    Ok(match q.get("format").map_or("html", String::as_str) {
        "csv" => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"report-{period}-{date}.csv\""),
                ),
            ],
            m.csv(),
        )
            .into_response(),
        "json" => axum::Json(m).into_response(),
        "html" => Html(m.html()).into_response(),
        "xlsx" => (
            [
                (header::CONTENT_TYPE, crate::export::XLSX_MIME.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"report-{period}-{date}.xlsx\""),
                ),
            ],
            crate::export::xlsx(&m)?,
        )
            .into_response(),
        "pdf" => (
            [
                (header::CONTENT_TYPE, "application/pdf".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"report-{period}-{date}.pdf\""),
                ),
            ],
            crate::export::pdf(&app.cfg.reports, &m.html()).await?,
        )
            .into_response(),
        f => {
            return Err(Error::BadRequest(format!(
                "format: {f:?}; use html, csv, xlsx, pdf or json"
            )));
        }
    })
}

/// `GET /web/report-snapshots/{id}?format=`: a report generated on
/// schedule (frozen), for a user whose region covers it; HTML by default.
pub async fn snapshot(
    State(app): State<App>,
    s: Session,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    {
        let mut c = app.db.acquire().await?;
        let region: String =
            sqlx::query_scalar("SELECT region_id FROM report_snapshots WHERE id = $1")
                .bind(&id)
                .fetch_optional(&mut *c)
                .await?
                .ok_or(Error::NotFound {
                    what: "report snapshot",
                    id: id.clone(),
                })?;
        in_scope(&mut c, &s, Some(&region)).await?;
    }
    let m = crate::snapshots::get(&app, &id).await?;
    crate::http::reports::render_report(
        &app,
        m,
        Some(q.get("format").map_or("html", String::as_str)),
    )
    .await
}

/// `GET /web/devices/{id}`: the device's alarm history (30 days, SVG).
pub async fn device(
    State(app): State<App>,
    s: Session,
    Path(id): Path<String>,
) -> Result<Html<String>> {
    let mut c = app.db.acquire().await?;
    let venue = data::device_venue(&mut c, &id).await?;
    if let Some((_, _, region)) = &venue {
        in_scope(&mut c, &s, Some(region)).await?;
    }
    let (bars, total) = data::device_history(&mut c, &id, app.now_ms(), 30).await?;
    page(
        "device.html",
        base(s.lang, Some(&s)),
        context! {
            nav => "map",
            device => id,
            venue => venue.as_ref().map(|v| v.0.clone()),
            kind => venue.map(|v| v.1),
            bars => bars,
            total => total,
        },
    )
}

/// `GET /web/evidence/{id}`: a photo of a task or hazard the user may see.
pub async fn evidence(
    State(app): State<App>,
    s: Session,
    Path(id): Path<String>,
) -> Result<Response> {
    {
        let mut c = app.db.acquire().await?;
        let region = crate::evidence::region(&mut c, &id).await?;
        in_scope(&mut c, &s, region.as_deref()).await?;
    }
    let (media, data) = crate::evidence::open(&app, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, media),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        data,
    )
        .into_response())
}

/// `POST /web/hazards/{id}/evidence` (multipart: `csrf`, `file`): a photo
/// for an open hazard, by a user who acts on it (not the admin) and whose
/// region covers it. JPEG, PNG or WebP only (checked by content).
pub async fn upload_photo(
    State(app): State<App>,
    s: Session,
    Path(id): Path<String>,
    mp: std::result::Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response> {
    let mut mp = mp.map_err(|e| Error::BadRequest(format!("send multipart/form-data: {e}")))?;
    let too_large = app.cfg.evidence.max_bytes;
    let part = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge(too_large)
        } else {
            Error::BadRequest(format!("multipart: {e}"))
        }
    };
    let (mut csrf, mut file) = (None, None);
    while let Some(f) = mp.next_field().await.map_err(part)? {
        match f.name() {
            Some("csrf") => csrf = Some(f.text().await.map_err(part)?),
            Some("file") => {
                let name = f.file_name().map(str::to_string);
                file = Some((name, f.bytes().await.map_err(part)?));
            }
            _ => {}
        }
    }
    s.check_csrf(csrf.as_deref())?;
    s.require(s.role != "admin", "add evidence")?;
    let person = s.person()?.to_string();
    {
        let mut c = app.db.acquire().await?;
        let h = work::hazard(&mut c, &id).await?;
        in_scope(&mut c, &s, h.region_id.as_deref()).await?;
        if matches!(h.state.as_str(), "CLOSED" | "ARCHIVED") {
            return Err(Error::Conflict(format!(
                "hazard {id} is closed; reopen it to add evidence"
            )));
        }
    }
    let (name, data) = file
        .filter(|(_, d)| !d.is_empty())
        .ok_or_else(|| Error::BadRequest("file: attach the photo".into()))?;
    let back = format!("/web/hazards/{}", url_encode(&id));
    let r = crate::evidence::add(
        &app,
        crate::evidence::Subject::Hazard,
        &id,
        &person,
        name.as_deref(),
        &data,
    )
    .await;
    redirect_back(r, &back, |e| {
        matches!(
            e,
            Error::Invalid(_) | Error::TooLarge(_) | Error::UnsupportedMedia(_)
        )
    })
}

/// `POST /web/tasks/{id}/transition` (form: `to`, `evidence`,
/// `assignee_id`, `reason`, `csrf`).
pub async fn move_task(
    State(app): State<App>,
    s: Session,
    h: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Result<Response> {
    s.check_csrf(csrf_of(&h, Some(&f)))?;
    let to = f.get("to").cloned().unwrap_or_default();
    let person = s.person()?.to_string();
    {
        let mut c = app.db.acquire().await?;
        let t = work::task(&mut c, &id).await?;
        in_scope(&mut c, &s, t.region_id.as_deref()).await?;
        let from = t.state.as_str();
        let mine = t.assignee_id.as_deref() == Some(person.as_str());
        s.require(
            auth::may_move_task(&s.role, from, &to, mine),
            &format!("move a task {from} → {to}"),
        )?;
    }
    let m = work::TaskMove {
        to,
        actor: person,
        reason: non_empty(&f, "reason").unwrap_or_else(|| format!("web ({})", s.username)),
        assignee_id: non_empty(&f, "assignee_id"),
        evidence: non_empty(&f, "evidence"),
        checklist: Vec::new(),
    };
    redirect_back(work::move_task(&app, &id, &m).await, "/web/tasks", refused)
}

/// Where a form goes after its action: back to `back`, with `?err=` and
/// the reason when `shown` says the user can act on the error (a gate, a
/// conflict, a bad file); any other error fails the request.
fn redirect_back<T>(r: Result<T>, back: &str, shown: impl Fn(&Error) -> bool) -> Result<Response> {
    match r {
        Ok(_) => Ok(Redirect::to(back).into_response()),
        Err(e) if shown(&e) => {
            Ok(Redirect::to(&format!("{back}?err={}", url_encode(&e.to_string()))).into_response())
        }
        Err(e) => Err(e),
    }
}

/// A state change the domain refused: a gate not met or a conflict.
fn refused(e: &Error) -> bool {
    matches!(e, Error::Conflict(_) | Error::Invalid(_))
}

#[cfg(test)]
mod tests {
    use super::local;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(local(Some("/web/hazards?x=1")), "/web/hazards?x=1");
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "https://evil.example",
            "",
            "/\n/x",
        ] {
            assert_eq!(local(Some(bad)), "/web", "{bad:?}");
        }
        assert_eq!(local(None), "/web");
    }
}
