//! The gateway's DTU registration and heartbeat handling
//! (`anquan_gateway::modbus::dtu`) on arbitrary config lines and bytes
//! from a DTU; the properties and the input layout are in
//! `dtu_registration_property.rs` (replayed by
//! `gateway/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "dtu_registration_property.rs"]
mod property;

libfuzzer_sys::fuzz_target!(|data: &[u8]| property::check(data));
