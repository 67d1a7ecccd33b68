//! The relay's second round of hardening, probed from outside over raw sockets as an attacker would: a client
//! flooding pings and never reading is closed with memory bounded; silent TCP connections are cut and count
//! toward their address's limit while `/healthz` keeps answering; JWTs missing a configured claim are refused;
//! protocol violations close with 1002 and invalid UTF-8 with 1007; REST leases are capped per address; and
//! every HTTP error carries the JSON error body.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hamster_tests::{Relay, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Opens a raw WebSocket on `/ws` and reads the 101 response head, leaving the frames unread.
async fn raw_ws(relay: &Relay, recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes).unwrap();
    }
    let addr: SocketAddr = format!("127.0.0.1:{}", relay.port()).parse().unwrap();
    let mut tcp = tokio::time::timeout(WAIT, socket.connect(addr)).await.unwrap().unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(WAIT, tcp.read(&mut byte)).await.expect("101 in time").unwrap();
        assert_eq!(n, 1, "relay hung up during the handshake: {}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    tcp
}

/// A masked client frame (payload up to 125 bytes) with the given first byte (FIN + opcode).
fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125);
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![first, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Reads frames until a close frame and returns its code (`None` if the socket ends without one).
async fn close_code(tcp: &mut TcpStream) -> Option<u16> {
    let deadline = Instant::now() + WAIT;
    let mut buf = Vec::new();
    loop {
        // Parse what is buffered: server frames are unmasked.
        while buf.len() >= 2 {
            let (opcode, len7) = (buf[0] & 0x0f, (buf[1] & 0x7f) as usize);
            let (len, start) = match len7 {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10),
                126 | 127 => break,
                n => (n, 2),
            };
            if buf.len() < start + len {
                break;
            }
            if opcode == 8 {
                return (len >= 2).then(|| u16::from_be_bytes([buf[start], buf[start + 1]]));
            }
            buf.drain(..start + len);
        }
        let mut chunk = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, tcp.read(&mut chunk)).await.expect("no close frame in time") {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

#[tokio::test]
async fn a_ping_flood_that_never_reads_is_closed_and_memory_stays_bounded() {
    let relay = Relay::start(&[]);
    let (_, _) = relay.get_json::<serde_json::Value>("/healthz").await;
    let baseline = relay.rss_kib().expect("relay RSS");
    // A tiny receive window, never read: every pong the relay owes stays on its side.
    let mut flood = raw_ws(&relay, Some(4096)).await;
    let burst: Vec<u8> = (0..1000).flat_map(|_| frame(0x89, &[b'p'; 125])).collect();
    let started = Instant::now();
    let (mut sent, mut peak, mut closed) = (0usize, baseline, false);
    // 64 MB of pings would owe the relay 64 MB of pongs without a bound.
    while sent < 64 << 20 && started.elapsed() < Duration::from_secs(60) {
        match tokio::time::timeout(Duration::from_secs(5), flood.write_all(&burst)).await {
            Ok(Ok(())) => sent += burst.len(),
            Ok(Err(_)) => {
                closed = true;
                break;
            }
            // The relay stopped reading without hanging up.
            Err(_) => break,
        }
        peak = peak.max(relay.rss_kib().unwrap_or(0));
    }
    peak = peak.max(relay.rss_kib().unwrap_or(0));
    println!(
        "ping flood: {} KiB sent in {:?}; relay RSS {baseline} KiB -> peak {peak} KiB (+{} KiB); closed: {closed}",
        sent >> 10,
        started.elapsed(),
        peak - baseline
    );
    assert!(closed, "the flooding connection is still open after {} KiB of pings", sent >> 10);
    assert!(peak - baseline < 8 * 1024, "relay grew by {} KiB under the ping flood", peak - baseline);
    // Others are unaffected.
    let (status, _) = relay.get_json::<serde_json::Value>("/healthz").await;
    assert_eq!(status, 200);
    relay.stop();
}

/// Connects from `source` (a loopback address) and sends nothing.
async fn silent(source: &str, port: u16) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{source}:0").parse().ok()?).ok()?;
    tokio::time::timeout(WAIT, socket.connect(format!("127.0.0.1:{port}").parse().ok()?)).await.ok()?.ok()
}

/// Whether the relay has hung up on `tcp` (EOF or reset) within `limit`.
async fn hung_up(tcp: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(limit, tcp.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

/// Times `GET /healthz` on a fresh connection from 127.0.0.1.
async fn healthz(port: u16) -> Duration {
    let started = Instant::now();
    let mut tcp = tokio::time::timeout(WAIT, TcpStream::connect(("127.0.0.1", port))).await.unwrap().unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut response)).await.expect("/healthz answered").unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    started.elapsed()
}

#[tokio::test]
async fn silent_connections_are_cut_and_count_toward_the_address_limit() {
    let relay = Relay::start(&["--handshake-timeout-ms", "10000", "--max-connections-per-ip", "256"]);
    let port = relay.port();
    let quiet = healthz(port).await;
    // 1,100 silent connections from another loopback address than the health check's.
    let mut sockets = Vec::new();
    for _ in 0..1100 {
        if let Some(s) = silent("127.0.0.2", port).await {
            sockets.push(s);
        }
    }
    let opened = Instant::now();
    let loaded = healthz(port).await;
    println!("/healthz: {quiet:?} idle, {loaded:?} under {} silent connections", sockets.len());
    // Past the address's limit, the relay hangs up after a grace second...
    let probes = sockets.iter_mut().map(|s| hung_up(s, Duration::from_secs(3)));
    let cut = futures::future::join_all(probes).await;
    let held: Vec<usize> = cut.iter().enumerate().filter(|(_, c)| !**c).map(|(i, _)| i).collect();
    println!("{} silent connections cut after the grace, {} held", cut.len() - held.len(), held.len());
    assert!(held.len() <= 256, "{} silent connections held, over the address's limit of 256", held.len());
    assert!(held.len() >= 100, "only {} silent connections held: the limit refused too many", held.len());
    // A prompt client from the same address is still served while its silent neighbours hold every slot.
    let mut prompt = silent("127.0.0.2", port).await.expect("connect");
    prompt.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, prompt.read_to_string(&mut response)).await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // ...and the ones it holds are cut at the first-byte deadline.
    for i in held {
        assert!(hung_up(&mut sockets[i], WAIT).await, "silent connection {i} still open after {:?}", opened.elapsed());
    }
    println!("held silent connections cut after {:?}", opened.elapsed());
    drop(sockets);
    // The address gets its slots back.
    let mut fresh = silent("127.0.0.2", port).await.expect("connect");
    fresh.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, fresh.read_to_string(&mut response)).await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    relay.stop();
}

const JWT_SECRET: &str = "hardening-test-secret-with-enough-bytes";

fn jwt(claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn jwts_missing_a_configured_claim_are_refused() {
    let env = [("JWT_SECRET", JWT_SECRET)];
    let relay = Relay::start_with_env(0, &["--jwt-audience", "hamster", "--jwt-issuer", "https://id.example"], &env);
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 600;
    let url = |token: &str| format!("{}/api/quotes?token={token}", relay.http_url());
    let good = jwt(serde_json::json!({"exp": exp, "aud": "hamster", "iss": "https://id.example"}));
    assert_eq!(reqwest::get(url(&good)).await.unwrap().status().as_u16(), 200);
    let refused = [
        serde_json::json!({"exp": exp}),
        serde_json::json!({"exp": exp, "aud": null, "iss": "https://id.example"}),
        serde_json::json!({"exp": exp, "aud": "hamster"}),
        serde_json::json!({"exp": exp, "iss": "https://id.example"}),
    ];
    for claims in refused {
        let response = reqwest::get(url(&jwt(claims.clone()))).await.unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")), "{claims}: {body}");
    }
    relay.stop();
}

#[tokio::test]
async fn protocol_violations_close_with_1002_and_bad_utf8_with_1007() {
    let relay = Relay::start(&[]);
    // A text frame that is not UTF-8.
    let mut tcp = raw_ws(&relay, None).await;
    tcp.write_all(&frame(0x81, &[0xff, 0xfe, b'{', b'}'])).await.unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(1007));
    // An unmasked client frame.
    let mut tcp = raw_ws(&relay, None).await;
    tcp.write_all(&[0x81, 0x02, b'{', b'}']).await.unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(1002));
    // Reserved bits set.
    let mut tcp = raw_ws(&relay, None).await;
    tcp.write_all(&frame(0xf1, b"{}")).await.unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(1002));
    // A fragmented ping.
    let mut tcp = raw_ws(&relay, None).await;
    tcp.write_all(&frame(0x09, b"x")).await.unwrap();
    assert_eq!(close_code(&mut tcp).await, Some(1002));
    relay.stop();
}

#[tokio::test]
async fn rest_leases_are_capped_per_address() {
    let relay = Relay::start(&["--max-leases-per-ip", "30"]);
    let url = |from: usize| {
        let list: Vec<String> = (from..from + 10).map(|i| format!("ZZ{i}")).collect();
        format!("{}/api/quotes?symbols={}", relay.http_url(), list.join(","))
    };
    for batch in 0..3 {
        let status = reqwest::get(url(batch * 10)).await.unwrap().status().as_u16();
        assert_eq!(status, 200, "batch {batch} within the address's share");
    }
    // Polling the same symbols again costs nothing; new ones are refused.
    assert_eq!(reqwest::get(url(0)).await.unwrap().status().as_u16(), 200);
    let response = reqwest::get(url(30)).await.unwrap();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!((status, body["code"].as_str()), (429, Some("too_many_symbols")), "{body}");
    let metrics = reqwest::get(format!("{}/metrics", relay.http_url())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("reason=\"leases_per_ip\""), "{metrics}");
    relay.stop();
}

/// Sends a raw request and returns the status, the `Content-Type` and the body.
async fn raw_request(relay: &Relay, request: &[u8]) -> (u16, String, String) {
    let mut tcp = TcpStream::connect(("127.0.0.1", relay.port())).await.unwrap();
    tcp.write_all(request).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response)).await.expect("response in time").unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    (status, content_type, body.to_owned())
}

#[tokio::test]
async fn every_http_error_has_a_json_body() {
    let relay = Relay::start(&[]);
    let cases: [(&[u8], u16); 6] = [
        (b"GET /api/quotes?symbols=A&symbols=B HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
        (b"GET /api/history/%FF%FE HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
        (b"POST /api/quotes HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", 405),
        (b"DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
        (b"GET /api/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
    ];
    for (request, want) in cases {
        let first_line = String::from_utf8_lossy(request).lines().next().unwrap_or_default().to_owned();
        let (status, content_type, body) = raw_request(&relay, request).await;
        assert_eq!(status, want, "{first_line}: {body}");
        assert!(content_type.starts_with("application/json"), "{first_line}: {content_type:?} {body}");
        let parsed: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{first_line}: {e}: {body:?}"));
        assert!(parsed["code"].is_string() && parsed["message"].is_string(), "{first_line}: {parsed}");
    }
    relay.stop();
}
