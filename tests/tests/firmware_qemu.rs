//! The firmware on an emulated MCU (QEMU `mps2-an386`, Cortex-M4F): the
//! reference images (reference/, built by `reference/build-images`, which
//! scripts/test runs first) boot, run 75 s of their scripted world and
//! exit through semihosting. Their alarms must be the ones the host
//! predicts with the same firmware and edge-rules code
//! (`anquan_reference::predict`), locally and end to end:
//!
//! * every kind boots and prints its transitions (a failed run exits 1);
//! * MQTT: the gas image's UART is a TCP character device straight into a
//!   real Mosquitto (QEMU plays the transparent 4G DTU) → the gateway
//!   binary → the HTTP alarm intake (the monitor's contract);
//! * Modbus RTU: a second gas image serves its registers as an RTU slave on
//!   a TCP character device, polled by the gateway's `rtu_over_tcp` link;
//! * the images' flash and static RAM per kind and target, from the ELF
//!   files (printed for BENCHMARKS.md; the flash budget is checked).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::receiver::Receiver;
use anquan_e2e::services::{Mosquitto, eventually, free_port, require};
use anquan_protocol::{AlarmEvent, DeviceKind};

const KINDS: [DeviceKind; 4] = [
    DeviceKind::Gas,
    DeviceKind::Electrical,
    DeviceKind::WaterPressure,
    DeviceKind::Crane,
];
const TARGETS: [&str; 3] = [
    "thumbv7em-none-eabihf",
    "thumbv6m-none-eabi",
    "riscv32imc-unknown-none-elf",
];
/// Flash budget of an image on thumbv7em-none-eabihf (issue 20).
const FLASH_BUDGET: u64 = 96 * 1024;
/// Stack budget of the loop beyond its own state (painted, measured).
const STACK_BUDGET: usize = 8 * 1024;

fn image(target: &str, kind: DeviceKind) -> PathBuf {
    let p = anquan_e2e::workspace_root()
        .join("reference/target")
        .join(target)
        .join("release")
        .join(kind.as_str());
    assert!(
        p.is_file(),
        "{} is missing: run reference/build-images (scripts/test does)",
        p.display()
    );
    p
}

/// (rule, level, state, ms) of every predicted transition.
fn predicted(kind: DeviceKind) -> Vec<(String, String, String, u64)> {
    let mut v = Vec::new();
    anquan_reference::predict(kind, anquan_reference::world::RUN_MS, |ms, t| {
        v.push((
            t.rule.to_string(),
            t.level.to_string(),
            t.state.to_string(),
            ms,
        ))
    });
    v
}

/// Runs an image to its semihosting exit with the given serial ports
/// (UART0, UART1 = MQTT, UART2 = Modbus); returns (success, stdout).
fn run_qemu(kind: DeviceKind, serials: &[String]) -> (bool, String) {
    let qemu = require("qemu-system-arm");
    let mut cmd = Command::new(qemu);
    cmd.args(["-machine", "mps2-an386", "-nographic", "-monitor", "none"])
        .args(["-semihosting-config", "enable=on,target=native"]);
    for s in serials {
        cmd.arg(s);
    }
    cmd.arg("-kernel")
        .arg(image(TARGETS[0], kind))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn qemu-system-arm");
    // The run is bounded by the image itself (75 s of uptime); a hung
    // emulator is killed by the test's own deadline below.
    let started = Instant::now();
    let out = child.wait_with_output().expect("qemu output");
    assert!(started.elapsed() < Duration::from_secs(300));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), format!("{stdout}{stderr}"))
}

fn transitions(output: &str) -> Vec<(String, String, String, u64)> {
    output
        .lines()
        .filter_map(|l| {
            let mut w = l.strip_prefix("T ")?.split_whitespace();
            let ms = w.next()?.parse().ok()?;
            Some((
                w.next()?.to_string(),
                w.next()?.to_string(),
                w.next()?.to_string(),
                ms,
            ))
        })
        .collect()
}

fn summary(output: &str, key: &str) -> Option<u64> {
    let line = output.lines().find(|l| l.starts_with("S "))?;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
}

#[test]
fn every_kind_boots_and_raises_the_predicted_alarms() {
    let runs: Vec<_> = KINDS
        .iter()
        .map(|&k| {
            std::thread::spawn(move || {
                let null = "-serial null".split(' ').map(String::from);
                let serials: Vec<String> = null.clone().chain(null.clone()).chain(null).collect();
                (k, run_qemu(k, &serials))
            })
        })
        .collect();
    println!("| kind | state (device, link, slave, store) | peak stack | loop beyond its state |");
    println!("|---|---|---|---|");
    for r in runs {
        let (kind, (ok, out)) = r.join().expect("qemu thread");
        assert!(ok, "{kind}: the image failed (exit code):\n{out}");
        let got = transitions(&out);
        let want = predicted(kind);
        assert!(!want.is_empty(), "{kind}: the script raises alarms");
        let names = |v: &[(String, String, String, u64)]| {
            v.iter()
                .map(|(r, l, s, _)| format!("{r} {l} {s}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&got), names(&want), "{kind}:\n{out}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g.3.abs_diff(w.3) < 1_000,
                "{kind}: {g:?} vs predicted {w:?}"
            );
        }
        let state = summary(&out, "state").expect("state") as usize;
        let stack = summary(&out, "stack").expect("stack") as usize;
        assert!(stack >= state && stack > 0, "{kind}: {out}");
        assert!(
            stack - state <= STACK_BUDGET,
            "{kind}: the loop used {} B of stack beyond its state",
            stack - state
        );
        println!("| {kind} | {state} | {stack} | {} |", stack - state);
    }
}

/// The MQTT path: QEMU's UART1 is a TCP client of Mosquitto.
#[test]
fn gas_image_over_mqtt_reaches_the_gateway_and_the_alarm_intake() {
    let mq = Mosquitto::start();
    let rx = Receiver::start("tok");
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "tok".into())),
        ..Setup::default()
    });
    let serials = vec![
        "-serial".into(),
        "null".into(),
        "-chardev".into(),
        format!(
            "socket,id=dtu,host=127.0.0.1,port={},reconnect=1",
            mq.port()
        ),
        "-serial".into(),
        "chardev:dtu".into(),
        "-serial".into(),
        "null".into(),
    ];
    let (ok, out) = run_qemu(DeviceKind::Gas, &serials);
    assert!(ok, "the image failed:\n{out}\ngateway log:\n{}", gw.log());
    // Every frame went out over MQTT and was acknowledged.
    assert_eq!(summary(&out, "held"), Some(0), "{out}");
    assert!(summary(&out, "acked").unwrap_or(0) >= 9, "{out}");
    let want: Vec<_> = predicted(DeviceKind::Gas)
        .into_iter()
        .map(|(r, l, s, _)| format!("{r} {l} {s}"))
        .collect();
    let got = eventually(Duration::from_secs(30), "the predicted alarms", || {
        let got = device_alarms(&rx.events(), "gas-q1");
        (got.len() >= want.len()).then_some(got)
    });
    assert_eq!(got[..want.len()], want[..], "{out}\n{}", gw.log());
    // The gateway saw the device's frames in sequence: no gap, no reject.
    assert!(
        gw.metric("anquan_gateway_frames_received_total") >= 9.0,
        "{}",
        gw.metrics()
    );
    assert_eq!(
        gw.metric("anquan_gateway_seq_gaps_total"),
        0.0,
        "{}",
        gw.metrics()
    );
}

/// The Modbus path: QEMU's UART2 is a TCP server polled over RTU.
#[test]
fn gas_image_as_rtu_slave_is_polled_by_the_gateway() {
    let port = free_port();
    let mq = Mosquitto::start();
    let rx = Receiver::start("tok");
    let serials = vec![
        "-serial".into(),
        "null".into(),
        "-serial".into(),
        "null".into(),
        "-chardev".into(),
        format!("socket,id=rtu,host=127.0.0.1,port={port},server=on,wait=off"),
        "-serial".into(),
        "chardev:rtu".into(),
    ];
    let qemu = std::thread::spawn(move || run_qemu(DeviceKind::Gas, &serials));
    let extra = format!(
        "[[modbus.links]]\nname = \"rtu\"\ntransport = \"rtu_over_tcp\"\naddress = \"127.0.0.1:{port}\"\n\
         poll_interval_ms = 500\ntimeout_ms = 500\nretries = 2\nbackoff = {{ initial_ms = 100, max_ms = 500 }}\n\
         [[modbus.links.devices]]\nid = \"gas-rtu\"\nsite = \"qemu\"\nkind = \"gas\"\nunit = 1\n"
    );
    let gw = GatewayProcess::start(&Setup {
        mqtt_port: mq.port(),
        http: Some((rx.url(), "tok".into())),
        extra,
        ..Setup::default()
    });
    let (ok, out) = qemu.join().expect("qemu thread");
    assert!(ok, "the image failed:\n{out}\ngateway log:\n{}", gw.log());
    assert!(summary(&out, "rtu_answered").unwrap_or(0) >= 100, "{out}");
    let want: Vec<_> = predicted(DeviceKind::Gas)
        .into_iter()
        .map(|(r, l, s, _)| format!("{r} {l} {s}"))
        .collect();
    let got = device_alarms(&rx.events(), "gas-rtu");
    // After the image exits the link goes silent: only the offline alarm
    // may follow the predicted ones.
    let measured: Vec<_> = got
        .iter()
        .filter(|a| !a.starts_with("gas.offline"))
        .cloned()
        .collect();
    assert_eq!(measured, want, "{out}\n{}", gw.log());
    // The gateway really polled the slave, many times.
    assert!(
        gw.metric(r#"anquan_gateway_modbus_polls_total{link="rtu",result="ok"}"#) >= 50.0,
        "{}",
        gw.metrics()
    );
}

fn device_alarms(events: &[AlarmEvent], device: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.device == device)
        .map(|e| format!("{} {} {}", e.rule, e.level, e.state))
        .collect()
}

/// Flash (text, read-only data, vector table, initialised data) and static
/// RAM (data, bss) of an ELF32 image, from its section headers.
fn elf_sizes(path: &PathBuf) -> (u64, u64) {
    let b = std::fs::read(path).expect("read image");
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([b[o], b[o + 1]]));
    let u32_at = |o: usize| u64::from(u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]));
    assert_eq!(&b[..5], b"\x7fELF\x01", "{}: not ELF32", path.display());
    let (shoff, shentsize, shnum) = (u32_at(0x20), u16_at(0x2E), u16_at(0x30));
    let strtab = u32_at((shoff + u16_at(0x32) * shentsize) as usize + 16) as usize;
    let name = |h: usize| {
        let at = strtab + u32_at(h) as usize;
        let end = b[at..].iter().position(|c| *c == 0).map_or(at, |n| at + n);
        String::from_utf8_lossy(&b[at..end]).into_owned()
    };
    let (mut flash, mut ram) = (0, 0);
    for i in 0..shnum {
        let h = (shoff + i * shentsize) as usize;
        let (kind, flags, size) = (u32_at(h + 4), u32_at(h + 8), u32_at(h + 20));
        // riscv-rt reserves the rest of the RAM as `.stack` / `.heap`
        // sections: not statics.
        if name(h).starts_with(".stack") || name(h).starts_with(".heap") {
            continue;
        }
        const ALLOC: u64 = 2;
        const WRITE: u64 = 1;
        const NOBITS: u64 = 8;
        if flags & ALLOC == 0 {
            continue;
        }
        if kind != NOBITS {
            flash += size;
        }
        if flags & WRITE != 0 {
            ram += size;
        }
    }
    (flash, ram)
}

#[test]
fn image_sizes_per_kind_and_target() {
    println!("| target | kind | flash (B) | static RAM (B) |");
    println!("|---|---|---|---|");
    for target in TARGETS {
        for kind in KINDS {
            let (flash, ram) = elf_sizes(&image(target, kind));
            println!("| {target} | {kind} | {flash} | {ram} |");
            assert!(
                flash > 20_000,
                "{target} {kind}: {flash} B is not a whole image"
            );
            if target == TARGETS[0] {
                assert!(flash <= FLASH_BUDGET, "{target} {kind}: {flash} B of flash");
            }
        }
    }
}
