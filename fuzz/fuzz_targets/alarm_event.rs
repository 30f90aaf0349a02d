//! Alarm events (the monitor's intake body): never panic; whatever decodes
//! round-trips unchanged.
#![no_main]

use anquan_protocol::AlarmEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = AlarmEvent::decode(data) else {
        return;
    };
    // Every field is bounded (ids ≤ 256 bytes, numbers ≤ 24): the encoding
    // always fits 1 KiB.
    let bytes = event.to_vec().expect("a decoded event fits 1 KiB when encoded");
    let again = AlarmEvent::decode(&bytes).expect("our own encoding decodes");
    assert_eq!(again, event);
});
