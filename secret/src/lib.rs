//! Secrets in the configuration files of the gateway (the MQTT password,
//! the TSDB and monitor tokens) and the monitor (the SMTP password).
//!
//! Write them as `env:NAME` (read from the environment at start) or
//! `file:PATH` (the file's content, trailing newline removed; a relative
//! path is relative to the config file), so that the config file itself
//! holds no secret and can be versioned and world-readable; systemd's
//! `LoadCredential=` and container secrets both end up as such files. A
//! value with neither prefix is the secret itself: accepted, because a lab
//! needs it, but `check` and the start-up log warn about it.
//!
//! The value never leaves this type by accident: `Debug` and the effective
//! configuration show the reference (`env:NAME`, `file:PATH`) or `***`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret that cannot be resolved: its key in the config and why. Each
/// config turns it into its own error naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct SecretError {
    /// The key path, e.g. `notify.smtp.password`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl SecretError {
    fn new(key: &str, message: String) -> Self {
        Self {
            key: key.into(),
            message,
        }
    }
}

/// A secret and where it came from.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret {
    /// As written in the config.
    reference: String,
    /// The secret (empty until resolved, for `env:` and `file:`).
    value: String,
}

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    fn file(&self) -> Option<&str> {
        self.reference.strip_prefix("file:")
    }

    fn env(&self) -> Option<&str> {
        self.reference.strip_prefix("env:")
    }

    /// What may be shown: the reference, or `***` for a secret written in
    /// the config.
    fn shown(&self) -> &str {
        if self.env().is_some() || self.file().is_some() {
            &self.reference
        } else {
            "***"
        }
    }

    /// Makes a relative `file:` path relative to `dir`.
    pub fn resolve_path(&mut self, dir: &Path) {
        if let Some(p) = self.file() {
            let p = PathBuf::from(p);
            if p.is_relative() {
                self.reference = format!("file:{}", dir.join(p).display());
            }
        }
    }

    /// Reads an `env:` or `file:` secret; `key` names it in the error.
    pub fn resolve(&mut self, key: &str) -> Result<(), SecretError> {
        if let Some(name) = self.env() {
            self.value = std::env::var(name).map_err(|_| {
                SecretError::new(key, format!("environment variable `{name}` is not set"))
            })?;
        } else if let Some(path) = self.file() {
            let text = std::fs::read_to_string(path)
                .map_err(|e| SecretError::new(key, format!("cannot read `{path}`: {e}")))?;
            self.value = text.trim_end_matches(['\r', '\n']).to_owned();
        }
        Ok(())
    }

    /// What `check` should say about how this secret is kept, if anything.
    pub fn warning(&self, key: &str) -> Option<String> {
        if let Some(path) = self.file() {
            return readable_by_others(Path::new(path))
                .then(|| format!("{key}: `{path}` can be read by other users (chmod 600 it)"));
        }
        if self.env().is_some() || self.reference.is_empty() {
            return None;
        }
        Some(format!(
            "{key}: the secret is written in the config file; use `env:NAME` or `file:PATH`"
        ))
    }
}

/// Whether group or others may read `path` (unknown: no).
fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        let plain = !(s.starts_with("env:") || s.starts_with("file:"));
        Self {
            reference: s.to_owned(),
            value: if plain { s.to_owned() } else { String::new() },
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.shown())
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.shown())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::from(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_env_and_file_secrets() {
        let s = Secret::from("hunter2");
        assert_eq!(s.expose(), "hunter2");
        assert!(s.warning("k").is_some_and(|w| w.contains("env:NAME")));
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(
            toml::Value::try_from(&s).ok(),
            Some(toml::Value::String("***".into()))
        );

        let mut s = Secret::from("env:PATH");
        s.resolve("k").unwrap();
        assert_eq!(s.expose(), std::env::var("PATH").unwrap());
        assert_eq!(s.warning("k"), None);
        assert_eq!(format!("{s:?}"), "Secret(env:PATH)");
        let err = Secret::from("env:ANQUAN_SECRET_MISSING")
            .resolve("forward.http.token")
            .unwrap_err();
        assert_eq!(err.key, "forward.http.token");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "from-file\n").unwrap();
        let mut s = Secret::from("file:tok");
        s.resolve_path(dir.path());
        s.resolve("k").unwrap();
        assert_eq!(s.expose(), "from-file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.path().join("tok");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(s.warning("k").is_some_and(|w| w.contains("chmod 600")));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(s.warning("k"), None);
        }
        assert!(Secret::from("file:/nonexistent/x").resolve("k").is_err());
    }
}
