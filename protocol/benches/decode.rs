//! Decode/encode cost of one telemetry frame per device kind.
//!
//! Baseline in the same run: `serde_json::from_slice::<serde_json::Value>` of
//! the same bytes (a generic, allocating parse without validation). Results
//! and the ratio are in BENCHMARKS.md.

use anquan_protocol::Telemetry;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

pub const FRAMES: [(&str, &str); 4] = [
    (
        "gas",
        r#"{"device":"gas-0001","kind":"gas","seq":1234,"ts_ms":1732300000000,"readings":{"lel_pct":12.5,"co_ppm":3.0},"faults":[]}"#,
    ),
    (
        "electrical",
        r#"{"device":"elec-0001","kind":"electrical","seq":1234,"ts_ms":1732300000000,"readings":{"residual_ma":120.0,"temp1_c":41.5,"temp2_c":40.2,"temp3_c":39.8,"temp4_c":42.1,"current_a":63.0},"faults":[]}"#,
    ),
    (
        "water_pressure",
        r#"{"device":"wp-0001","kind":"water_pressure","seq":1234,"ts_ms":1732300000000,"readings":{"pressure_mpa":0.42,"level_m":3.1,"pump_on":0},"faults":[]}"#,
    ),
    (
        "crane",
        r#"{"device":"crane-0001","kind":"crane","seq":1234,"ts_ms":1732300000000,"readings":{"load_t":3.2,"moment_pct":61.5,"radius_m":32.0,"height_m":48.5,"slew_deg":127.0,"wind_ms":6.4,"tilt_deg":0.1},"faults":[]}"#,
    ),
];

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    for (kind, frame) in FRAMES {
        g.throughput(Throughput::Bytes(frame.len() as u64));
        g.bench_function(kind, |b| {
            b.iter(|| Telemetry::decode(black_box(frame.as_bytes())))
        });
        g.bench_function(format!("{kind}/baseline_serde_json_value"), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(frame.as_bytes())))
        });
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for (kind, frame) in FRAMES {
        let Ok(t) = Telemetry::decode(frame.as_bytes()) else {
            panic!("bench frame {kind} must decode");
        };
        let mut buf = [0u8; 1024];
        g.bench_function(kind, |b| b.iter(|| black_box(&t).encode(&mut buf)));
    }
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
