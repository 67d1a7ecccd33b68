//! A WebSocket client that may offer permessage-deflate (RFC 7692), built on yawc like the relay's socket, and
//! that keeps every byte it read and wrote, so a test can check what the relay answered in the handshake
//! (`Sec-WebSocket-Extensions`) and which frames actually travelled compressed (RSV1).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::SinkExt;
use hamster_shared::ServerMessage;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use yawc::{Frame, OpCode, Options, WebSocket};

use crate::WAIT;

/// Bytes seen in one direction.
type Tape = Arc<Mutex<Vec<u8>>>;

/// A TCP stream that records what passes through it.
pub struct Tapped {
    inner: TcpStream,
    read: Tape,
    written: Tape,
}

impl AsyncRead for Tapped {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.read.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&buf.filled()[before..]);
        }
        polled
    }
}

impl AsyncWrite for Tapped {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.written.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(&buf[..n]);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One frame header as it crossed the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireFrame {
    pub opcode: u8,
    /// RSV1: the message is compressed.
    pub compressed: bool,
    /// Payload bytes on the wire.
    pub len: usize,
}

/// A relay connection through yawc, with its traffic recorded.
pub struct DeflateClient {
    ws: WebSocket<Tapped>,
    read: Tape,
    written: Tape,
    /// Bytes of text messages after decompression.
    pub text_bytes: usize,
}

impl DeflateClient {
    /// Connects to `url` (`ws://127.0.0.1:PORT/ws`), offering permessage-deflate when `offer` is set.
    pub async fn connect(url: &str, offer: bool) -> DeflateClient {
        let parsed: url::Url = url.parse().expect("ws url");
        let addr = format!("{}:{}", parsed.host_str().expect("host"), parsed.port().expect("port"));
        let tcp =
            tokio::time::timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
        let (read, written) = (Tape::default(), Tape::default());
        let io = Tapped { inner: tcp, read: read.clone(), written: written.clone() };
        let options = if offer { Options::default().with_low_latency_compression() } else { Options::default() };
        let ws = tokio::time::timeout(WAIT, WebSocket::handshake(parsed, io, options.with_utf8()))
            .await
            .expect("handshake in time")
            .expect("handshake");
        DeflateClient { ws, read, written, text_bytes: 0 }
    }

    /// The relay's `Sec-WebSocket-Extensions` answer, if it sent one.
    pub fn extensions(&self) -> Option<String> {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let end = read.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&read[..end]).into_owned();
        head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim().eq_ignore_ascii_case("sec-websocket-extensions").then(|| value.trim().to_owned())
        })
    }

    /// Every complete frame the relay sent so far, as it was on the wire.
    pub fn frames_received(&self) -> Vec<WireFrame> {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let start = read.windows(4).position(|w| w == b"\r\n\r\n").map_or(read.len(), |p| p + 4);
        parse_frames(&read[start..])
    }

    /// Bytes this client has written, handshake included.
    pub fn bytes_written(&self) -> usize {
        self.written.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub async fn send_json(&mut self, value: serde_json::Value) {
        let send = self.ws.send(Frame::text(value.to_string()));
        tokio::time::timeout(WAIT, send).await.expect("send in time").expect("send");
    }

    /// The next data or close frame within `limit` (pings and pongs skipped); `None` when the socket ended.
    pub async fn next_frame(&mut self, limit: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next_frame()).await.expect("frame in time").ok()?;
            match frame.opcode() {
                OpCode::Ping | OpCode::Pong => continue,
                OpCode::Text => self.text_bytes += frame.payload().len(),
                _ => {}
            }
            return Some(frame);
        }
    }

    /// The next protocol message; panics on anything else.
    pub async fn recv(&mut self) -> ServerMessage {
        let frame = self.next_frame(WAIT).await.expect("socket open");
        let opcode = frame.opcode();
        assert_eq!(opcode, OpCode::Text, "expected a text frame, got {opcode:?}: {:?}", frame.payload());
        serde_json::from_slice(frame.payload())
            .unwrap_or_else(|e| panic!("not a server message ({e}): {}", String::from_utf8_lossy(frame.payload())))
    }
}

/// Server frames (unmasked) in `bytes`, up to the last complete one.
pub fn parse_frames(bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + 2 {
        let (b0, b1) = (bytes[at], bytes[at + 1]);
        let (len, header) = match b1 & 0x7f {
            126 if bytes.len() >= at + 4 => (u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize, 4),
            127 if bytes.len() >= at + 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&bytes[at + 2..at + 10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => break,
            n => (n as usize, 2),
        };
        if bytes.len() < at + header + len {
            break;
        }
        frames.push(WireFrame { opcode: b0 & 0x0f, compressed: b0 & 0x40 != 0, len });
        at += header + len;
    }
    frames
}
