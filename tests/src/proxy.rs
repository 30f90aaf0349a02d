//! A fault-injecting TCP proxy in front of a real service (VictoriaMetrics,
//! the alarm receiver): it passes traffic through until told to refuse
//! connections, answer every HTTP request with 500, swallow requests and
//! never answer (a timeout), delay answers, or pass only so many bytes per
//! second (a slow consumer). A change of mode also cuts the connections
//! already open, so a keep-alive connection cannot dodge the fault.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Pass through (with the configured delay and throttle).
    Pass = 0,
    /// Accept and close at once: the service is down.
    Refuse = 1,
    /// Answer every request `500 Internal Server Error`.
    Error500 = 2,
    /// Read requests and never answer: the client's timeout fires.
    Hang = 3,
}

impl Mode {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Refuse,
            2 => Self::Error500,
            3 => Self::Hang,
            _ => Self::Pass,
        }
    }
}

#[derive(Debug, Default)]
struct Knobs {
    mode: AtomicU8,
    /// Bumped on every change: connections of an older generation close.
    generation: AtomicU64,
    /// Delay before each answer chunk, ms.
    delay_ms: AtomicU64,
    /// Request bytes per second passed upstream; 0 = unlimited.
    bytes_per_s: AtomicU64,
}

/// The proxy, serving on a free loopback port until dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    knobs: Arc<Knobs>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts one in front of `upstream` (`127.0.0.1:port`).
    pub fn start(upstream_port: u16) -> Self {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let _ = listener.set_nonblocking(true);
        let knobs = Arc::new(Knobs::default());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let k = knobs.clone();
        let upstream = SocketAddr::from(([127, 0, 0, 1], upstream_port));
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(l) = TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        a = l.accept() => if let Ok((client, _)) = a {
                            tokio::spawn(serve(client, upstream, k.clone()));
                        },
                    }
                }
            });
        });
        Self {
            addr,
            knobs,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches the mode; open connections are cut.
    pub fn set_mode(&self, mode: Mode) {
        self.knobs.mode.store(mode as u8, Ordering::Release);
        self.knobs.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Delays every answer by `d` (in [`Mode::Pass`]).
    pub fn set_delay(&self, d: Duration) {
        self.knobs
            .delay_ms
            .store(d.as_millis() as u64, Ordering::Release);
    }

    /// Passes at most `bytes_per_s` request bytes upstream (0: unlimited).
    pub fn set_throttle(&self, bytes_per_s: u64) {
        self.knobs.bytes_per_s.store(bytes_per_s, Ordering::Release);
    }

    /// Back to a plain pass-through.
    pub fn heal(&self) {
        self.set_delay(Duration::ZERO);
        self.set_throttle(0);
        self.set_mode(Mode::Pass);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, k: Arc<Knobs>) {
    let generation = k.generation.load(Ordering::Acquire);
    let current = |k: &Knobs| k.generation.load(Ordering::Acquire) == generation;
    match Mode::from_u8(k.mode.load(Ordering::Acquire)) {
        Mode::Refuse => {}
        Mode::Error500 => {
            let mut buf = vec![0u8; 64 * 1024];
            // One answer per request head seen; the client may pipeline
            // or keep the connection alive.
            while current(&k) {
                match tokio::time::timeout(Duration::from_millis(200), client.read(&mut buf)).await
                {
                    Ok(Ok(0) | Err(_)) => return,
                    Ok(Ok(n)) => {
                        if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                            let _ = client
                                .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        Mode::Hang => {
            let mut buf = vec![0u8; 64 * 1024];
            while current(&k) {
                let read =
                    tokio::time::timeout(Duration::from_millis(200), client.read(&mut buf)).await;
                if let Ok(Ok(0) | Err(_)) = read {
                    return;
                }
            }
        }
        Mode::Pass => {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let up = async {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let bps = k.bytes_per_s.load(Ordering::Acquire);
                    // A throttled link moves small chunks, each paid for in time.
                    let want = if bps == 0 {
                        buf.len()
                    } else {
                        (bps as usize / 10).clamp(1, buf.len())
                    };
                    let n = match cr.read(&mut buf[..want]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if bps > 0 {
                        tokio::time::sleep(Duration::from_secs_f64(n as f64 / bps as f64)).await;
                    }
                    if !current(&k) || sw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            };
            let down = async {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let delay = k.delay_ms.load(Ordering::Acquire);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    if !current(&k) || cw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            };
            let watch = async {
                while current(&k) {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            tokio::select! {
                () = up => {}
                () = down => {}
                () = watch => {}
            }
        }
    }
}
