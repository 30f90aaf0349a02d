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
