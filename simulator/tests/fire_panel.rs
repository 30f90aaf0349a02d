//! `anquan-sim fire-panel` as the binary: its stdout lines and exit status
//! against a gateway played here (confirms everything, or nothing), and a
//! bad `--step` refused before dialling.

// Test helpers outside #[test] fns: a failed setup step is a test failure.
#![allow(clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::Duration;

use anquan_protocol::gb26875::{Command as Cmd, Frame};

/// Serves one connection: answers every frame with `answer`, returns the
/// serials seen when the device hangs up.
fn gateway(listener: TcpListener, answer: Option<Cmd>) -> std::thread::JoinHandle<Vec<u16>> {
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut buf = Vec::new();
        let mut serials = Vec::new();
        let mut chunk = [0u8; 512];
        loop {
            while let Ok((f, used)) = Frame::decode(&buf) {
                serials.push(f.header.serial);
                if let Some(cmd) = answer {
                    let reply = f.header.reply(cmd, f.header.time);
                    let bytes = Frame::new(reply, &[]).to_vec().expect("encode");
                    s.write_all(&bytes).expect("answer");
                }
                buf.drain(..used);
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return serials,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
}

fn fire_panel(port: u16, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anquan-sim"))
        .args([
            "fire-panel",
            "--connect",
            &format!("127.0.0.1:{port}"),
            "--address",
            "100001",
        ])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("anquan-sim: {e}"))
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    (l, port)
}

#[test]
fn confirmed_steps_print_a_line_each_then_done() {
    let (l, port) = listener();
    let gw = gateway(l, Some(Cmd::Confirm));
    let out = fire_panel(
        port,
        &["--step", "fire@1/2=3F east corridor", "--step", "reset"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        stdout,
        "confirmed serial=1 step=fire@1/2=3F east corridor\nconfirmed serial=2 step=reset\ndone\n"
    );
    assert!(
        stderr.contains(&format!("connected 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert_eq!(gw.join().expect("gateway"), [1, 2]);
}

#[test]
fn an_unconfirmed_frame_exits_non_zero() {
    let (l, port) = listener();
    let gw = gateway(l, None);
    let out = fire_panel(
        port,
        &[
            "--confirm-timeout-ms",
            "100",
            "--retries",
            "1",
            "--step",
            "fault@1/7",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("unconfirmed serial=1 step=fault@1/7"),
        "{stderr}"
    );
    assert_eq!(gw.join().expect("gateway"), [1, 1]);
}

#[test]
fn a_bad_step_is_refused() {
    let out = fire_panel(1, &["--step", "fire@1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("step `fire@1`: expected ZONE/POINT"),
        "{stderr}"
    );
}
