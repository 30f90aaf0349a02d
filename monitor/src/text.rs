//! Rules for free text that people type and the service stores and shows
//! again (titles, reasons, notes): no NUL or other control characters
//! (they end up in HTML, CSV, PDF and message texts, where they truncate,
//! corrupt or hide what follows), and titles that say something.

use serde_json::Value;

use crate::error::{Error, Result};

/// The first control character of `s` other than line breaks and tabs
/// (which multi-line fields may hold), with its character position.
pub fn control_char(s: &str) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// Refuses a control character anywhere in the strings of a JSON body
/// (keys included); the error names the path.
pub fn check_json(v: &Value) -> Result<()> {
    fn walk(v: &Value, path: &mut String) -> Result<()> {
        match v {
            Value::String(s) => refuse_control(path, s),
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(x, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Object(o) => {
                for (k, x) in o {
                    refuse_control(path, k)?;
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    walk(x, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(v, &mut String::new())
}

fn refuse_control(key: &str, s: &str) -> Result<()> {
    match control_char(s) {
        None => Ok(()),
        Some((at, c)) => Err(Error::Invalid(format!(
            "{}: control character U+{:04X} at position {at}; only printable text, line breaks and tabs are accepted",
            if key.is_empty() { "(body)" } else { key },
            u32::from(c)
        ))),
    }
}

/// A title: 1 to `max` characters after trimming, one line, no control
/// characters. Returns it trimmed.
pub fn title(key: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Error::Invalid(format!("{key}: must not be empty")));
    }
    if t.chars().count() > max {
        return Err(Error::Invalid(format!("{key}: at most {max} characters")));
    }
    if t.contains(['\n', '\r']) {
        return Err(Error::Invalid(format!("{key}: one line only")));
    }
    refuse_control(key, t)?;
    Ok(t.to_string())
}

/// Free text (reasons, notes): at most `max` characters, no control
/// characters but line breaks and tabs.
pub fn free(key: &str, s: &str, max: usize) -> Result<()> {
    if s.chars().count() > max {
        return Err(Error::Invalid(format!("{key}: at most {max} characters")));
    }
    refuse_control(key, s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn control_characters_are_refused_by_path() {
        let ok = serde_json::json!({"title": "煤气味\n厨房", "list": ["a\tb"]});
        assert!(check_json(&ok).is_ok());
        let bad = serde_json::json!({"items": [{"note": "ok"}, {"note": "x\u{0}y"}]});
        let e = check_json(&bad).unwrap_err().to_string();
        assert!(e.contains("items[1].note") && e.contains("U+0000"), "{e}");
        let bad = serde_json::json!({"a\u{1b}": 1});
        assert!(check_json(&bad).is_err());
    }

    #[test]
    fn titles_say_something() {
        assert_eq!(
            title("title", "  消防通道堵塞 ", 10).unwrap(),
            "消防通道堵塞"
        );
        for bad in ["", "   ", "a\nb", "x\u{7}", &"长".repeat(11)] {
            assert!(title("title", bad, 10).is_err(), "{bad:?}");
        }
        assert!(free("reason", "line one\nline two", 100).is_ok());
        assert!(free("reason", "nul\u{0}", 100).is_err());
    }
}
