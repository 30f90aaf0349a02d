//! 4G DTU reverse connections: field devices behind a DTU (data transfer
//! unit) that dials *us*. The DTU connects to `[modbus.dtu] listen`, sends
//! its registration packet (an id such as `DTU0001`), then passes Modbus
//! RTU frames through transparently and sends a heartbeat now and then.
//!
//! ```text
//! DTU ──TCP──▶ listen ─ registration (≤ 64 bytes, within register_timeout_ms)
//!                 └─ matches a link's dtu_id ─▶ that link's slot ─▶ run_link (RTU framing)
//! ```
//!
//! * this module: the config and the pure parts (id/heartbeat parsing,
//!   registration matching, heartbeat counting), so they can be tested and
//!   fuzzed without a socket;
//! * [`listen`]: the listener and the per-link slots;
//! * [`stream`]: the stream a link polls over (drops unsolicited bytes
//!   before each request, notices a silent DTU).

pub mod listen;
pub mod stream;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, parse_addr};

/// The longest registration or heartbeat packet: a DTU sends a short id;
/// anything longer is refused without buffering more.
pub const MAX_PACKET: usize = 64;

/// How a registration id or heartbeat is written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The bytes of the text itself (`DTU0001`).
    #[default]
    Text,
    /// Hex bytes (`0x01 0x02`, `01 02`, `0102`).
    Hex,
}

/// `[modbus.dtu]`: the listener DTUs dial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtuConfig {
    /// `ip:port` to accept DTU connections on.
    pub listen: String,
    /// How `dtu_id` and `heartbeat` are written (`text` or `hex`); either
    /// may override it with a `text:` or `hex:` prefix.
    #[serde(default)]
    pub registration: Format,
    /// The heartbeat packet the DTUs send between requests (counted and
    /// discarded); without it, every unsolicited byte is discarded as
    /// garbage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<String>,
    /// Time a new connection has to send its registration, ms.
    #[serde(default = "default_register_timeout_ms")]
    pub register_timeout_ms: u64,
    /// A link drops a DTU that sent nothing (no answer, no heartbeat) for
    /// this long, ms; the DTU dials again.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Connections waiting for their registration at once; more are
    /// closed at once (a flood must not exhaust the gateway).
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
}

fn default_register_timeout_ms() -> u64 {
    5_000
}
fn default_idle_timeout_ms() -> u64 {
    120_000
}
fn default_max_pending() -> usize {
    64
}

impl DtuConfig {
    /// Checks the listener's keys (`key` is `modbus.dtu`).
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        parse_addr(&format!("{key}.listen"), &self.listen)?;
        if let Some(hb) = &self.heartbeat {
            parse_packet(hb, self.registration)
                .map_err(|e| ConfigError::new(format!("{key}.heartbeat"), e.to_string()))?;
        }
        if !(100..=600_000).contains(&self.register_timeout_ms) {
            return Err(ConfigError::new(
                format!("{key}.register_timeout_ms"),
                "must be 100-600000",
            ));
        }
        if !(1_000..=86_400_000).contains(&self.idle_timeout_ms) {
            return Err(ConfigError::new(
                format!("{key}.idle_timeout_ms"),
                "must be 1000-86400000",
            ));
        }
        if !(1..=10_000).contains(&self.max_pending) {
            return Err(ConfigError::new(
                format!("{key}.max_pending"),
                "must be 1-10000",
            ));
        }
        Ok(())
    }

    /// The heartbeat bytes (validated config: `None` if absent).
    pub fn heartbeat_bytes(&self) -> Option<Vec<u8>> {
        self.heartbeat
            .as_deref()
            .and_then(|h| parse_packet(h, self.registration).ok())
    }
}

/// Why an id or heartbeat cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Nothing to match.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_PACKET`] bytes.
    #[error("{0} bytes; at most {MAX_PACKET}")]
    TooLong(usize),
    /// A hex token that is not whole bytes of hex digits.
    #[error("`{0}` is not hex bytes (write `0x01 0x02`, `01 02` or `0102`)")]
    BadHex(String),
}

/// The bytes of a registration id or heartbeat: `text:...` or `hex:...`
/// explicitly, else in `default` format. Hex tokens are separated by
/// spaces, commas or colons, each optionally `0x`-prefixed, each an even
/// number of digits.
pub fn parse_packet(s: &str, default: Format) -> Result<Vec<u8>, PacketError> {
    let (format, body) = if let Some(b) = s.strip_prefix("text:") {
        (Format::Text, b)
    } else if let Some(b) = s.strip_prefix("hex:") {
        (Format::Hex, b)
    } else {
        (default, s)
    };
    let bytes = match format {
        Format::Text => body.as_bytes().to_vec(),
        Format::Hex => {
            let mut out = Vec::new();
            for tok in body
                .split(|c: char| c.is_whitespace() || c == ',' || c == ':')
                .filter(|t| !t.is_empty())
            {
                let digits = tok
                    .strip_prefix("0x")
                    .or_else(|| tok.strip_prefix("0X"))
                    .unwrap_or(tok);
                if digits.is_empty()
                    || digits.len() % 2 != 0
                    || !digits.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(PacketError::BadHex(tok.chars().take(32).collect()));
                }
                for pair in digits.as_bytes().chunks(2) {
                    let hi = hex_digit(pair[0]);
                    let lo = hex_digit(pair[1]);
                    out.push((hi << 4) | lo);
                }
                if out.len() > MAX_PACKET {
                    return Err(PacketError::TooLong(out.len()));
                }
            }
            out
        }
    };
    if bytes.is_empty() {
        return Err(PacketError::Empty);
    }
    if bytes.len() > MAX_PACKET {
        return Err(PacketError::TooLong(bytes.len()));
    }
    Ok(bytes)
}

/// The value of an ASCII hex digit (checked by the caller).
fn hex_digit(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// What the bytes received so far on a new connection are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Exactly the id at this index.
    Known(usize),
    /// The start of at least one id: wait for more.
    Partial,
    /// No id starts like this (too long included): refuse.
    Unknown,
}

/// Matches `got` exactly against `ids` (the configured registrations).
pub fn classify(got: &[u8], ids: &[Vec<u8>]) -> Registration {
    if let Some(i) = ids.iter().position(|id| id.as_slice() == got) {
        return Registration::Known(i);
    }
    if got.len() < MAX_PACKET && ids.iter().any(|id| id.starts_with(got)) {
        return Registration::Partial;
    }
    Registration::Unknown
}

/// Unsolicited bytes split into whole heartbeats (non-overlapping
/// occurrences of `heartbeat`) and the other bytes: `(heartbeats, other)`.
pub fn count_heartbeats(buf: &[u8], heartbeat: Option<&[u8]>) -> (u64, u64) {
    let Some(hb) = heartbeat.filter(|h| !h.is_empty()) else {
        return (0, buf.len() as u64);
    };
    let (mut n, mut i) = (0u64, 0usize);
    while i + hb.len() <= buf.len() {
        if buf[i..].starts_with(hb) {
            n += 1;
            i += hb.len();
        } else {
            i += 1;
        }
    }
    let other = buf.len() as u64 - n * hb.len() as u64;
    (n, other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_and_hex_ids_parse() {
        assert_eq!(
            parse_packet("DTU0001", Format::Text),
            Ok(b"DTU0001".to_vec())
        );
        assert_eq!(parse_packet("hex:0x01 0x02", Format::Text), Ok(vec![1, 2]));
        assert_eq!(
            parse_packet("01 02,ff:0A", Format::Hex),
            Ok(vec![1, 2, 0xff, 0x0a])
        );
        assert_eq!(parse_packet("0102AB", Format::Hex), Ok(vec![1, 2, 0xab]));
        assert_eq!(parse_packet("text:0102", Format::Hex), Ok(b"0102".to_vec()));
        assert_eq!(parse_packet("", Format::Text), Err(PacketError::Empty));
        assert_eq!(
            parse_packet("hex:  ", Format::Text),
            Err(PacketError::Empty)
        );
        assert!(matches!(
            parse_packet("0x1", Format::Hex),
            Err(PacketError::BadHex(_))
        ));
        assert!(matches!(
            parse_packet("0x", Format::Hex),
            Err(PacketError::BadHex(_))
        ));
        assert!(matches!(
            parse_packet("zz", Format::Hex),
            Err(PacketError::BadHex(_))
        ));
        assert_eq!(
            parse_packet(&"x".repeat(65), Format::Text),
            Err(PacketError::TooLong(65))
        );
        assert!(parse_packet(&"x".repeat(64), Format::Text).is_ok());
        assert_eq!(
            parse_packet(&"00".repeat(65), Format::Hex),
            Err(PacketError::TooLong(65))
        );
    }

    #[test]
    fn registrations_match_exactly() {
        let ids = vec![b"DTU0001".to_vec(), b"DTU0002".to_vec(), vec![1, 2]];
        assert_eq!(classify(b"DTU0002", &ids), Registration::Known(1));
        assert_eq!(classify(&[1, 2], &ids), Registration::Known(2));
        assert_eq!(classify(b"", &ids), Registration::Partial);
        assert_eq!(classify(b"DTU", &ids), Registration::Partial);
        assert_eq!(classify(b"DTU0003", &ids), Registration::Unknown);
        assert_eq!(classify(b"DTU0001HB", &ids), Registration::Unknown);
        assert_eq!(classify(b"dtu0001", &ids), Registration::Unknown);
    }

    #[test]
    fn heartbeats_are_counted_and_the_rest_is_garbage() {
        assert_eq!(count_heartbeats(b"HBHB", Some(b"HB")), (2, 0));
        assert_eq!(count_heartbeats(b"HBxHB", Some(b"HB")), (2, 1));
        assert_eq!(count_heartbeats(b"HHB", Some(b"HB")), (1, 1));
        assert_eq!(count_heartbeats(b"H", Some(b"HB")), (0, 1));
        assert_eq!(count_heartbeats(b"HB", None), (0, 2));
        assert_eq!(count_heartbeats(b"", Some(b"HB")), (0, 0));
    }

    proptest! {
        // Whatever a config or a peer throws at them: no panic, and the
        // results stay within their bounds.
        #[test]
        fn parsing_never_panics_and_stays_bounded(s in ".{0,160}", hex in proptest::bool::ANY) {
            let f = if hex { Format::Hex } else { Format::Text };
            if let Ok(b) = parse_packet(&s, f) {
                prop_assert!(!b.is_empty() && b.len() <= MAX_PACKET);
            }
        }

        #[test]
        fn hex_round_trips(bytes in proptest::collection::vec(any::<u8>(), 1..=MAX_PACKET)) {
            let s: Vec<String> = bytes.iter().map(|b| format!("0x{b:02X}")).collect();
            prop_assert_eq!(parse_packet(&s.join(" "), Format::Hex), Ok(bytes.clone()));
            let s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            prop_assert_eq!(parse_packet(&format!("hex:{s}"), Format::Text), Ok(bytes));
        }

        #[test]
        fn arbitrary_bytes_classify_consistently(
            got in proptest::collection::vec(any::<u8>(), 0..100),
            ids in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..8), 0..4),
        ) {
            match classify(&got, &ids) {
                Registration::Known(i) => prop_assert_eq!(&ids[i], &got),
                Registration::Partial => prop_assert!(ids.iter().any(|id| id.starts_with(&got) && id.len() > got.len())),
                Registration::Unknown => prop_assert!(!ids.iter().any(|id| id.starts_with(&got))),
            }
        }

        #[test]
        fn heartbeat_counts_add_up(
            buf in proptest::collection::vec(any::<u8>(), 0..200),
            hb in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let (n, other) = count_heartbeats(&buf, Some(&hb));
            prop_assert_eq!(n * hb.len() as u64 + other, buf.len() as u64);
        }
    }
}
