//! The acknowledgement link in a message: `GET /a/{token}` shows the
//! warning (what, where, how much, since when, its state) and one button;
//! `POST /a/{token}` acknowledges as the person the link was issued to
//! ([`crate::ack`], [`crate::warnings::ack_with_grant`]). No sign-in: the
//! token is the credential. Only the POST acts, because SMS and chat apps
//! fetch links to preview them. A forged, expired or used link gets a
//! page that says so (403, 410, 409), counted and audited.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use crate::App;
use crate::ack::{self, Refusal};
use crate::error::{Error, Result};
use crate::messages::{self, Lang};
use crate::warnings::{self, GrantUse, Record, Via};
use crate::web::UiLang;
use crate::web::i18n;
use crate::web::render::{base, page};

async fn warning_view(app: &App, r: &Record, lang: Lang) -> Result<minijinja::Value> {
    let mut c = app.db.acquire().await?;
    let mut dir = crate::directory::Directory::new();
    let venues: Vec<String> = r.venue_id.iter().cloned().collect();
    let people: Vec<String> = r.acked_by.iter().cloned().collect();
    dir.load(
        &mut c,
        &venues,
        std::slice::from_ref(&r.device),
        &people,
        &[],
        app.now_ms(),
    )
    .await?;
    let by = r
        .acked_by
        .as_deref()
        .map(|p| {
            dir.contact(p)
                .map_or_else(|| p.to_string(), |c| c.name.clone())
        })
        .unwrap_or_default();
    let f = warnings::facts(app, &dir, r, app.now_ms(), None, by.clone());
    let unit = messages::unit(&f.kind, &f.rule);
    Ok(context! {
        id => r.id.clone(),
        level => r.w.level.max(r.w.max_level).as_str(),
        level_name => messages::level(lang, r.w.level.max(r.w.max_level)),
        venue => f.venue,
        device => f.device,
        location => f.location,
        reading => messages::reading(lang, &f.rule),
        value => messages::number(f.value),
        threshold => messages::number(f.threshold),
        unit => unit,
        time => messages::time(lang, r.raised_ms),
        state => r.w.phase.as_str(),
        acked_by => by,
    })
}

/// The refusal as a problem (a browser gets it as an HTML page in its
/// language, through [`crate::web::html_errors`]).
fn refusal(lang: Lang, r: &Refusal) -> Error {
    let when = match r {
        Refusal::Used(at) => format!(" ({})", messages::time(lang, *at)),
        _ => String::new(),
    };
    match r {
        Refusal::Expired => Error::Gone(i18n::text(lang, "ack_expired")),
        Refusal::Used(_) => Error::Conflict(format!("{}{when}", i18n::text(lang, "ack_used"))),
        _ => Error::Forbidden(i18n::text(lang, "ack_forged")),
    }
}

/// `GET /a/{token}`.
#[utoipa::path(get, path = "/a/{token}", tag = "public", operation_id = "ack_link_page",
    summary = "The acknowledgement link of a message: the warning and one button (HTML, no sign-in)",
    params(("token" = String, Path, description = "The link's token (grant id and MAC)")),
    responses(
        (status = 200, description = "The warning and the acknowledge button", body = String, content_type = "text/html"),
        crate::openapi::AckLinkErrors,
    ))]
pub async fn page_handler(
    State(app): State<App>,
    UiLang(lang): UiLang,
    Path(token): Path<String>,
) -> Result<Response> {
    let now = app.now_ms();
    let checked = {
        let mut c = app.db.acquire().await?;
        ack::check_link(&app, &mut c, &token, now).await?
    };
    let g = match checked {
        Ok(g) => g,
        Err(r) => {
            ack::refused(&app, "link", &token_id(&token), &r).await?;
            return Err(refusal(lang, &r));
        }
    };
    let r = {
        let mut c = app.db.acquire().await?;
        warnings::load(&mut c, &g.warning_id).await?
    };
    let w = warning_view(&app, &r, lang).await?;
    let html = page(
        "ack.html",
        base(lang, None),
        context! {
            refused => "",
            message => "",
            w => w,
            token => token,
            done => false,
            waiting => r.w.phase.awaits_ack(),
        },
    )?;
    Ok(html.into_response())
}

fn token_id(token: &str) -> String {
    token
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .take(32)
        .collect()
}

/// `POST /a/{token}`.
#[utoipa::path(post, path = "/a/{token}", tag = "public", operation_id = "ack_link",
    summary = "Acknowledge with the link of a message, as the person it was sent to (once)",
    params(("token" = String, Path, description = "The link's token (grant id and MAC)")),
    responses(
        (status = 200, description = "Acknowledged (or the warning no longer waited: the page says by whom)", body = String, content_type = "text/html"),
        crate::openapi::AckLinkErrors,
    ))]
pub async fn confirm(
    State(app): State<App>,
    UiLang(lang): UiLang,
    Path(token): Path<String>,
) -> Result<Response> {
    let now = app.now_ms();
    let checked = {
        let mut c = app.db.acquire().await?;
        ack::check_link(&app, &mut c, &token, now).await?
    };
    let g = match checked {
        Ok(g) => g,
        Err(r) => {
            ack::refused(&app, "link", &token_id(&token), &r).await?;
            return Err(refusal(lang, &r));
        }
    };
    let (r, message) = match warnings::ack_with_grant(&app, &g, Via::Link).await? {
        Ok(GrantUse::Acked(r)) => (r, i18n::text(lang, "ack_done")),
        Ok(GrantUse::NotWaiting(r)) => (r, i18n::text(lang, "ack_not_waiting")),
        Err(why) => {
            ack::refused(&app, "link", &g.warning_id, &why).await?;
            return Err(refusal(lang, &why));
        }
    };
    let w = warning_view(&app, &r, lang).await?;
    let html = page(
        "ack.html",
        base(lang, None),
        context! {
            refused => "",
            message => message,
            w => w,
            token => "",
            done => true,
            waiting => false,
        },
    )?;
    Ok(html.into_response())
}
