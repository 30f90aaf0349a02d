//! The register-map tables in README.md and firmware/README.md are
//! generated from `modbus::map_for`: this test renders them and fails if a
//! README does not contain them verbatim, so the documentation cannot drift
//! from the code. Print them with
//! `cargo test -p anquan-firmware --test readme -- --nocapture`.

use anquan_firmware::modbus::{
    HR_THRESHOLDS, IR_READINGS, REGS_PER_THRESHOLD, RegisterMap, map_for,
};
use anquan_firmware::scale;
use anquan_protocol::{DeviceKind, FaultCode, Metric};

fn unit(metric: Metric, rate: bool) -> String {
    let step = match scale::decimals(metric) {
        0 => "1",
        1 => "0.1",
        2 => "0.01",
        _ => "0.001",
    };
    let per = if rate { "/min" } else { "" };
    match metric.unit() {
        "" => step.to_string(),
        u => format!("{step} {u}{per}"),
    }
}

fn render(map: &RegisterMap) -> String {
    let n = map.channels.len() as u16;
    let mut s = format!(
        "**{}**: map id `0x{:04X}`, {} input registers, {} holding registers\n\n",
        map.kind,
        map.map_id(),
        map.input_len(),
        map.holding_len()
    );
    s.push_str("| input register | content | raw unit |\n|---|---|---|\n");
    for (i, m) in map.channels.iter().enumerate() {
        s.push_str(&format!(
            "| {} | `{}` | {} |\n",
            IR_READINGS + i as u16,
            m,
            unit(*m, false)
        ));
    }
    let names: Vec<String> = map.channels.iter().map(|m| format!("`{m}`")).collect();
    s.push_str(&format!(
        "| {}–{} | channel fault of {} | 0 none, else 1 + fault code |\n\n",
        IR_READINGS + n,
        IR_READINGS + 2 * n - 1,
        names.join(", ")
    ));
    s.push_str("| holding registers | threshold block (enable bit) | raw unit |\n|---|---|---|\n");
    for (i, b) in map.thresholds.iter().enumerate() {
        let start = HR_THRESHOLDS + REGS_PER_THRESHOLD * i as u16;
        s.push_str(&format!(
            "| {}–{} | `{}` ({}{}, bit {i}) | {} |\n",
            start,
            start + REGS_PER_THRESHOLD - 1,
            b.rule,
            if b.rate { "rate, " } else { "" },
            b.direction.as_str(),
            unit(b.metric, b.rate)
        ));
    }
    s
}

fn fault_codes() -> String {
    let mut s = String::from(
        "| code | wire name | channel fault register | device-fault bit |\n|---|---|---|---|\n",
    );
    for (i, c) in FaultCode::ALL.iter().enumerate() {
        s.push_str(&format!("| {i} | `{c}` | {} | {i} |\n", i + 1));
    }
    s
}

fn check(path: &str, tables: &[String]) {
    let readme = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for t in tables {
        assert!(
            readme.contains(t.as_str()),
            "{path} lacks (or has an outdated copy of) this table; regenerate it:\n\n{t}"
        );
    }
}

#[test]
fn readmes_carry_the_register_maps_of_the_code() {
    let mut tables: Vec<String> = DeviceKind::ALL
        .into_iter()
        .map(|k| render(map_for(k)))
        .collect();
    tables.push(fault_codes());
    for t in &tables {
        println!("{t}");
    }
    let dir = env!("CARGO_MANIFEST_DIR");
    check(&format!("{dir}/README.md"), &tables);
    check(&format!("{dir}/../README.md"), &tables);
}
