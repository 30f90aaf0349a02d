//! The public 文旅安全码 pages (no sign-in): the page a phone opens from the
//! QR code, the QR code itself (SVG and PNG) and a printable poster.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;

use crate::App;
use crate::error::Result;
use crate::web::render::{base, page};
use crate::web::{UiLang, qr, url_encode};

/// The stable public URL of a venue's safety code (what the QR encodes):
/// `web.public_base_url` (else `http://` + `server.listen`) +
/// `/public/venues/{id}`.
pub fn venue_url(app: &App, venue: &str) -> String {
    let base = if app.cfg.web.public_base_url.is_empty() {
        format!("http://{}", app.cfg.server.listen)
    } else {
        app.cfg.web.public_base_url.clone()
    };
    format!("{base}/public/venues/{}", url_encode(venue))
}

/// `GET /public/venues/{id}`: the safety-code page.
pub async fn venue_page(app: &App, lang: crate::web::i18n::Lang, id: &str) -> Result<Html<String>> {
    let mut c = app.db.acquire().await?;
    let mut sc =
        crate::public::safety_code(&mut c, id, app.now_ms(), &app.cfg.web.code_period).await?;
    // Each reason named in the reader's language: the catalogue's name of
    // a category or device kind, else the category as filed.
    for r in &mut sc.reasons {
        let key = format!("cat_{}", r.what);
        let name = crate::web::i18n::text(lang, &key);
        if name != key {
            r.label = name;
        }
    }
    page(
        "public_venue.html",
        base(lang, None),
        context! { v => sc, url => venue_url(app, id) },
    )
}

async fn exists(app: &App, id: &str) -> Result<()> {
    let mut c = app.db.acquire().await?;
    crate::public::safety_code(&mut c, id, app.now_ms(), &app.cfg.web.code_period).await?;
    Ok(())
}

/// `GET /public/venues/{id}/qr.svg`.
#[utoipa::path(get, path = "/public/venues/{id}/qr.svg", tag = "public", operation_id = "public_qr_svg",
    summary = "The QR code of a venue's 安全码 page (SVG, no token)",
    params(("id" = String, Path, description = "Venue id")),
    responses(
        (status = 200, description = "The QR code", body = String, content_type = "image/svg+xml"),
        crate::openapi::PublicReadErrors,
    ))]
pub async fn qr_svg(State(app): State<App>, Path(id): Path<String>) -> Result<Response> {
    exists(&app, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml")],
        qr::svg(&venue_url(&app, &id))?,
    )
        .into_response())
}

/// `GET /public/venues/{id}/qr.png`.
#[utoipa::path(get, path = "/public/venues/{id}/qr.png", tag = "public", operation_id = "public_qr_png",
    summary = "The QR code of a venue's 安全码 page (PNG, no token)",
    params(("id" = String, Path, description = "Venue id")),
    responses(
        (status = 200, description = "The QR code", body = crate::openapi::Binary, content_type = "image/png"),
        crate::openapi::PublicReadErrors,
    ))]
pub async fn qr_png(State(app): State<App>, Path(id): Path<String>) -> Result<Response> {
    exists(&app, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "image/png")],
        qr::png(&venue_url(&app, &id), 8)?,
    )
        .into_response())
}

/// The SVG element without its XML declaration (for inlining in HTML).
fn inline_svg(doc: &str) -> String {
    doc.find("<svg").map_or(doc, |i| &doc[i..]).to_string()
}

/// `GET /public/venues/{id}/poster`: A4, printable, for the entrance.
pub async fn poster(
    State(app): State<App>,
    UiLang(lang): UiLang,
    Path(id): Path<String>,
) -> Result<Html<String>> {
    let mut c = app.db.acquire().await?;
    let sc =
        crate::public::safety_code(&mut c, &id, app.now_ms(), &app.cfg.web.code_period).await?;
    page(
        "poster.html",
        base(lang, None),
        context! { v => sc, url => venue_url(&app, &id), svg => inline_svg(&qr::svg(&venue_url(&app, &id))?) },
    )
}
