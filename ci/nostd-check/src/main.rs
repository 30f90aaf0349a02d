//! Runs the device-side code paths with no std and no allocator, and checks
//! the results. Exit code 0 = correct; anything else names the failed check.
#![no_std]
#![no_main]

use anquan_edge_rules::{DeviceState, defaults};
use anquan_protocol::{AlarmState, DeviceKind, Level, Metric, Telemetry};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

#[link(name = "c")]
unsafe extern "C" {}

const FRAME: &[u8] = br#"{"device":"gas-0001","kind":"gas","seq":7,"ts_ms":1732300000000,"readings":{"lel_pct":55.0,"co_ppm":3.0},"faults":[]}"#;

fn check() -> Result<(), i32> {
    // Wire contract: decode, encode, decode again.
    let frame = Telemetry::decode(FRAME).map_err(|_| 10)?;
    if frame.kind != DeviceKind::Gas || frame.seq != 7 || frame.readings.get(Metric::LelPct) != Some(55.0) {
        return Err(11);
    }
    let mut buf = [0u8; 1024];
    let n = frame.encode(&mut buf).map_err(|_| 12)?;
    if Telemetry::decode(&buf[..n]).map_err(|_| 13)? != frame {
        return Err(14);
    }
    // Bad input is a typed error, not a crash.
    if Telemetry::decode(b"{\"device\":\"a/b\"}").is_ok() {
        return Err(15);
    }
    // Rules: 55 %LEL is red at once under the defaults; then offline.
    let rules = defaults::for_kind(DeviceKind::Gas);
    let mut state = DeviceState::new(0);
    let t = rules.evaluate(&mut state, &frame.readings, &frame.faults, 15_000);
    if t.len() != 1 || t[0].level != Level::Red || t[0].state != AlarmState::Raised || t[0].rule != "gas.lel" {
        return Err(20);
    }
    let t = rules.tick(&mut state, 60_000);
    if t.len() != 1 || t[0].rule != "gas.offline" {
        return Err(21);
    }
    Ok(())
}

#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    match check() {
        Ok(()) => 0,
        Err(code) => code,
    }
}
