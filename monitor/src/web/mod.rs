//! The web front, served by the monitor itself: server-rendered pages
//! (minijinja templates in `monitor/web/templates`, one string catalogue in
//! `monitor/web/i18n.toml`), a little hand-written JS for the live
//! dashboard, the public 安全码 page with its QR code and poster.
//!
//! Operators sign in with a password ([`auth`]); the bearer-token API in
//! [`crate::http`] is unchanged for gateways and scripts.

pub mod ack;
pub mod auth;
pub mod client;
pub mod data;
pub mod i18n;
pub mod live;
pub mod pages;
pub mod public;
pub mod qr;
pub mod render;

use axum::Router;
use axum::http::request::Parts;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::config::ConfigError;
use i18n::Lang;

/// `[web]`: the browser front at `/web` (sign-in, sessions) and the public
/// 安全码 pages at `/public/venues/{id}` (QR codes, period, map).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The public base URL the venue QR codes point to (what a phone at
    /// the venue's door can reach), e.g. `https://anquan.example.gov.cn`;
    /// no trailing slash. Empty: `http://` + `server.listen`.
    pub public_base_url: String,
    /// The `Secure` flag of the session cookie. Unset: on when
    /// `public_base_url` is `https://` (e.g. behind a TLS proxy on the same
    /// host) or `server.listen` is not a loopback address; off only for
    /// plain-HTTP development on loopback.
    pub cookie_secure: Option<bool>,
    /// Session lifetime, minutes (fixed from sign-in).
    pub session_ttl_min: u64,
    /// Failed sign-ins per (user, client address) …
    pub signin_max_failures: u32,
    /// … within this window, seconds; over it sign-in answers 429 for that
    /// user from that address only (other users at the same address, e.g.
    /// a duty room behind one proxy, are not locked out).
    pub signin_window_s: u64,
    /// Password verifications (argon2id, ~19 MiB and tens of ms each) run at
    /// once, whatever the number of sign-ins in flight: the memory and CPU
    /// a burst of sign-ins can take is bounded by this, not by the burst.
    pub signin_parallel: u32,
    /// Sign-ins that may wait for a verification slot; beyond it the answer
    /// is 429 at once (busy), without touching the password.
    pub signin_queue: u32,
    /// Optional map tiles for the risk map (Leaflet, vendored), e.g.
    /// `https://tile.openstreetmap.org/{z}/{x}/{y}.png`. Empty: the
    /// schematic SVG map only (always there, works offline).
    pub map_tile_url: String,
    /// Attribution shown with the tiles (their licence usually requires it).
    pub map_attribution: String,
    /// The datum the tiles are drawn in: `wgs84` (OpenStreetMap and most
    /// outside China), `gcj02` (AMap/高德, Tencent/腾讯) or `bd09` (Baidu/
    /// 百度). Venues are stored in WGS-84; their markers are converted so
    /// they land where the venue is on those tiles.
    pub map_datum: crate::geo::Datum,
    /// The period of the public safety code's color: `week` (ISO, from
    /// Monday), `month` or `quarter`, in CST. The code shows the worst of
    /// the current color and the real warnings raised in the period.
    pub code_period: String,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            public_base_url: String::new(),
            cookie_secure: None,
            session_ttl_min: 480,
            signin_max_failures: 5,
            signin_window_s: 900,
            signin_parallel: 2,
            signin_queue: 16,
            map_tile_url: String::new(),
            map_attribution: String::new(),
            map_datum: crate::geo::Datum::Wgs84,
            code_period: "month".into(),
        }
    }
}

impl WebConfig {
    /// Checks the values; the error names the key.
    pub fn validate(&self, listen: &str) -> Result<(), ConfigError> {
        let u = &self.public_base_url;
        if !u.is_empty()
            && (!(u.starts_with("http://") || u.starts_with("https://"))
                || u.ends_with('/')
                || u.contains(char::is_whitespace))
        {
            return Err(ConfigError::new(
                "web.public_base_url",
                "must be an http:// or https:// URL without a trailing slash",
            ));
        }
        let t = &self.map_tile_url;
        if !t.is_empty()
            && (!(t.starts_with("http://") || t.starts_with("https://"))
                || !["{z}", "{x}", "{y}"].iter().all(|p| t.contains(p)))
        {
            return Err(ConfigError::new(
                "web.map_tile_url",
                "must be an http(s) URL template with {z}, {x} and {y}",
            ));
        }
        if !crate::public::PERIODS.contains(&self.code_period.as_str()) {
            return Err(ConfigError::new(
                "web.code_period",
                format!("use one of {:?}", crate::public::PERIODS),
            ));
        }
        for (k, v) in [
            ("web.session_ttl_min", self.session_ttl_min),
            (
                "web.signin_max_failures",
                u64::from(self.signin_max_failures),
            ),
            ("web.signin_window_s", self.signin_window_s),
            ("web.signin_parallel", u64::from(self.signin_parallel)),
        ] {
            if v == 0 {
                return Err(ConfigError::new(k, "must be at least 1"));
            }
        }
        if listen.is_empty() {
            return Err(ConfigError::new("server.listen", "must not be empty"));
        }
        Ok(())
    }

    /// Whether the session cookie gets `Secure` when serving on `listen`.
    pub fn cookie_secure(&self, listen: &str) -> bool {
        self.cookie_secure.unwrap_or_else(|| {
            self.public_base_url.starts_with("https://")
                || !listen
                    .parse::<std::net::SocketAddr>()
                    .map(|a| a.ip().is_loopback())
                    .unwrap_or(false)
        })
    }
}

/// The web routes (merged into [`crate::http::router`]); photo uploads may
/// be up to `upload_limit` bytes.
pub fn router(upload_limit: usize) -> Router<App> {
    Router::new()
        .route("/", get(pages::root))
        .route("/web", get(pages::dashboard))
        .route("/web/static/{file}", get(pages::asset))
        .route("/web/static/vendor/leaflet/{file}", get(pages::leaflet))
        .route("/web/lang/{code}", get(pages::set_lang))
        .route(
            "/web/sign-in",
            get(pages::sign_in_form).post(pages::sign_in),
        )
        .route("/web/sign-out", post(pages::sign_out))
        .route("/web/events", get(live::events))
        .route("/a/{token}", get(ack::page_handler).post(ack::confirm))
        .route("/web/api/dashboard", get(pages::dashboard_json))
        .route("/web/warnings/{id}/ack", post(pages::ack))
        .route("/web/warnings/{id}/confirm", post(pages::confirm))
        .route("/web/map", get(pages::map))
        .route("/web/hazards", get(pages::hazards))
        .route("/web/hazards.csv", get(pages::hazards_csv))
        .route("/web/hazards/{id}", get(pages::hazard))
        .route("/web/hazards/{id}/transition", post(pages::move_hazard))
        .route("/web/hazards/{id}/list", post(pages::list_hazard))
        .route("/web/public-reports", get(pages::public_reports))
        .route(
            "/web/public-reports/{id}/decide",
            post(pages::decide_public_report),
        )
        .route(
            "/web/hazards/{id}/evidence",
            post(pages::upload_photo).layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/web/maintenance",
            get(pages::maintenance).post(pages::set_maintenance),
        )
        .route("/web/maintenance/{id}/end", post(pages::end_maintenance))
        .route("/web/tasks", get(pages::tasks))
        .route("/web/tasks/{id}/transition", post(pages::move_task))
        .route("/web/reports", get(pages::reports))
        .route("/web/reports/{period}", get(pages::report))
        .route("/web/report-snapshots/{id}", get(pages::snapshot))
        .route("/web/devices/{id}", get(pages::device))
        .route("/web/evidence/{id}", get(pages::evidence))
        .route("/public/venues/{id}/qr.svg", get(public::qr_svg))
        .route("/public/venues/{id}/qr.png", get(public::qr_png))
        .route("/public/venues/{id}/poster", get(public::poster))
        .layer(axum::middleware::from_fn(html_errors))
        .layer(axum::middleware::map_response(security_headers))
}

/// A browser navigating to a page that fails gets an HTML page with the
/// problem's title and detail in the UI language, not problem+json;
/// scripts (which do not ask for `text/html`) keep the JSON.
pub async fn html_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let (parts, _) = axum::http::Request::new(()).into_parts();
    let lang = {
        let mut p = parts;
        p.headers = req.headers().clone();
        p.uri = req.uri().clone();
        lang_of(&p)
    };
    let resp = next.run(req).await;
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(wants_html && is_problem) {
        return resp;
    }
    let (mut rp, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return rp.status.into_response();
    };
    let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let html = render::page(
        "error.html",
        render::base(lang, None),
        minijinja::context! {
            status => rp.status.as_u16(),
            title => problem["title"].as_str().unwrap_or_default(),
            detail => problem["detail"].as_str().unwrap_or_default(),
        },
    );
    match html {
        Ok(h) => {
            rp.headers.remove(header::CONTENT_TYPE);
            rp.headers.remove(header::CONTENT_LENGTH);
            (rp, h).into_response()
        }
        Err(_) => (rp, bytes).into_response(),
    }
}

/// Headers on every web response: no framing (clickjacking of the action
/// buttons), no MIME sniffing, no referrer to other sites, and a CSP that
/// allows only this origin's scripts and styles (map tiles may come from
/// elsewhere).
pub async fn security_headers(mut r: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = r.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: http: https:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    r
}

/// The query parameter `name` of the request (percent-decoded).
pub fn query_param(parts: &Parts, name: &str) -> Option<String> {
    parts.uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| url_decode(v))
    })
}

/// The UI language of a request.
pub fn lang_of(parts: &Parts) -> Lang {
    let q = query_param(parts, "lang");
    Lang::pick(
        q.as_deref(),
        auth::cookie(&parts.headers, "lang"),
        parts
            .headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

/// The UI language as an extractor (public pages have no session).
#[derive(Debug, Clone, Copy)]
pub struct UiLang(pub Lang);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for UiLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(lang_of(parts)))
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes (`+` is a space, as in forms); invalid escapes stay.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_config_errors_name_the_key() {
        let ok = WebConfig::default();
        assert!(ok.validate("127.0.0.1:8088").is_ok());
        for (cfg, key) in [
            (
                WebConfig {
                    code_period: "year".into(),
                    ..WebConfig::default()
                },
                "web.code_period",
            ),
            (
                WebConfig {
                    public_base_url: "https://x.example/".into(),
                    ..WebConfig::default()
                },
                "web.public_base_url",
            ),
            (
                WebConfig {
                    session_ttl_min: 0,
                    ..WebConfig::default()
                },
                "web.session_ttl_min",
            ),
        ] {
            assert_eq!(
                cfg.validate("127.0.0.1:8088").map_err(|e| e.key),
                Err(key.to_string())
            );
        }
        assert!(!ok.cookie_secure("127.0.0.1:8088"));
        assert!(ok.cookie_secure("0.0.0.0:8088"));
        let forced = WebConfig {
            cookie_secure: Some(true),
            ..WebConfig::default()
        };
        assert!(forced.cookie_secure("127.0.0.1:8088"));
        let proxied = WebConfig {
            public_base_url: "https://anquan.example.invalid".into(),
            ..WebConfig::default()
        };
        assert!(
            proxied.cookie_secure("127.0.0.1:8088"),
            "behind a TLS proxy on loopback"
        );
    }

    #[test]
    fn url_coding_roundtrips() {
        for s in ["a b", "/web?x=1&y=中", "100%", "%zz", "%4"] {
            let e = url_encode(s);
            assert_eq!(url_decode(&e), s, "{e}");
        }
        assert_eq!(url_decode("a+b%20c"), "a b c");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
    }
}
