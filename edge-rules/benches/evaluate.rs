//! Rule evaluation per frame, per device kind, under the default rule sets.
//!
//! Each iteration evaluates every rule of the kind's default set against a
//! frame that alternates between two values, so the debounce and hysteresis
//! paths run. Baseline in the same run: a bare loop comparing each reading of
//! the frame with one threshold (the least any rule engine must do).

use anquan_edge_rules::{DeviceState, defaults};
use anquan_protocol::{DeviceKind, Metric, Readings};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn frame(kind: DeviceKind, high: bool) -> Readings {
    let k = if high { 1.6 } else { 1.0 };
    let pairs: &[(Metric, f32)] = match kind {
        DeviceKind::Gas => &[(Metric::LelPct, 12.0), (Metric::CoPpm, 9.0)],
        DeviceKind::Electrical => &[
            (Metric::ResidualMa, 180.0),
            (Metric::Temp1C, 50.0),
            (Metric::Temp2C, 45.0),
            (Metric::Temp3C, 44.0),
            (Metric::Temp4C, 46.0),
        ],
        DeviceKind::WaterPressure => &[(Metric::PressureMpa, 0.14), (Metric::LevelM, 3.0)],
        DeviceKind::Crane => &[
            (Metric::MomentPct, 70.0),
            (Metric::WindMs, 8.0),
            (Metric::TiltDeg, 0.2),
            (Metric::LoadT, 3.0),
        ],
        DeviceKind::FirePanel => &[
            (Metric::FirePoints, 0.0),
            (Metric::FaultPoints, 1.0),
            (Metric::IsolatedPoints, 2.0),
            (Metric::SupervisionPoints, 0.0),
        ],
    };
    pairs.iter().map(|(m, v)| (*m, v * k)).collect()
}

fn evaluate(c: &mut Criterion) {
    let mut g = c.benchmark_group("evaluate");
    for kind in DeviceKind::ALL {
        let rules = defaults::for_kind(kind);
        let n = rules.rules().iter().filter(|r| r.enabled).count() as u64;
        let frames = [frame(kind, false), frame(kind, true)];
        g.throughput(Throughput::Elements(n));
        let mut state = DeviceState::new(0);
        let mut t = 0u64;
        g.bench_function(kind.as_str(), |b| {
            b.iter(|| {
                t += 1000;
                let f = &frames[(t / 1000 % 2) as usize];
                rules.evaluate(&mut state, black_box(f), &[], t)
            })
        });
        g.bench_function(format!("{}/baseline_compare", kind.as_str()), |b| {
            b.iter(|| {
                t += 1000;
                let f = &frames[(t / 1000 % 2) as usize];
                black_box(f)
                    .iter()
                    .filter(|(_, v)| *v >= black_box(50.0))
                    .count()
            })
        });
    }
    g.finish();
}

/// The offline check a gateway runs every second for every device: a
/// device heard recently (one comparison), and a device silent for a night
/// outside its working hours (the working time of its silence is counted at
/// every check). Baseline: the healthy device's check without hours.
fn tick(c: &mut Criterion) {
    // Monday 2024-11-25 00:00 +08:00.
    const MON: u64 = 1_732_464_000_000;
    const H: u64 = 3_600_000;
    let mut g = c.benchmark_group("tick");
    let plain = defaults::for_kind(DeviceKind::Crane);
    let mut scheduled = plain.clone();
    let mut hours = anquan_edge_rules::Hours::new(8 * 60).unwrap_or_default();
    for d in 0..6u16 {
        let _ = hours.push(d * 1440 + 7 * 60, d * 1440 + 19 * 60);
    }
    scheduled.set_hours(hours);
    let mut healthy = DeviceState::new(MON + 10 * H);
    let mut t = MON + 10 * H;
    g.bench_function("healthy/baseline_no_hours", |b| {
        b.iter(|| {
            t += 1;
            plain.tick(&mut healthy, black_box(t))
        })
    });
    let mut healthy2 = DeviceState::new(MON + 10 * H);
    let mut t = MON + 10 * H;
    g.bench_function("healthy/with_hours", |b| {
        b.iter(|| {
            t += 1;
            scheduled.tick(&mut healthy2, black_box(t))
        })
    });
    // Silent since 19:00 on Monday, checked through the night.
    let mut silent = DeviceState::new(MON + 19 * H);
    let mut t = MON + 22 * H;
    g.bench_function("silent_at_night/with_hours", |b| {
        b.iter(|| {
            t += 1;
            scheduled.tick(&mut silent, black_box(t))
        })
    });
    g.finish();
}

criterion_group!(benches, evaluate, tick);
criterion_main!(benches);
