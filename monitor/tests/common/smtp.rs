//! A tiny SMTP sink: enough of RFC 5321 for lettre (EHLO, MAIL, RCPT, DATA,
//! QUIT); keeps every message it receives.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

pub struct Sink {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
}

impl Sink {
    pub async fn start() -> Self {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let m2 = mails.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else { return };
                let mails = m2.clone();
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut r = BufReader::new(r);
                    w.write_all(b"220 sink ESMTP\r\n").await.ok();
                    let (mut from, mut to, mut line) = (String::new(), Vec::new(), String::new());
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let up = line.to_ascii_uppercase();
                        if up.starts_with("EHLO") || up.starts_with("HELO") {
                            w.write_all(b"250-sink\r\n250 8BITMIME\r\n").await.ok();
                        } else if up.starts_with("MAIL FROM:") {
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
        Self { port, mails }
    }
}
