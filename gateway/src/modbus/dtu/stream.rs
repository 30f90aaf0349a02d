//! The stream a DTU link polls over. A DTU sends heartbeats whenever it
//! likes; bytes that arrive while no request is outstanding would
//! otherwise sit in the socket and be read as the start of the next
//! answer. So, right before each request is written, whatever is already
//! waiting is read without blocking and discarded (heartbeats counted as
//! such, the rest as garbage). A heartbeat in the middle of an answer
//! makes that answer fail its CRC; the link's retry handles it.
//!
//! Every byte received (answer or heartbeat) counts as a sign of life; a
//! write after `idle` without one fails with `TimedOut`, which makes the
//! link drop the stream (the DTU dials again).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::count_heartbeats;

/// At most this many bytes are drained before one request (a flood of
/// unsolicited bytes must not hold the link forever).
const MAX_DRAIN: usize = 4096;

/// A registered DTU connection.
#[derive(Debug)]
pub struct DtuStream<S> {
    inner: S,
    heartbeat: Option<Arc<[u8]>>,
    idle: Duration,
    last_rx: Instant,
    heartbeats: IntCounter,
    discarded: IntCounter,
    /// Alive as long as this stream: the listener tells a re-registration
    /// that replaces a live connection from a fresh one by it.
    _alive: Arc<()>,
}

impl<S> DtuStream<S> {
    /// Wraps a stream whose registration just arrived (a sign of life).
    pub fn new(
        inner: S,
        heartbeat: Option<Arc<[u8]>>,
        idle: Duration,
        heartbeats: IntCounter,
        discarded: IntCounter,
        alive: Arc<()>,
    ) -> Self {
        Self {
            inner,
            heartbeat,
            idle,
            last_rx: Instant::now(),
            heartbeats,
            discarded,
            _alive: alive,
        }
    }
}

impl<S: AsyncRead + Unpin> DtuStream<S> {
    /// Reads and discards what is already waiting; `Err` when the DTU
    /// closed the connection or it failed.
    fn drain(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while got.len() < MAX_DRAIN {
            let mut rb = ReadBuf::new(&mut buf);
            match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the DTU closed the connection",
                    ));
                }
                Poll::Ready(Ok(())) => got.extend_from_slice(rb.filled()),
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        if !got.is_empty() {
            self.last_rx = Instant::now();
            let (n, other) = count_heartbeats(&got, self.heartbeat.as_deref());
            self.heartbeats.inc_by(n);
            self.discarded.inc_by(other);
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DtuStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.last_rx = Instant::now();
        }
        r
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for DtuStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Err(e) = this.drain(cx) {
            return Poll::Ready(Err(e));
        }
        if this.last_rx.elapsed() > this.idle {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the DTU sent nothing for idle_timeout_ms",
            )));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn stream(
        s: tokio::io::DuplexStream,
        idle: Duration,
    ) -> (DtuStream<tokio::io::DuplexStream>, IntCounter, IntCounter) {
        let hb = IntCounter::new("hb", "hb").unwrap_or_else(|_| unreachable!());
        let junk = IntCounter::new("junk", "junk").unwrap_or_else(|_| unreachable!());
        let d = DtuStream::new(
            s,
            Some(Arc::from(&b"HB"[..])),
            idle,
            hb.clone(),
            junk.clone(),
            Arc::new(()),
        );
        (d, hb, junk)
    }

    #[tokio::test]
    async fn waiting_heartbeats_are_dropped_before_a_request() {
        let (a, mut dtu) = tokio::io::duplex(1024);
        let (mut s, hb, junk) = stream(a, Duration::from_secs(60));
        dtu.write_all(b"HBHBxx").await.unwrap();
        tokio::task::yield_now().await;
        s.write_all(b"req").await.unwrap();
        let mut got = [0u8; 3];
        dtu.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"req");
        dtu.write_all(b"ans").await.unwrap();
        let mut ans = [0u8; 3];
        s.read_exact(&mut ans).await.unwrap();
        // The answer is intact; the heartbeats and garbage went before.
        assert_eq!(&ans, b"ans");
        assert_eq!(hb.get(), 2);
        assert_eq!(junk.get(), 2);
    }

    #[tokio::test]
    async fn a_silent_dtu_fails_the_next_write() {
        let (a, mut dtu) = tokio::io::duplex(1024);
        let (mut s, _, _) = stream(a, Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(100)).await;
        dtu.write_all(b"HB").await.unwrap();
        // The heartbeat waiting now is a sign of life (read right before
        // the write, so no scheduling delay can age it).
        s.write_all(b"r1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let e = s.write_all(b"r2").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_closed_dtu_fails_the_next_write() {
        let (a, dtu) = tokio::io::duplex(1024);
        let (mut s, _, _) = stream(a, Duration::from_secs(10));
        drop(dtu);
        assert!(s.write_all(b"r").await.is_err());
    }
}
