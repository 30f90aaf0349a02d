//! A DTU's connection as the gateway's `[modbus.dtu]` listener sees it
//! (`anquan_gateway::modbus::dtu`): the configured ids and heartbeat are
//! parsed (`parse_packet`), the registration is read the way the listener
//! reads it, a few bytes at a time, classified after each read
//! (`classify`), and what follows a known id is split into heartbeats and
//! discarded bytes (`count_heartbeats`). Never panic; the listener never
//! holds more than `MAX_PACKET` bytes; `Known` is exactly an id,
//! `Partial` a strict prefix of one, `Unknown` neither; a parsed packet is
//! 1-64 bytes and parses back from its hex form; heartbeats and other
//! bytes add up to the stream.
//!
//! Input: byte 0 is flags (bit 0: the config's `registration = "hex"`;
//! bits 1-3: bytes per read, 1-8; bits 4-7: how many heartbeats in a row
//! to count), then the config lines (the heartbeat,
//! then up to 16 ids, `\n`-separated, lossy UTF-8) up to the first empty
//! line, then the bytes the DTU sends.
//!
//! Shared by the fuzz target (`dtu_registration.rs`) and the replay of
//! its corpus and regressions (`gateway/tests/fuzz_corpus.rs`).

use anquan_gateway::modbus::dtu::{
    Format, MAX_PACKET, Registration, classify, count_heartbeats, parse_packet,
};

/// Checks the properties on one input (layout in the module docs).
pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let format = if flags & 1 == 0 {
        Format::Text
    } else {
        Format::Hex
    };
    let per_read = usize::from((flags >> 1) & 7) + 1;
    let (config, wire) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &[][..]),
    };
    let config = String::from_utf8_lossy(config);
    let mut lines = config.split('\n');
    let heartbeat = lines.next().and_then(|l| packet(l, format));
    let ids: Vec<Vec<u8>> = lines.take(16).filter_map(|l| packet(l, format)).collect();

    // The registration, read as the listener reads it: never past
    // MAX_PACKET bytes, classified after every read.
    let mut got: Vec<u8> = Vec::new();
    let mut wire = wire;
    let known = loop {
        let want = (MAX_PACKET - got.len()).max(1);
        let n = want.min(per_read).min(wire.len());
        if n == 0 {
            break None; // the DTU closed (or stalled) before a whole id
        }
        got.extend_from_slice(&wire[..n]);
        wire = &wire[n..];
        assert!(
            got.len() <= MAX_PACKET,
            "the listener holds at most MAX_PACKET bytes"
        );
        match classify(&got, &ids) {
            Registration::Known(i) => {
                assert_eq!(ids[i], got, "Known is exactly an id");
                break Some(i);
            }
            Registration::Partial => {
                assert!(got.len() < MAX_PACKET);
                assert!(
                    ids.iter()
                        .any(|id| id.len() > got.len() && id.starts_with(&got)),
                    "Partial is a strict prefix of an id"
                );
            }
            Registration::Unknown => {
                assert!(!ids.contains(&got));
                assert!(
                    got.len() >= MAX_PACKET || !ids.iter().any(|id| id.starts_with(&got)),
                    "Unknown starts no id"
                );
                break None;
            }
        }
    };

    // After a registration: heartbeats and garbage before each request.
    if known.is_some() {
        let (beats, other) = count_heartbeats(wire, heartbeat.as_deref());
        let hb_len = heartbeat.as_ref().map_or(0, Vec::len) as u64;
        assert_eq!(beats * hb_len + other, wire.len() as u64);
        if heartbeat.is_none() {
            assert_eq!((beats, other), (0, wire.len() as u64));
        }
    }
    // A stream of nothing but heartbeats is all heartbeats.
    if let Some(hb) = &heartbeat {
        let k = usize::from(flags >> 4);
        assert_eq!(count_heartbeats(&hb.repeat(k), Some(hb)), (k as u64, 0));
    }
}

/// A config line's bytes, checked: 1-64 bytes, and the same bytes again
/// when written as hex (either way the config may write them).
fn packet(line: &str, format: Format) -> Option<Vec<u8>> {
    let bytes = parse_packet(line, format).ok()?;
    assert!(!bytes.is_empty() && bytes.len() <= MAX_PACKET);
    let hex: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
    assert_eq!(
        parse_packet(&format!("hex:{}", hex.join(",")), Format::Text).ok(),
        Some(bytes.clone())
    );
    if format == Format::Text && !line.starts_with("text:") && !line.starts_with("hex:") {
        assert_eq!(bytes, line.as_bytes());
    }
    Some(bytes)
}
