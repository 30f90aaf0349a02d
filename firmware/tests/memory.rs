//! The RAM budget: what the firmware owns per device with the default RAM
//! ring, checked against the 8 KiB target (issue 4) with a margin, and
//! printed for the README:
//! `cargo test -p anquan-firmware --test memory -- --nocapture`.

use core::mem::size_of;

use anquan_edge_rules::{DeviceState, RuleSet};
use anquan_firmware::channels;
use anquan_firmware::kinds::crane::CraneConfig;
use anquan_firmware::kinds::electrical::ElectricalConfig;
use anquan_firmware::kinds::gas::GasConfig;
use anquan_firmware::kinds::water::PressureConfig;
use anquan_firmware::outbox::{Outbox, record_len};
use anquan_firmware::{Core, DEFAULT_OUTBOX_BYTES, DeviceConfig, Frame};
use anquan_protocol::DeviceKind;

const BUDGET: usize = 8 * 1024;
/// Room left under the budget on the host (x86-64 sizes: an upper bound of
/// a 32-bit MCU's; the reference images print the target's own, see
/// BENCHMARKS.md).
const MARGIN: usize = 512;

/// Bytes of one frame of `kind` with every channel present and no fault.
fn full_record(kind: DeviceKind) -> usize {
    let mut f = Frame::new();
    for v in f.values.iter_mut().take(channels::of(kind).len()) {
        *v = 1;
    }
    record_len(&f)
}

#[test]
fn device_state_and_buffer_fit_the_budget() {
    let core = size_of::<Core<Outbox<DEFAULT_OUTBOX_BYTES>>>();
    let outbox = size_of::<Outbox<DEFAULT_OUTBOX_BYTES>>();
    println!("| part | bytes |");
    println!("|---|---|");
    println!("| `Core` (everything below) | {core} |");
    println!("| ├ offline buffer `Outbox<{DEFAULT_OUTBOX_BYTES}>` | {outbox} |");
    println!(
        "| ├ rules `RuleSet` (16 rules) | {} |",
        size_of::<RuleSet>()
    );
    println!(
        "| ├ alarm state `DeviceState` | {} |",
        size_of::<DeviceState>()
    );
    println!("| ├ `DeviceConfig` | {} |", size_of::<DeviceConfig>());
    println!(
        "| ├ latest `Frame` (Modbus view) | {} |",
        size_of::<Frame>()
    );
    let named = outbox
        + size_of::<RuleSet>()
        + size_of::<DeviceState>()
        + size_of::<DeviceConfig>()
        + size_of::<Frame>();
    println!(
        "| └ channel filters, stuck counters, faults, schedule, counters | {} |",
        core - named
    );
    println!();
    println!(
        "| kind | front-end config | state + buffer | frame bytes | frames buffered | minutes of 15 s telemetry |"
    );
    println!("|---|---|---|---|---|---|");
    for (kind, cfg) in [
        (DeviceKind::Gas, size_of::<GasConfig>()),
        (DeviceKind::Electrical, size_of::<ElectricalConfig>()),
        (DeviceKind::WaterPressure, size_of::<PressureConfig>()),
        (DeviceKind::Crane, size_of::<CraneConfig>()),
    ] {
        let total = core + cfg;
        let rec = full_record(kind);
        let frames = DEFAULT_OUTBOX_BYTES / rec;
        println!(
            "| {kind} | {cfg} | {total} | {rec} | {frames} | {} |",
            frames / 4
        );
        assert!(
            total + MARGIN <= BUDGET,
            "{kind}: {total} bytes leave less than {MARGIN} of {BUDGET}"
        );
        // At least half an hour of telemetry survives an outage.
        assert!(frames >= 120, "{kind}: only {frames} frames");
    }
}
