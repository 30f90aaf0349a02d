//! MQTT topics of the wire contract.
//!
//! | topic | QoS | what |
//! |---|---|---|
//! | `sites/{site}/devices/{device}/telemetry` | 1 | periodic report |
//! | `sites/{site}/devices/{device}/event` | 1 | at once on alarm, fault, tamper |
//! | `sites/{site}/devices/{device}/status` | 1, retained | `online` / `offline` (last will) |
//! | `alarms/{site}/{device}` | 1 | alarm events published by the gateway |

use core::fmt::{self, Write as _};

use crate::{Id, IdError};

/// Longest topic built here: `sites/` + 64 + `/devices/` + 64 + `/telemetry`.
pub const MAX_TOPIC_LEN: usize = 160;

/// The device-side channel of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// Periodic report.
    Telemetry,
    /// Immediate report on a local alarm, fault or button.
    Event,
    /// `online` / `offline`, retained, also the last will.
    Status,
}

impl TopicKind {
    /// The last topic level.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::Event => "event",
            Self::Status => "status",
        }
    }
}

/// A parsed topic, borrowing the ids from the topic string. The ids are
/// validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic<'a> {
    /// `sites/{site}/devices/{device}/{telemetry|event|status}`.
    Device {
        /// Site id.
        site: &'a str,
        /// Device id.
        device: &'a str,
        /// Which channel.
        kind: TopicKind,
    },
    /// `alarms/{site}/{device}`.
    Alarm {
        /// Site id.
        site: &'a str,
        /// Device id.
        device: &'a str,
    },
}

/// Why a topic was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicError {
    /// Not one of the contract's topic shapes.
    Unknown,
    /// The site level is not a valid id.
    BadSite(IdError),
    /// The device level is not a valid id.
    BadDevice(IdError),
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("topic is not one of the wire contract's topics"),
            Self::BadSite(e) => write!(f, "topic: site id {e}"),
            Self::BadDevice(e) => write!(f, "topic: device id {e}"),
        }
    }
}

impl core::error::Error for TopicError {}

/// The subscriptions a gateway needs for every device of every site.
pub const GATEWAY_SUBSCRIPTIONS: [&str; 3] = [
    "sites/+/devices/+/telemetry",
    "sites/+/devices/+/event",
    "sites/+/devices/+/status",
];

fn valid(s: &str, bad: fn(IdError) -> TopicError) -> Result<&str, TopicError> {
    Id::new(s).map(|_| s).map_err(bad)
}

impl<'a> Topic<'a> {
    /// Parses and validates a topic.
    pub fn parse(topic: &'a str) -> Result<Self, TopicError> {
        let mut parts = topic.split('/');
        let first = parts.next();
        match first {
            Some("sites") => {
                let (Some(site), Some("devices"), Some(device), Some(last), None) = (
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                    parts.next(),
                ) else {
                    return Err(TopicError::Unknown);
                };
                let kind = match last {
                    "telemetry" => TopicKind::Telemetry,
                    "event" => TopicKind::Event,
                    "status" => TopicKind::Status,
                    _ => return Err(TopicError::Unknown),
                };
                Ok(Self::Device {
                    site: valid(site, TopicError::BadSite)?,
                    device: valid(device, TopicError::BadDevice)?,
                    kind,
                })
            }
            Some("alarms") => {
                let (Some(site), Some(device), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return Err(TopicError::Unknown);
                };
                Ok(Self::Alarm {
                    site: valid(site, TopicError::BadSite)?,
                    device: valid(device, TopicError::BadDevice)?,
                })
            }
            _ => Err(TopicError::Unknown),
        }
    }

    /// Builds `sites/{site}/devices/{device}/{kind}`.
    pub fn device_topic(
        site: &Id,
        device: &Id,
        kind: TopicKind,
    ) -> heapless::String<MAX_TOPIC_LEN> {
        let mut s = heapless::String::new();
        // 6 + 64 + 9 + 64 + 10 = 153 ≤ 160: cannot run out of room.
        let _ = write!(s, "sites/{site}/devices/{device}/{}", kind.as_str());
        s
    }

    /// Builds `alarms/{site}/{device}`.
    pub fn alarm_topic(site: &Id, device: &Id) -> heapless::String<MAX_TOPIC_LEN> {
        let mut s = heapless::String::new();
        let _ = write!(s, "alarms/{site}/{device}");
        s
    }
}

/// The payload of a `status` topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceStatus {
    /// Connected.
    Online,
    /// Disconnected (usually the broker publishing the last will).
    Offline,
}

impl DeviceStatus {
    /// The payload bytes.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }

    /// Parses a status payload; surrounding whitespace is tolerated.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        match payload.trim_ascii() {
            b"online" => Some(Self::Online),
            b"offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_topics() {
        assert_eq!(
            Topic::parse("sites/s1/devices/gas-0001/telemetry"),
            Ok(Topic::Device {
                site: "s1",
                device: "gas-0001",
                kind: TopicKind::Telemetry
            })
        );
        assert!(matches!(
            Topic::parse("sites/s1/devices/d/event"),
            Ok(Topic::Device {
                kind: TopicKind::Event,
                ..
            })
        ));
        assert!(matches!(
            Topic::parse("sites/s1/devices/d/status"),
            Ok(Topic::Device {
                kind: TopicKind::Status,
                ..
            })
        ));
        assert_eq!(
            Topic::parse("alarms/s1/d"),
            Ok(Topic::Alarm {
                site: "s1",
                device: "d"
            })
        );
    }

    #[test]
    fn rejects_everything_else() {
        for t in [
            "",
            "/",
            "sites",
            "sites/s1",
            "sites/s1/devices/d",
            "sites/s1/devices/d/telemetry/extra",
            "sites/s1/device/d/telemetry",
            "sites/s1/devices/d/metrics",
            "alarms/s1",
            "alarms/s1/d/x",
            "other/s1/devices/d/telemetry",
        ] {
            assert_eq!(Topic::parse(t), Err(TopicError::Unknown), "{t}");
        }
        assert_eq!(
            Topic::parse("sites//devices/d/telemetry"),
            Err(TopicError::BadSite(IdError::Empty))
        );
        assert_eq!(
            Topic::parse("sites/s1/devices/d.x/telemetry"),
            Err(TopicError::BadDevice(IdError::BadChar))
        );
        assert_eq!(
            Topic::parse("sites/+/devices/d/telemetry"),
            Err(TopicError::BadSite(IdError::BadChar))
        );
    }

    #[test]
    fn builds_what_it_parses() {
        let s = Id::new(&"s".repeat(64)).unwrap();
        let d = Id::new(&"d".repeat(64)).unwrap();
        for kind in [TopicKind::Telemetry, TopicKind::Event, TopicKind::Status] {
            let t = Topic::device_topic(&s, &d, kind);
            assert_eq!(
                Topic::parse(&t),
                Ok(Topic::Device {
                    site: &s,
                    device: &d,
                    kind
                })
            );
        }
        let t = Topic::alarm_topic(&s, &d);
        assert_eq!(
            Topic::parse(&t),
            Ok(Topic::Alarm {
                site: &s,
                device: &d
            })
        );
    }

    #[test]
    fn status_payloads() {
        assert_eq!(DeviceStatus::parse(b"online"), Some(DeviceStatus::Online));
        assert_eq!(
            DeviceStatus::parse(b"offline\n"),
            Some(DeviceStatus::Offline)
        );
        assert_eq!(DeviceStatus::parse(b"ONLINE"), None);
        assert_eq!(DeviceStatus::parse(b""), None);
    }
}
