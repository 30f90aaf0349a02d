//! Telemetry frames: never panic; whatever decodes is valid and survives an
//! encode/decode round trip unchanged.
#![no_main]

use anquan_protocol::Telemetry;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = Telemetry::decode(data) else {
        return;
    };
    assert!(frame.validate().is_ok(), "decoded frame fails validation");
    let bytes = frame.to_vec().expect("a decoded frame always fits 1 KiB when encoded");
    let again = Telemetry::decode(&bytes).expect("our own encoding decodes");
    assert_eq!(again, frame);
});
