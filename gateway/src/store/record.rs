//! The durable record of one device: what the judge must find again after a
//! restart to number transitions on (`n`), to recognise redelivered frames
//! (the sequence window) and to resume every rule where it was (the rule
//! engine's snapshot, valid only under the rule set whose fingerprint is
//! stored with it). Written in the same transaction as the points and alarm
//! events of the batch that changed it.
//!
//! Layout (little-endian): version, kind, seq started, online, seq last
//! (u32), seq seen (u64), n (u64), site length, site, rules fingerprint
//! (u64), rule-engine snapshot.

use anquan_edge_rules::{DeviceState, SNAPSHOT_LEN};
use anquan_protocol::{DeviceKind, Id};

use crate::validate::SeqWindow;

const VERSION: u8 = 2;
/// Bytes before the site.
const HEAD: usize = 24;

/// A device's durable state.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceRecord {
    /// Its kind.
    pub kind: DeviceKind,
    /// Its site.
    pub site: Id,
    /// Accepted sequence numbers.
    pub seq: SeqWindow,
    /// Whether its offline rule is quiet.
    pub online: bool,
    /// Transitions so far (the last event id's `n`).
    pub n: u64,
    /// Fingerprint of the rule set `state` belongs to.
    pub fp: u64,
    /// The rule engine's state (`None` when the snapshot does not parse).
    pub state: Option<DeviceState>,
}

impl DeviceRecord {
    /// The bytes stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        let kind = DeviceKind::ALL
            .iter()
            .position(|k| *k == self.kind)
            .unwrap_or(0) as u8;
        let mut r = Vec::with_capacity(HEAD + 9 + self.site.len() + SNAPSHOT_LEN);
        r.extend_from_slice(&[
            VERSION,
            kind,
            u8::from(self.seq.started),
            u8::from(self.online),
        ]);
        r.extend_from_slice(&self.seq.last.to_le_bytes());
        r.extend_from_slice(&self.seq.seen.to_le_bytes());
        r.extend_from_slice(&self.n.to_le_bytes());
        r.push(self.site.len() as u8);
        r.extend_from_slice(self.site.as_bytes());
        r.extend_from_slice(&self.fp.to_le_bytes());
        if let Some(s) = &self.state {
            r.extend_from_slice(&s.to_bytes());
        }
        r
    }

    /// Parses stored bytes; `None` when they are not a record of this
    /// version (the device then starts afresh).
    pub fn parse(r: &[u8]) -> Option<Self> {
        let (head, rest) = r.split_at_checked(HEAD)?;
        if head[0] != VERSION {
            return None;
        }
        let (&site_len, rest) = rest.split_first()?;
        let (site, rest) = rest.split_at_checked(usize::from(site_len))?;
        let (fp, snap) = rest.split_at_checked(8)?;
        let u32_at = |i: usize| {
            head.get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let u64_at = |i: usize| {
            head.get(i..i + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
        };
        Some(Self {
            kind: *DeviceKind::ALL.get(usize::from(head[1]))?,
            seq: SeqWindow {
                started: head[2] != 0,
                last: u32_at(4)?,
                seen: u64_at(8)?,
            },
            online: head[3] != 0,
            n: u64_at(16)?,
            site: Id::new(std::str::from_utf8(site).ok()?).ok()?,
            fp: u64::from_le_bytes(fp.try_into().ok()?),
            state: DeviceState::from_bytes(snap),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let r = DeviceRecord {
            kind: DeviceKind::Crane,
            site: Id::new("s1").unwrap(),
            seq: SeqWindow {
                started: true,
                last: 77,
                seen: 0b1011,
            },
            online: false,
            n: 12_345,
            fp: 99,
            state: Some(DeviceState::new(1234)),
        };
        assert_eq!(DeviceRecord::parse(&r.to_bytes()), Some(r.clone()));
        // A record whose snapshot is missing or damaged keeps the rest.
        let mut bytes = r.to_bytes();
        bytes.truncate(bytes.len() - 3);
        let damaged = DeviceRecord::parse(&bytes).unwrap();
        assert_eq!((damaged.n, damaged.state), (12_345, None));
        assert_eq!(DeviceRecord::parse(b"short"), None);
        let mut other_version = r.to_bytes();
        other_version[0] = 1;
        assert_eq!(DeviceRecord::parse(&other_version), None);
    }
}
