//! Writes the fault matrix of RELIABILITY.md: every fault of
//! `anquan_e2e::faults` under the steady load, with a 120 s outage
//! (`ANQUAN_FAULT_OUTAGE_S` to change it), one at a time, as a markdown
//! table on stdout. Exits non-zero when a fault lost or duplicated anything
//! it must not.
//!
//! `cargo run -p anquan-e2e --bin fault-matrix > /tmp/matrix.md`
//! (the gateway under test is the build next to it, debug by default).

use std::process::ExitCode;
use std::time::Duration;

use anquan_e2e::faults::{self, Fault, Outcome};

fn main() -> ExitCode {
    let outage = faults::outage_from_env(Duration::from_secs(120));
    let only: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "Load: {} gas detectors, a frame every {} ms each (every frame one alarm transition); outage {} s.\n",
        faults::DEVICES,
        faults::PERIOD.as_millis(),
        outage.as_secs()
    );
    println!("{}", Outcome::header());
    let mut ok = true;
    for fault in Fault::ALL {
        if !only.is_empty() && !only.iter().any(|o| format!("{fault:?}") == *o) {
            continue;
        }
        let o = faults::run(fault, outage);
        let lost_ok = if fault.drops_by_design() {
            o.dropped_counted >= o.readings_lost() && o.overflow_raised
        } else {
            o.readings_lost() == 0
        };
        ok &= lost_ok
            && o.alarms_lost() == 0
            && o.visible_duplicates == 0
            && o.unexpected_alarms == 0
            && o.stayed_up;
        println!("{}", o.row(fault));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
