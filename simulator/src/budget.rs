//! The false-alarm budget: how many alarms a quiet site raises per device
//! per day.
//!
//! A budget scenario is an ordinary scenario file with no `[[expect]]`: a
//! simulated day of a site where nothing is wrong, with the noise real
//! sites have (sensor noise and zero drift, cooking fumes, load and
//! humidity cycles, a jockey pump's saw-tooth and the weekly pump test,
//! turbulence and gusts, 4G outages, devices switched off at night and
//! after work). Every alarm it raises is a false alarm. The shipped days
//! (`simulator/budget/`) must raise none, and CI checks that they do not
//! (`simulator/tests/budget.rs`).
//!
//! By default the messages are judged by the rule engine alone
//! ([`crate::judge`]), which takes a second or two per simulated day;
//! `--via-gateway` runs the same day through the in-process gateway
//! (minutes).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anquan_protocol::{AlarmState, DeviceKind};

use crate::run::{Observed, RunOptions, run_blocking, run_engine};
use crate::scenario::Scenario;

/// One device's count.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceBudget {
    /// Device id.
    pub device: String,
    /// Kind.
    pub kind: DeviceKind,
    /// Alarms raised (`raised` transitions: an escalation of a standing
    /// alarm is the same alarm).
    pub raised: usize,
    /// Every transition.
    pub transitions: usize,
    /// `raised` per simulated day.
    pub per_day: f64,
}

/// The result of one budget scenario.
#[derive(Debug, Clone)]
pub struct BudgetReport {
    /// The scenario's name.
    pub name: String,
    /// Simulated days.
    pub days: f64,
    /// Per device, in scenario order.
    pub devices: Vec<DeviceBudget>,
    /// Every alarm, for the listing.
    pub alarms: Vec<Observed>,
    /// Wall time, s.
    pub wall_s: f64,
}

impl BudgetReport {
    /// The highest alarm rate of any device, per day.
    pub fn worst_per_day(&self) -> f64 {
        self.devices.iter().map(|d| d.per_day).fold(0.0, f64::max)
    }
}

/// Runs `scenario` and counts its alarms per device.
pub fn run(scenario: &Scenario, via_gateway: bool) -> Result<BudgetReport, String> {
    let report = if via_gateway {
        run_blocking(scenario, &RunOptions::default())?
    } else {
        run_engine(scenario, false)?
    };
    let days = scenario.spec.duration_s as f64 / 86_400.0;
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for o in &report.alarms {
        let c = counts.entry(o.event.device.as_str()).or_default();
        c.1 += 1;
        if o.event.state == AlarmState::Raised {
            c.0 += 1;
        }
    }
    let devices = scenario
        .spec
        .devices
        .iter()
        .map(|d| {
            let (raised, transitions) = counts.get(d.id.as_str()).copied().unwrap_or_default();
            DeviceBudget {
                device: d.id.clone(),
                kind: d.kind,
                raised,
                transitions,
                per_day: raised as f64 / days,
            }
        })
        .collect();
    Ok(BudgetReport {
        name: scenario.name().to_string(),
        days,
        devices,
        alarms: report.alarms,
        wall_s: report.wall_s,
    })
}

/// A table of the counts, then every alarm; `max_per_day` marks the
/// devices over budget.
pub fn render(r: &BudgetReport, max_per_day: f64) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}: {:.2} simulated day(s) in {:.1} s",
        r.name, r.days, r.wall_s
    );
    let _ = writeln!(
        s,
        "  {:<14} {:<15} {:>7} {:>12} {:>14}",
        "device", "kind", "raised", "transitions", "alarms/day"
    );
    for d in &r.devices {
        let over = if d.per_day > max_per_day {
            "  OVER BUDGET"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  {:<14} {:<15} {:>7} {:>12} {:>14.2}{over}",
            d.device,
            d.kind.as_str(),
            d.raised,
            d.transitions,
            d.per_day
        );
    }
    for o in &r.alarms {
        let _ = writeln!(s, "  {}", crate::run::format_alarm(o));
    }
    s
}
