//! A tiny SMTP sink: enough of RFC 5321 for lettre (EHLO, MAIL, RCPT, DATA,
//! QUIT), and optionally AUTH PLAIN / LOGIN (RFC 4954) with one user:
//! then MAIL before a successful AUTH is refused (530) and a wrong password
//! answers 535, like a real submission server. Keeps every message it
//! receives.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// The user the session authenticated as.
    pub user: Option<String>,
}

/// AUTH required by the sink.
#[derive(Debug, Clone)]
pub struct Auth {
    pub user: String,
    pub password: String,
    /// Mechanisms offered, e.g. `"PLAIN LOGIN"` or `"LOGIN"`.
    pub mechanisms: String,
}

pub struct Sink {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    /// AUTH attempts refused (535).
    pub auth_failures: Arc<Mutex<u32>>,
}

/// Standard base64 (RFC 4648) decoding, enough for AUTH.
pub fn b64decode(s: &str) -> Option<Vec<u8>> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.trim().bytes() {
        if c == b'=' {
            break;
        }
        let v = A.iter().position(|&a| a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

pub fn b64encode(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Sink {
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// A sink that requires AUTH when `auth` is given.
    pub async fn start_with(auth: Option<Auth>) -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let auth_failures = Arc::new(Mutex::new(0));
        let (m2, f2) = (mails.clone(), auth_failures.clone());
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let (mails, failures, auth) = (m2.clone(), f2.clone(), auth.clone());
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut r = BufReader::new(r);
                    w.write_all(b"220 sink ESMTP\r\n").await.ok();
                    let (mut from, mut to, mut line) = (String::new(), Vec::new(), String::new());
                    let mut user: Option<String> = None;
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let up = line.to_ascii_uppercase();
                        if up.starts_with("EHLO") || up.starts_with("HELO") {
                            let ext = match &auth {
                                Some(a) => format!(
                                    "250-sink\r\n250-AUTH {}\r\n250 8BITMIME\r\n",
                                    a.mechanisms
                                ),
                                None => "250-sink\r\n250 8BITMIME\r\n".into(),
                            };
                            w.write_all(ext.as_bytes()).await.ok();
                        } else if up.starts_with("AUTH ") && auth.is_some() {
                            let a = auth.as_ref().unwrap();
                            let args: Vec<String> =
                                line[5..].split_whitespace().map(str::to_string).collect();
                            let mech = args.first().map(|m| m.to_ascii_uppercase());
                            let offered = |m: &str| a.mechanisms.split(' ').any(|x| x == m);
                            let given = match mech.as_deref() {
                                Some("PLAIN") if offered("PLAIN") => {
                                    let resp = match args.get(1) {
                                        Some(r) => r.clone(),
                                        None => {
                                            w.write_all(b"334 \r\n").await.ok();
                                            line.clear();
                                            r.read_line(&mut line).await.ok();
                                            line.trim().to_string()
                                        }
                                    };
                                    b64decode(&resp).and_then(|b| {
                                        let parts: Vec<&[u8]> = b.split(|&c| c == 0).collect();
                                        (parts.len() == 3).then(|| {
                                            (
                                                String::from_utf8_lossy(parts[1]).into_owned(),
                                                String::from_utf8_lossy(parts[2]).into_owned(),
                                            )
                                        })
                                    })
                                }
                                Some("LOGIN") if offered("LOGIN") => {
                                    // "Username:", "Password:".
                                    let mut got = Vec::new();
                                    for prompt in
                                        [&b"334 VXNlcm5hbWU6\r\n"[..], b"334 UGFzc3dvcmQ6\r\n"]
                                    {
                                        w.write_all(prompt).await.ok();
                                        line.clear();
                                        r.read_line(&mut line).await.ok();
                                        got.push(
                                            b64decode(line.trim())
                                                .map(|b| String::from_utf8_lossy(&b).into_owned()),
                                        );
                                    }
                                    match (got[0].clone(), got[1].clone()) {
                                        (Some(u), Some(p)) => Some((u, p)),
                                        _ => None,
                                    }
                                }
                                _ => {
                                    w.write_all(b"504 mechanism not offered\r\n").await.ok();
                                    continue;
                                }
                            };
                            match given {
                                Some((u, p)) if u == a.user && p == a.password => {
                                    user = Some(u);
                                    w.write_all(b"235 2.7.0 authenticated\r\n").await.ok();
                                }
                                _ => {
                                    *failures.lock().unwrap() += 1;
                                    w.write_all(b"535 5.7.8 bad credentials\r\n").await.ok();
                                }
                            }
                        } else if up.starts_with("MAIL FROM:") {
                            if auth.is_some() && user.is_none() {
                                w.write_all(b"530 5.7.0 authentication required\r\n")
                                    .await
                                    .ok();
                                continue;
                            }
                            from = line[10..].trim().to_string();
                            to.clear();
                            w.write_all(b"250 OK\r\n").await.ok();
                        } else if up.starts_with("RCPT TO:") {
                            to.push(line[8..].trim().to_string());
                            w.write_all(b"250 OK\r\n").await.ok();
                        } else if up.starts_with("DATA") {
                            w.write_all(b"354 go ahead\r\n").await.ok();
                            let mut data = String::new();
                            loop {
                                line.clear();
                                if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                                    return;
                                }
                                if line == ".\r\n" || line == ".\n" {
                                    break;
                                }
                                data.push_str(&line);
                            }
                            mails.lock().unwrap().push(Mail {
                                from: from.clone(),
                                to: to.clone(),
                                data,
                                user: user.clone(),
                            });
                            w.write_all(b"250 OK queued\r\n").await.ok();
                        } else if up.starts_with("QUIT") {
                            w.write_all(b"221 bye\r\n").await.ok();
                            return;
                        } else if up.starts_with("RSET") || up.starts_with("NOOP") {
                            w.write_all(b"250 OK\r\n").await.ok();
                        } else {
                            w.write_all(b"502 not implemented\r\n").await.ok();
                        }
                    }
                });
            }
        });
        Self {
            port,
            mails,
            auth_failures,
        }
    }
}
