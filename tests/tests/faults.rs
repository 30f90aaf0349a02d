//! The fault matrix (RELIABILITY.md), one test per fault, each with a short
//! outage (`ANQUAN_FAULT_OUTAGE_S`, default 5 s; `fault-matrix` runs the
//! same code with 120 s and writes the table). Under a steady load, after
//! every fault: no reading or alarm lost (except the buffer cap, whose
//! drops must all be counted and alarmed), nobody sees a transition twice,
//! no false alarm (e.g. every device "offline" during a broker outage), and
//! the gateway's memory stays bounded while the far end is slow.
//!
//! One at a time: each runs Mosquitto, VictoriaMetrics, the gateway and a
//! receiver, and judging a fault needs the machine to itself.

use std::sync::Mutex;
use std::time::Duration;

use anquan_e2e::faults::{self, Fault, Outcome};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn check(fault: Fault) -> Outcome {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let o = faults::run(fault, faults::outage_from_env(Duration::from_secs(5)));
    println!("{}\n{}", Outcome::header(), o.row(fault));
    assert!(o.readings_sent > 0 && o.alarms_sent > 0, "no load: {o:?}");
    if fault.drops_by_design() {
        assert!(o.readings_lost() > 0, "the cap was never reached: {o:?}");
        assert!(
            o.dropped_counted >= o.readings_lost(),
            "a drop went uncounted: {o:?}"
        );
        assert!(o.overflow_raised, "the drop was not alarmed: {o:?}");
    } else {
        assert_eq!(o.readings_lost(), 0, "readings lost: {o:?}");
        assert_eq!(o.dropped_counted, 0, "{o:?}");
    }
    assert_eq!(o.alarms_lost(), 0, "alarms lost: {o:?}");
    assert_eq!(o.visible_duplicates, 0, "{o:?}");
    assert_eq!(o.unexpected_alarms, 0, "false alarms: {o:?}");
    o
}

#[test]
fn broker_stopped_and_restarted() {
    check(Fault::BrokerRestart);
}

#[test]
fn broker_unreachable() {
    check(Fault::BrokerOutage);
}

#[test]
fn tsdb_down() {
    check(Fault::TsdbDown);
}

#[test]
fn tsdb_answers_500() {
    check(Fault::Tsdb500);
}

#[test]
fn tsdb_times_out() {
    check(Fault::TsdbTimeout);
}

#[test]
fn monitor_down() {
    check(Fault::MonitorDown);
}

#[test]
fn monitor_answers_500() {
    check(Fault::Monitor500);
}

#[test]
fn monitor_answers_slowly() {
    check(Fault::MonitorSlow);
}

#[test]
fn gateway_sigkilled_five_times() {
    check(Fault::GatewayKill5);
}

#[test]
fn disk_buffer_at_its_cap_drops_counted_and_alarmed() {
    check(Fault::BufferCap);
}

#[test]
fn slow_tsdb_keeps_memory_bounded() {
    let o = check(Fault::SlowTsdb);
    // Back-pressure goes to the disk buffer, not to memory.
    assert!(
        o.rss_max_kib <= o.rss_start_kib + 64 * 1024,
        "RSS grew from {} to {} KiB",
        o.rss_start_kib,
        o.rss_max_kib
    );
}

#[test]
fn gateway_disk_full_holds_ingest_back_and_recovers() {
    let o = check(Fault::DiskFull);
    assert!(
        o.buffer_errors > 0,
        "the disk never filled for the gateway (no failed buffer write): {o:?}"
    );
    assert!(o.stayed_up, "the gateway stopped answering: {o:?}");
}
