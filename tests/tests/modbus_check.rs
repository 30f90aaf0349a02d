//! `anquan-gateway check` catches Modbus map and link errors and names the
//! key; the shipped mixed-site example passes.

use std::process::Command;

use anquan_e2e::gateway::binary;

fn check(text: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let p = dir.path().join("g.toml");
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("write: {e}"));
    let out = Command::new(binary())
        .args(["check", "--config"])
        .arg(&p)
        .output()
        .unwrap_or_else(|e| panic!("run check: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const OK: &str = "[gateway]\nid = \"gw-1\"\ndata_dir = \"d\"\n\
    [[modbus.links]]\nname = \"l\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:502\"\n\
    [[modbus.links.devices]]\nid = \"d1\"\nsite = \"s1\"\nkind = \"water_pressure\"\nunit = 1\n";

#[test]
fn check_names_the_modbus_key() {
    let (ok, stdout, stderr) = check(OK);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("[[modbus.links]]"), "{stdout}");
    let reg = |line: &str| format!("{OK}[[modbus.links.devices.registers]]\n{line}\n");
    for (text, key, what) in [
        (
            reg("reading = \"psi\"\naddress = 0"),
            "modbus.links[0].devices[0].registers[0].reading",
            "unknown reading name",
        ),
        (
            reg("reading = \"pressure_mpa\"\naddress = 65535\ntype = \"u32\""),
            "modbus.links[0].devices[0].registers[0].address",
            "out of range",
        ),
        (
            reg("reading = \"pressure_mpa\"\naddress = 0\nfunction = \"coil\"\ntype = \"f32\""),
            "modbus.links[0].devices[0].registers[0].type",
            "bool",
        ),
        (
            format!(
                "{}{}",
                reg("reading = \"pressure_mpa\"\naddress = 3\ntype = \"f32\""),
                "[[modbus.links.devices.registers]]\nreading = \"level_m\"\naddress = 4\n"
            ),
            "modbus.links[0].devices[0].registers[1].address",
            "overlaps",
        ),
        (
            format!("{OK}map = \"builtin:smoke\"\n"),
            "modbus.links[0].devices[0].map",
            "unknown builtin map",
        ),
        (
            OK.replace("address = \"127.0.0.1:502\"", "address = \"plc:502\""),
            "modbus.links[0].address",
            "ip:port",
        ),
    ] {
        let (ok, _, stderr) = check(&text);
        assert!(!ok, "{text}");
        assert!(
            stderr.contains(&format!("config: {key}:")) && stderr.contains(what),
            "expected {key} / {what}, got: {stderr}"
        );
    }
}

#[test]
fn the_mixed_site_example_checks() {
    let path = anquan_e2e::workspace_root().join("gateway/examples/mixed-site.toml");
    let out = Command::new(binary())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
