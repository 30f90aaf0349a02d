//! The gateway's GB/T 26875.3 panel state (`anquan_gateway::gb26875`) on
//! arbitrary device byte streams; the properties are in
//! `gb26875_panel_property.rs` (replayed by
//! `gateway/tests/fuzz_corpus.rs`).
#![no_main]

#[path = "gb26875_panel_property.rs"]
mod property;

libfuzzer_sys::fuzz_target!(|data: &[u8]| property::check(data));
