//! The simulator as a 4G DTU: it dials the gateway's `[modbus.dtu]`
//! listener, sends its registration packet, then serves the site's Modbus
//! RTU register map on that connection and sends a heartbeat every few
//! seconds, as a DTU in transparent mode does. When the connection drops
//! it dials again with backoff.
//!
//! tokio-modbus's RTU server only runs on a serial port, so the RTU
//! request framing is here: read requests (functions 1–4, fixed 8 bytes
//! with CRC; anything else is skipped a byte at a time until a frame
//! checks out) and answers with [`Site`]'s replies.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_modbus::{ExceptionCode, Request, Response, SlaveRequest};

use crate::modbus::Site;

/// Where and how to dial.
#[derive(Debug, Clone)]
pub struct DtuOptions {
    /// The gateway's `host:port`.
    pub gateway: String,
    /// The registration packet.
    pub id: Vec<u8>,
    /// The heartbeat packet and its period (none: no heartbeats).
    pub heartbeat: Option<(Vec<u8>, Duration)>,
}

/// `anquan-sim modbus --dtu ...`: the options, and the registration and
/// heartbeat as the gateway's config writes them.
#[derive(Debug, Clone)]
pub struct DtuSetup {
    /// What to dial and send.
    pub opts: DtuOptions,
    /// The link's `dtu_id` (`hex:...` for a hex id).
    pub id_config: String,
    /// `[modbus.dtu] heartbeat`, if heartbeats are sent.
    pub heartbeat_config: Option<String>,
}

/// Checks `--dtu-id`, `--dtu-hex`, `--heartbeat-s` and `--heartbeat`,
/// parsed as the gateway parses its config (`text:` / `hex:` prefixes
/// too). Without `heartbeat` the heartbeat packet is the registration
/// packet, as many DTUs send; `heartbeat_s = 0`: no heartbeats.
pub fn setup(
    gateway: String,
    id: &str,
    hex: bool,
    heartbeat_s: u64,
    heartbeat: Option<&str>,
) -> Result<DtuSetup, String> {
    use anquan_gateway::modbus::dtu::{Format, parse_packet};
    let format = if hex { Format::Hex } else { Format::Text };
    let id_bytes = parse_packet(id, format).map_err(|e| format!("--dtu-id: {e}"))?;
    // What the gateway's config (registration = "text", the default)
    // reads as the same bytes.
    let config_form = |text: &str, bytes: &[u8]| {
        if hex {
            let h: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
            format!("hex:{}", h.join(" "))
        } else {
            text.to_string()
        }
    };
    let (beat, heartbeat_config) = if heartbeat_s == 0 {
        (None, None)
    } else {
        let text = heartbeat.unwrap_or(id);
        let bytes = parse_packet(text, format).map_err(|e| format!("--heartbeat: {e}"))?;
        let config = config_form(text, &bytes);
        (
            Some((bytes, Duration::from_secs(heartbeat_s))),
            Some(config),
        )
    };
    Ok(DtuSetup {
        id_config: config_form(id, &id_bytes),
        opts: DtuOptions {
            gateway,
            id: id_bytes,
            heartbeat: beat,
        },
        heartbeat_config,
    })
}

/// CRC-16/MODBUS.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0xffffu16;
    for b in data {
        crc ^= u16::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xa001
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// Takes the next whole read request off the front of `buf`; bytes that
/// cannot start one are dropped. `None`: wait for more bytes.
pub fn take_request(buf: &mut Vec<u8>) -> Option<SlaveRequest<'static>> {
    loop {
        if buf.len() < 8 {
            return None;
        }
        let f = &buf[..8];
        let crc = u16::from_le_bytes([f[6], f[7]]);
        let addr = u16::from_be_bytes([f[2], f[3]]);
        let count = u16::from_be_bytes([f[4], f[5]]);
        let request = match f[1] {
            1 => Some(Request::ReadCoils(addr, count)),
            2 => Some(Request::ReadDiscreteInputs(addr, count)),
            3 => Some(Request::ReadHoldingRegisters(addr, count)),
            4 => Some(Request::ReadInputRegisters(addr, count)),
            _ => None,
        };
        match request {
            Some(request) if crc16(&f[..6]) == crc => {
                let slave = f[0];
                buf.drain(..8);
                return Some(SlaveRequest { slave, request });
            }
            _ => {
                buf.remove(0);
            }
        }
    }
}

/// The RTU frame answering `req` (none: the unit stays silent).
pub fn encode_answer(
    req: &SlaveRequest<'_>,
    answer: Result<Option<Response>, ExceptionCode>,
) -> Option<Vec<u8>> {
    let fc = req.request.function_code().value();
    let mut out = vec![req.slave];
    match answer {
        Ok(None) => return None,
        Err(e) => {
            out.push(fc | 0x80);
            out.push(u8::from(e));
        }
        Ok(Some(Response::ReadInputRegisters(w) | Response::ReadHoldingRegisters(w))) => {
            out.push(fc);
            out.push(u8::try_from(w.len() * 2).ok()?);
            for v in w {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        Ok(Some(Response::ReadCoils(b) | Response::ReadDiscreteInputs(b))) => {
            out.push(fc);
            let bytes: Vec<u8> = b
                .chunks(8)
                .map(|c| {
                    c.iter()
                        .enumerate()
                        .fold(0u8, |acc, (i, on)| acc | (u8::from(*on) << i))
                })
                .collect();
            out.push(u8::try_from(bytes.len()).ok()?);
            out.extend_from_slice(&bytes);
        }
        Ok(Some(_)) => return None,
    }
    let crc = crc16(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// Serves one connection: registration, then requests and heartbeats
/// until it fails or closes.
pub async fn serve(mut stream: TcpStream, site: &Site, opts: &DtuOptions) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    stream.write_all(&opts.id).await?;
    let period = opts
        .heartbeat
        .as_ref()
        .map_or(Duration::from_secs(3600), |(_, p)| *p);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        tokio::select! {
            r = stream.read(&mut chunk) => {
                let n = r?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 4096 {
                    buf.clear();
                }
                while let Some(req) = take_request(&mut buf) {
                    let answer = site.answer(req.clone());
                    if let Some(frame) = encode_answer(&req, answer) {
                        stream.write_all(&frame).await?;
                    }
                }
            }
            _ = beat.tick() => {
                if let Some((hb, _)) = &opts.heartbeat {
                    stream.write_all(hb).await?;
                }
            }
        }
    }
}

/// Dials, serves and dials again (backoff 200 ms doubling to 5 s, reset
/// after a connection that registered) until the task is dropped.
pub async fn run(site: Arc<Site>, opts: DtuOptions) {
    let mut delay = Duration::from_millis(200);
    loop {
        match TcpStream::connect(&opts.gateway).await {
            Ok(s) => {
                delay = Duration::from_millis(200);
                match serve(s, &site, &opts).await {
                    Ok(()) => eprintln!("anquan-sim: the gateway closed the DTU connection"),
                    Err(e) => eprintln!("anquan-sim: DTU connection lost: {e}"),
                }
            }
            Err(e) => eprintln!("anquan-sim: cannot dial {}: {e}", opts.gateway),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anquan_protocol::DeviceKind;

    #[test]
    fn crc_of_a_known_frame() {
        // 01 03 00 00 00 0A → CRC C5 CD (low byte first).
        assert_eq!(crc16(&[1, 3, 0, 0, 0, 10]).to_le_bytes(), [0xc5, 0xcd]);
    }

    fn frame(slave: u8, fc: u8, addr: u16, n: u16) -> Vec<u8> {
        let mut f = vec![slave, fc];
        f.extend_from_slice(&addr.to_be_bytes());
        f.extend_from_slice(&n.to_be_bytes());
        let crc = crc16(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        f
    }

    #[test]
    fn requests_are_found_after_garbage() {
        let mut buf = b"HB".to_vec();
        buf.extend(frame(3, 4, 9, 1));
        buf.extend(&frame(1, 3, 0, 2)[..5]);
        let r = take_request(&mut buf).unwrap();
        assert_eq!(r.slave, 3);
        assert_eq!(r.request, Request::ReadInputRegisters(9, 1));
        assert!(take_request(&mut buf).is_none());
        buf.extend(&frame(1, 3, 0, 2)[5..]);
        assert_eq!(
            take_request(&mut buf).unwrap().request,
            Request::ReadHoldingRegisters(0, 2)
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn cli_ids_parse_as_the_gateway_reads_its_config() {
        let s = setup("127.0.0.1:7000".into(), "DTU0001", false, 30, None).unwrap();
        assert_eq!(s.opts.id, b"DTU0001");
        assert_eq!(s.id_config, "DTU0001");
        // The heartbeat defaults to the registration packet.
        assert_eq!(
            s.opts.heartbeat,
            Some((b"DTU0001".to_vec(), Duration::from_secs(30)))
        );
        assert_eq!(s.heartbeat_config.as_deref(), Some("DTU0001"));

        let s = setup("gw:7000".into(), "0x0A 0b,0C", true, 5, Some("FE")).unwrap();
        assert_eq!(s.opts.id, [0x0a, 0x0b, 0x0c]);
        assert_eq!(s.id_config, "hex:0A 0B 0C");
        assert_eq!(s.heartbeat_config.as_deref(), Some("hex:FE"));

        let s = setup("gw:7000".into(), "A", false, 0, Some("HB")).unwrap();
        assert_eq!((s.opts.heartbeat, s.heartbeat_config), (None, None));

        assert!(
            setup("gw:1".into(), "", false, 0, None)
                .unwrap_err()
                .contains("--dtu-id")
        );
        assert!(
            setup("gw:1".into(), "0x1", true, 0, None)
                .unwrap_err()
                .contains("--dtu-id")
        );
        assert!(
            setup("gw:1".into(), "01", true, 5, Some("zz"))
                .unwrap_err()
                .contains("--heartbeat")
        );
        assert!(setup("gw:1".into(), &"x".repeat(65), false, 0, None).is_err());
    }

    #[test]
    fn the_printed_gateway_config_parses_with_the_same_bytes() {
        use anquan_gateway::modbus::dtu::parse_packet;
        let units = [(1, DeviceKind::Gas), (2, DeviceKind::WaterPressure)];
        for (id, hex, hb) in [
            ("DTU \"7\" \\", false, Some("HB")),
            ("01 02 ff", true, None),
        ] {
            let s = setup("127.0.0.1:7000".into(), id, hex, 10, hb).unwrap();
            let text = format!(
                "[gateway]\nid = \"gw\"\ndata_dir = \"/tmp/x\"\n{}{}",
                crate::modbus::gateway_dtu_toml(&s.opts.gateway, s.heartbeat_config.as_deref()),
                crate::modbus::gateway_link_toml(
                    "l",
                    "dtu",
                    &s.id_config,
                    "s1",
                    "d",
                    &units,
                    1000,
                    ""
                )
            );
            let cfg =
                anquan_gateway::Config::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let dtu = cfg.modbus.dtu.clone().unwrap();
            let link = &cfg.modbus.links[0];
            let got = parse_packet(link.dtu_id.as_deref().unwrap(), dtu.registration).unwrap();
            assert_eq!(got, s.opts.id);
            assert_eq!(dtu.heartbeat_bytes(), s.opts.heartbeat.map(|(b, _)| b));
        }
    }

    #[test]
    fn answers_are_rtu_frames() {
        let site = Site::new(&[(1, DeviceKind::WaterPressure)]);
        let req = SlaveRequest {
            slave: 1,
            request: Request::ReadHoldingRegisters(0, 2),
        };
        let f = encode_answer(&req, site.answer(req.clone())).unwrap();
        assert_eq!(&f[..7], &[1, 3, 4, 0, 15, 0x03, 0xe8]);
        assert_eq!(crc16(&f[..7]).to_le_bytes(), [f[7], f[8]]);
        let e = encode_answer(&req, Err(ExceptionCode::IllegalDataAddress)).unwrap();
        assert_eq!(&e[..3], &[1, 0x83, 2]);
        assert!(encode_answer(&req, Ok(None)).is_none());
    }
}
