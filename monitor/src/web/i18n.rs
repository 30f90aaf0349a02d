//! The UI strings: ONE catalogue (`monitor/web/i18n.toml`), Chinese first,
//! English second. Every key has both (a unit test checks it, and templates
//! render with strict undefined-checking, so a missing key fails loudly).
//! The language comes from `?lang=`, then the `lang` cookie, then
//! `Accept-Language`; the default is Chinese.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// The catalogue source, embedded in the binary.
pub const SOURCE: &str = include_str!("../../web/i18n.toml");

/// The UI language: the same as the messages' (Chinese first).
pub use crate::messages::Lang;

/// One entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 中文.
    pub zh: String,
    /// English.
    pub en: String,
}

/// Parses a catalogue; the error names the key.
pub fn parse(src: &str) -> Result<BTreeMap<String, Entry>, String> {
    let map: BTreeMap<String, Entry> = toml::from_str(src).map_err(|e| e.to_string())?;
    for (k, e) in &map {
        if e.zh.trim().is_empty() || e.en.trim().is_empty() {
            return Err(format!("{k}: needs both zh and en"));
        }
    }
    Ok(map)
}

static CATALOGUE: LazyLock<BTreeMap<String, Entry>> = LazyLock::new(|| {
    parse(SOURCE).unwrap_or_else(|e| {
        tracing::error!("web/i18n.toml: {e}");
        BTreeMap::new()
    })
});

/// The strings of `lang`, key → text (what templates see as `t`).
pub fn table(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    CATALOGUE
        .iter()
        .map(|(k, e)| {
            (
                k.as_str(),
                match lang {
                    Lang::Zh => e.zh.as_str(),
                    Lang::En => e.en.as_str(),
                },
            )
        })
        .collect()
}

/// One string (the key itself if missing, which the tests rule out).
pub fn text(lang: Lang, key: &str) -> String {
    CATALOGUE
        .get(key)
        .map(|e| match lang {
            Lang::Zh => e.zh.clone(),
            Lang::En => e.en.clone(),
        })
        .unwrap_or_else(|| key.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_key_has_zh_and_en() {
        let map = parse(SOURCE).unwrap();
        assert!(map.len() > 50, "{}", map.len());
        for (k, e) in &map {
            assert!(!e.zh.is_empty() && !e.en.is_empty(), "{k}");
        }
        assert!(parse("[a]\nzh = \"甲\"\n").is_err(), "an entry without en");
        assert!(parse("[a]\nzh = \"甲\"\nen = \"\"\n").is_err());
    }

    #[test]
    fn every_key_the_templates_use_is_in_the_catalogue() {
        let map = parse(SOURCE).unwrap();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/web/templates");
        let mut used = 0;
        for f in std::fs::read_dir(dir).unwrap() {
            let f = f.unwrap().path();
            let src = std::fs::read_to_string(&f).unwrap();
            for (i, _) in src.match_indices("t.") {
                let before = src[..i].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let key: String = src[i + 2..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if key.is_empty() {
                    continue;
                }
                used += 1;
                assert!(
                    map.contains_key(&key),
                    "{}: t.{key} is not in i18n.toml",
                    f.display()
                );
            }
        }
        assert!(used > 30);
    }

    #[test]
    fn every_key_built_at_run_time_exists() {
        let map = parse(SOURCE).unwrap();
        let mut keys: Vec<String> = Vec::new();
        for r in crate::web::auth::WEB_ROLES {
            keys.push(format!("role_{r}"));
        }
        for (_, to) in crate::db::HAZARD.edges {
            keys.push(format!("h_{to}"));
        }
        keys.push("h_DETECTED".into());
        for (_, to) in [
            ("", "ACKED"),
            ("", "NOTIFIED"),
            ("", "DISPOSING"),
            ("", "RESOLVED"),
        ] {
            keys.push(format!("w_{to}"));
        }
        keys.push("w_RAISED".into());
        for (from, to) in crate::db::TASK.edges {
            keys.push(format!("t_{from}"));
            keys.push(format!("t_{to}"));
        }
        for p in crate::warnings::ladder::Purpose::ALL {
            keys.push(format!("p_{}", p.as_str()));
        }
        for l in ["red", "orange", "yellow", "blue"] {
            keys.push(format!("lv_{l}"));
        }
        for c in ["red", "orange", "yellow", "blue", "green", "grey"] {
            keys.push(format!("code_{c}"));
        }
        for p in crate::reports::PERIODS {
            keys.push(format!("period_{}", p.replace('-', "_")));
        }
        for s in ["general", "major"] {
            keys.push(format!("sev_{s}"));
        }
        for k in ["created", "due", "state", "severity", "venue"] {
            keys.push(format!("sort_{k}"));
        }
        for f in [
            "problem",
            "measures",
            "standard",
            "responsibility",
            "funds",
            "plan",
            "owner_id",
            "acceptance_unit",
            "acceptance_record",
            "signer",
            "interim_watcher",
            "penalty_case",
        ] {
            keys.push(format!("f_{f}"));
        }
        for k in keys {
            assert!(map.contains_key(&k), "{k} is not in i18n.toml");
        }
    }
}
