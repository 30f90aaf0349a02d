//! Identifiers: site, device and gateway ids, and rule ids.

use core::fmt;
use core::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest site, device or gateway id.
pub const MAX_ID_LEN: usize = 64;
/// Longest rule id (`gas.lel`, `crane.wind_lift`, …).
pub const MAX_RULE_ID_LEN: usize = 32;

/// Why a string is not a valid id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdError {
    /// Zero characters.
    Empty,
    /// Longer than the maximum.
    TooLong,
    /// A character outside the allowed set.
    BadChar,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "is empty",
            Self::TooLong => "is too long",
            Self::BadChar => "has a character outside the allowed set",
        })
    }
}

impl core::error::Error for IdError {}

fn check(s: &str, max: usize, extra: &[u8]) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > max {
        return Err(IdError::TooLong);
    }
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || extra.contains(&b))
    {
        Ok(())
    } else {
        Err(IdError::BadChar)
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $max:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(heapless::String<$max>);

        impl $name {
            /// The longest accepted value.
            pub const MAX_LEN: usize = $max;

            /// Validates `s` and copies it.
            pub fn new(s: &str) -> Result<Self, IdError> {
                check(s, $max, $extra)?;
                let mut out = heapless::String::new();
                // Cannot fail: the length was checked above.
                out.push_str(s).map_err(|_| IdError::TooLong)?;
                Ok(Self(out))
            }

            /// Whether `s` would be accepted by [`Self::new`].
            pub fn is_valid(s: &str) -> bool {
                check(s, $max, $extra).is_ok()
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                self.0.as_str()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.0.as_str()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0.as_str() == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0.as_str())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.0.as_str(), f)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl core::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.0.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a valid ", stringify!($name)))
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::new(v).map_err(|e| E::custom(e))
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

id_type!(
    /// A site, device or gateway id: `[A-Za-z0-9_-]{1,64}`.
    ///
    /// The character set keeps ids safe in MQTT topics (no `/`, `+`, `#`),
    /// InfluxDB tags, URLs and file names without escaping.
    Id,
    MAX_ID_LEN,
    b""
);

id_type!(
    /// A rule id: `[A-Za-z0-9_.-]{1,32}`, conventionally `kind.name`
    /// (`gas.lel`, `water.pressure_drop`).
    RuleId,
    MAX_RULE_ID_LEN,
    b"."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_contract_charset() {
        assert!(Id::new("gas-0001").is_ok());
        assert!(Id::new("A_z-9").is_ok());
        let max = "x".repeat(MAX_ID_LEN);
        assert!(Id::new(&max).is_ok());
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(Id::new(""), Err(IdError::Empty));
        assert_eq!(Id::new(&"x".repeat(65)), Err(IdError::TooLong));
        for bad in ["a/b", "a+b", "a#", "a b", "ü", "a.b", "a\"b", "a\\u0030"] {
            assert_eq!(Id::new(bad), Err(IdError::BadChar), "{bad}");
        }
    }

    #[test]
    fn rule_ids_allow_dots() {
        assert!(RuleId::new("gas.lel").is_ok());
        assert_eq!(RuleId::new("gas/lel"), Err(IdError::BadChar));
        assert_eq!(RuleId::new(&"r".repeat(33)), Err(IdError::TooLong));
    }
}
