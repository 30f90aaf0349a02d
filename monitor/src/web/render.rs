//! Templates: minijinja over the files in `monitor/web/templates`
//! (embedded in the binary), auto-escaped, with strict undefined checks so
//! a missing catalogue key or field is an error, not an empty string.

use std::sync::LazyLock;

use axum::response::Html;
use minijinja::{Environment, UndefinedBehavior, Value, context};

use crate::error::{Error, Result};
use crate::web::auth::Session;
use crate::web::i18n::{self, Lang};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../web/templates/base.html")),
    (
        "sign_in.html",
        include_str!("../../web/templates/sign_in.html"),
    ),
    (
        "dashboard.html",
        include_str!("../../web/templates/dashboard.html"),
    ),
    ("map.html", include_str!("../../web/templates/map.html")),
    (
        "map_svg.html",
        include_str!("../../web/templates/map_svg.html"),
    ),
    (
        "hazards.html",
        include_str!("../../web/templates/hazards.html"),
    ),
    (
        "hazard.html",
        include_str!("../../web/templates/hazard.html"),
    ),
    ("tasks.html", include_str!("../../web/templates/tasks.html")),
    (
        "maintenance.html",
        include_str!("../../web/templates/maintenance.html"),
    ),
    (
        "reports.html",
        include_str!("../../web/templates/reports.html"),
    ),
    (
        "device.html",
        include_str!("../../web/templates/device.html"),
    ),
    (
        "public_venue.html",
        include_str!("../../web/templates/public_venue.html"),
    ),
    (
        "poster.html",
        include_str!("../../web/templates/poster.html"),
    ),
    (
        "public_reports.html",
        include_str!("../../web/templates/public_reports.html"),
    ),
    ("error.html", include_str!("../../web/templates/error.html")),
    ("ack.html", include_str!("../../web/templates/ack.html")),
];

/// `YYYY-MM-DD HH:MM` in CST (UTC+8) of a Unix-ms value; empty for none.
pub fn fmt_time(ms: Option<i64>, with_time: bool) -> String {
    ms.and_then(|ms| chrono::DateTime::from_timestamp_millis(ms + 8 * 3_600_000))
        .map(|d| {
            d.format(if with_time {
                "%Y-%m-%d %H:%M"
            } else {
                "%Y-%m-%d"
            })
            .to_string()
        })
        .unwrap_or_default()
}

fn ms_of(v: &Value) -> Option<i64> {
    i64::try_from(v.clone()).ok()
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    for (name, src) in TEMPLATES {
        if let Err(e) = env.add_template(name, src) {
            tracing::error!("template {name}: {e}");
        }
    }
    env.add_filter("dt", |v: Value| fmt_time(ms_of(&v), true));
    env.add_filter("date", |v: Value| fmt_time(ms_of(&v), false));
    env.add_filter("hm", |v: Value| {
        ms_of(&v)
            .and_then(|ms| chrono::DateTime::from_timestamp_millis(ms + 8 * 3_600_000))
            .map(|d| d.format("%H:%M").to_string())
            .unwrap_or_default()
    });
    env.add_filter("num", |v: Value| {
        f64::try_from(v)
            .map(crate::messages::number)
            .unwrap_or_default()
    });
    env
});

/// The context every page gets: the strings of its language, the user
/// and the CSRF token (in a `<meta>` for scripts and in each form).
pub fn base(lang: Lang, s: Option<&Session>) -> Value {
    context! {
        t => i18n::table(lang),
        lang => lang.code(),
        html_lang => lang.tag(),
        user => s.map(|s| context! { name => s.username.clone(), role => s.role.clone() }),
        csrf => s.map(|s| s.csrf.clone()).unwrap_or_default(),
    }
}

/// Renders `name` with `base` merged under `ctx`.
pub fn page(name: &str, base: Value, ctx: Value) -> Result<Html<String>> {
    let tpl = ENV
        .get_template(name)
        .map_err(|e| Error::Unavailable(format!("template {name}: {e}")))?;
    tpl.render(context! { ..ctx, ..base })
        .map(Html)
        .map_err(|e| {
            tracing::error!("template {name}: {e:#}");
            Error::Unavailable(format!("template {name}: {e}"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/web/templates");
        for f in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            assert!(
                TEMPLATES.iter().any(|(n, _)| *n == name),
                "{name} is not in TEMPLATES"
            );
        }
    }

    #[test]
    fn every_template_parses() {
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            assert!(env.add_template(name, src).is_ok(), "{name}");
        }
        assert_eq!(fmt_time(Some(1_794_268_800_000), true), "2026-11-10 08:00");
        assert_eq!(fmt_time(None, true), "");
    }
}
