//! One sample-and-evaluate step of the device, per kind.
//!
//! * `<kind>/step`: `Device::step` at the next sample time, on a front end
//!   that returns values directly: the firmware's own work (stuck check,
//!   median filter, quantisation, the edge-rules, outputs, frame building,
//!   and every 15th step a telemetry frame into the buffer, encoded to JSON
//!   and handed to a transport that accepts it).
//! * `<kind>/step_on_part_models`: the same through the real drivers on the
//!   `sim` part models (I²C/SPI/GPIO traffic included; the models' own
//!   locking is part of the cost).
//! * `<kind>/baseline_rules_evaluate`, measured in the same run: the
//!   kind's default `RuleSet::evaluate` on the same readings, the least a
//!   device judging locally must do. The ratio step / baseline is the
//!   firmware's overhead around the rules.

// A bench that cannot set up should stop loudly.
#![allow(clippy::unwrap_used)]

use anquan_edge_rules::{DeviceState, defaults};
use anquan_firmware::mqtt::{Publish, PublishError, Transport};
use anquan_firmware::sim::rigs::{CraneRig, ElectricalRig, GasRig, WaterRig};
use anquan_firmware::{ChannelSample, Device, DeviceConfig, Hal, Sample, Sensors, channels};
use anquan_protocol::{DeviceKind, Faults, Id, Metric, Readings};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

/// Accepts everything, keeps nothing.
struct Sink(u64);

impl Transport for Sink {
    fn session(&mut self) -> Option<u32> {
        Some(1)
    }
    fn publish(&mut self, m: &Publish<'_>) -> Result<(), PublishError> {
        self.0 += m.payload.len() as u64;
        Ok(())
    }
}

/// Typical quiet values per kind, with a little noise so nothing is stuck.
fn values(kind: DeviceKind) -> &'static [(Metric, f32)] {
    match kind {
        DeviceKind::Gas => &[(Metric::LelPct, 3.0), (Metric::CoPpm, 4.0)],
        DeviceKind::Electrical => &[
            (Metric::ResidualMa, 120.0),
            (Metric::Temp1C, 41.0),
            (Metric::Temp2C, 43.0),
            (Metric::Temp3C, 40.0),
            (Metric::Temp4C, 44.0),
        ],
        DeviceKind::WaterPressure => &[(Metric::PressureMpa, 0.32), (Metric::LevelM, 4.0)],
        DeviceKind::Crane => &[
            (Metric::LoadT, 2.0),
            (Metric::MomentPct, 60.0),
            (Metric::RadiusM, 25.0),
            (Metric::HeightM, 40.0),
            (Metric::SlewDeg, 90.0),
            (Metric::WindMs, 6.0),
            (Metric::TiltDeg, 0.1),
        ],
        DeviceKind::FirePanel => &[
            (Metric::FirePoints, 0.0),
            (Metric::FaultPoints, 0.0),
            (Metric::IsolatedPoints, 0.0),
            (Metric::SupervisionPoints, 0.0),
        ],
    }
}

struct Direct {
    kind: DeviceKind,
    n: u32,
}

impl Sensors for Direct {
    fn kind(&self) -> DeviceKind {
        self.kind
    }
    fn self_test(&mut self, _: &mut Faults) {}
    fn sample(&mut self, out: &mut Sample) {
        self.n = self.n.wrapping_add(1);
        let jitter = (self.n % 3) as f32 * 0.01;
        for (m, v) in values(self.kind) {
            out.set(*m, ChannelSample::Value(v + jitter));
        }
    }
}

fn config() -> DeviceConfig {
    DeviceConfig::new(Id::new("s1").unwrap(), Id::new("bench-1").unwrap())
}

fn bench_steps<S: Sensors>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: String,
    mut device: Device<
        S,
        impl embedded_hal::digital::OutputPin,
        impl embedded_hal::digital::OutputPin,
        impl embedded_hal::digital::InputPin,
        impl anquan_firmware::hal::Clock,
    >,
) {
    let mut sink = Sink(0);
    let mut t = 0u64;
    c.bench_function(name, |b| {
        b.iter(|| {
            t += 1_000;
            black_box(device.step(t, &mut sink))
        })
    });
    black_box(sink.0);
}

fn step(c: &mut Criterion) {
    let mut g = c.benchmark_group("step");
    for kind in DeviceKind::ALL {
        if kind == DeviceKind::FirePanel {
            continue; // not a device our firmware runs on
        }
        let device = Device::new(config(), Hal::new(Direct { kind, n: 0 })).unwrap();
        bench_steps(&mut g, format!("{kind}/step"), device);
        match kind {
            DeviceKind::Gas => bench_steps(
                &mut g,
                format!("{kind}/step_on_part_models"),
                GasRig::new().device(config()).unwrap(),
            ),
            DeviceKind::Electrical => bench_steps(
                &mut g,
                format!("{kind}/step_on_part_models"),
                ElectricalRig::new().device(config()).unwrap(),
            ),
            DeviceKind::WaterPressure => bench_steps(
                &mut g,
                format!("{kind}/step_on_part_models"),
                WaterRig::new().device(config()).unwrap(),
            ),
            DeviceKind::Crane => bench_steps(
                &mut g,
                format!("{kind}/step_on_part_models"),
                CraneRig::new().device(config()).unwrap(),
            ),
            DeviceKind::FirePanel => {}
        }
        let rules = defaults::for_kind(kind);
        let mut state = DeviceState::new(0);
        let readings: [Readings; 3] = core::array::from_fn(|j| {
            let mut r: Readings = values(kind)
                .iter()
                .map(|(m, v)| (*m, v + j as f32 * 0.01))
                .collect();
            if channels::index(kind, Metric::AlarmBtn).is_some() {
                r.set(Metric::AlarmBtn, 0.0).unwrap();
            }
            r
        });
        let mut t = 0u64;
        g.bench_function(format!("{kind}/baseline_rules_evaluate"), |b| {
            b.iter(|| {
                t += 1_000;
                let r = &readings[(t / 1_000 % 3) as usize];
                rules.evaluate(&mut state, black_box(r), &[], t)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, step);
criterion_main!(benches);
