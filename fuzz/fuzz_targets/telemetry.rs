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
    // Our encoding may be a little longer than a terse input ("0" → "0.0"),
    // so it may exceed the 1 KiB a decoder accepts; compare when it fits.
    let mut buf = [0u8; 2 * anquan_protocol::MAX_PAYLOAD];
    let n = frame.encode(&mut buf).expect("a decoded frame encodes into 2 KiB");
    if n > anquan_protocol::MAX_PAYLOAD {
        return;
    }
    let again = Telemetry::decode(&buf[..n]).expect("our own encoding decodes");
    assert_eq!(again, frame);
});
