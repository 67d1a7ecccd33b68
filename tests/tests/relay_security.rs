//! The edge policy end to end, through the real relay binary: origin allowlist on WebSocket and SSE handshakes
//! and CORS on REST, client auth by static token and by JWT (header or `?token=`, expiry closing a live stream),
//! connections per address, commands per second with abusive clients closed with 1008 while others carry on,
//! and the request-head deadline.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hamster_shared::{ErrorCode, ServerMessage};
use hamster_tests::ws::{Received, WsClient};
use hamster_tests::{Relay, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const JWT_SECRET: &str = "security-test-secret-with-enough-bytes";

fn jwt(exp_from_now: i64, aud: &str, secret: &str) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = serde_json::json!({ "sub": "tester", "aud": aud, "exp": now + exp_from_now });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// GET with headers; returns status, the named response header and the body as JSON (or `Null`).
async fn get(url: &str, headers: &[(&str, &str)], want_header: &str) -> (u16, Option<String>, serde_json::Value) {
    let mut request = reqwest::Client::new().get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = tokio::time::timeout(WAIT, request.send()).await.expect("GET timed out").expect("GET");
    let status = response.status().as_u16();
    let header = response.headers().get(want_header).map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap_or_default();
    (status, header, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

fn code(body: &serde_json::Value) -> &str {
    body["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test]
async fn origin_allowlist_guards_websocket_sse_and_cors() {
    let relay = Relay::start(&["--allowed-origin", "https://app.example.com,https://*.trusted.dev"]);
    let ws = relay.ws_url();

    let refused =
        WsClient::handshake(&ws, &[("origin", "https://evil.example")]).await.err().expect("evil origin refused");
    assert_eq!((refused.status, code(&refused.body)), (403, "forbidden"), "{refused:?}");
    assert!(refused.body["message"].as_str().unwrap().contains("evil.example"));
    for ok in ["https://app.example.com", "https://dash.trusted.dev"] {
        let mut client = WsClient::handshake(&ws, &[("origin", ok)]).await.unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        assert!(matches!(client.recv().await, ServerMessage::Hello { .. }));
    }
    // Non-browser clients send no Origin; the dashboard served by the relay itself is same-origin.
    WsClient::handshake(&ws, &[]).await.expect("no origin");
    let own = relay.http_url();
    WsClient::handshake(&ws, &[("origin", &own)]).await.expect("same origin");

    let sse = format!("{}/api/stream?symbols=AAPL", relay.http_url());
    let (status, _, body) = get(&sse, &[("origin", "https://evil.example")], "").await;
    assert_eq!((status, code(&body)), (403, "forbidden"));

    // CORS: allowed origins are echoed back, others get no grant (the browser then hides the response).
    let status_url = format!("{}/api/status", relay.http_url());
    let (s, allow, _) = get(&status_url, &[("origin", "https://app.example.com")], "access-control-allow-origin").await;
    assert_eq!((s, allow.as_deref()), (200, Some("https://app.example.com")));
    let (_, allow, _) = get(&status_url, &[("origin", "https://evil.example")], "access-control-allow-origin").await;
    assert_eq!(allow, None);
    relay.stop();
}

#[tokio::test]
async fn permissive_default_is_announced_at_startup() {
    let relay = Relay::start(&[]);
    WsClient::handshake(&relay.ws_url(), &[("origin", "https://anywhere.example")]).await.expect("any origin");
    let logs = relay.wait_for_logs(&["any web origin may open /ws", "client auth is off"], Duration::from_secs(10));
    assert!(logs.contains("any web origin may open /ws"), "{logs}");
    assert!(logs.contains("client auth is off"), "{logs}");
    relay.stop();
}

#[tokio::test]
async fn static_tokens_guard_streams_and_rest_but_not_health_or_the_dashboard() {
    let relay = Relay::start_with_env(0, &[], &[("AUTH_TOKENS", "tok-alpha, tok-beta")]);
    let ws = relay.ws_url();
    let base = relay.http_url();

    let refused = WsClient::handshake(&ws, &[]).await.err().expect("no token refused");
    assert_eq!((refused.status, code(&refused.body)), (401, "unauthorized"));
    assert_eq!(refused.www_authenticate.as_deref(), Some("Bearer"));
    assert!(refused.body["message"].as_str().unwrap().contains("missing token"));
    let refused = WsClient::handshake(&format!("{ws}?token=tok-gamma"), &[]).await.err().expect("bad token refused");
    assert_eq!((refused.status, refused.body["message"].as_str()), (401, Some("invalid token")));

    let mut by_query = WsClient::handshake(&format!("{ws}?token=tok-beta"), &[]).await.expect("?token=");
    assert!(matches!(by_query.recv().await, ServerMessage::Hello { .. }));
    WsClient::handshake(&ws, &[("authorization", "Bearer tok-alpha")]).await.expect("Authorization header");

    for path in
        ["/api/status", "/api/quotes?symbols=AAPL", "/api/stream?symbols=AAPL", "/api/clients", "/metrics", "/api/nope"]
    {
        let (status, _, body) = get(&format!("{base}{path}"), &[], "").await;
        assert_eq!((status, code(&body)), (401, "unauthorized"), "{path}");
    }
    let (status, _, _) = get(&format!("{base}/api/status"), &[("authorization", "Bearer tok-alpha")], "").await;
    assert_eq!(status, 200);
    let (status, _, _) = get(&format!("{base}/api/status?token=tok-beta"), &[], "").await;
    assert_eq!(status, 200);
    let (status, _, _) = get(&format!("{base}/healthz"), &[], "").await;
    assert_eq!(status, 200, "health checks carry no token");
    let (status, _, _) = get(&format!("{base}/"), &[], "").await;
    assert_eq!(status, 200, "the dashboard page is public; it holds no secret");

    // Tokens travel in query strings, so request logging must never print them.
    let logs = relay.logs().join("\n");
    assert!(!logs.contains("tok-alpha") && !logs.contains("tok-beta"), "a token reached the logs");
    relay.stop();

    let relay = Relay::start_with_env(0, &["--public-endpoint", "healthz,metrics"], &[("AUTH_TOKENS", "tok-alpha")]);
    let (status, _, _) = get(&format!("{}/metrics", relay.http_url()), &[], "").await;
    assert_eq!(status, 200, "metrics made public");
    relay.stop();
}

#[tokio::test]
async fn jwts_are_checked_and_a_stream_ends_when_its_token_expires() {
    let env = [("JWT_SECRET", JWT_SECRET)];
    let relay = Relay::start_with_env(0, &["--jwt-audience", "hamster", "--heartbeat-ms", "500"], &env);
    let ws = relay.ws_url();

    let cases = [
        (jwt(-600, "hamster", JWT_SECRET), "token expired"),
        (jwt(600, "someone-else", JWT_SECRET), "token is for another audience or issuer"),
        (jwt(600, "hamster", "a-forged-secret-that-is-long-enough"), "invalid token"),
    ];
    for (token, reason) in &cases {
        let refused = WsClient::handshake(&format!("{ws}?token={token}"), &[]).await.err().expect("refused");
        assert_eq!((refused.status, refused.body["message"].as_str()), (401, Some(*reason)));
    }
    let good = jwt(600, "hamster", JWT_SECRET);
    let mut client =
        WsClient::handshake(&ws, &[("authorization", &format!("Bearer {good}"))]).await.expect("valid jwt");
    client.hello().await;
    client.subscribe(&["AAPL"]).await;

    // Valid now only thanks to the relay's 30 s clock-skew leeway, which runs out in about 3 s.
    let short = jwt(-27, "hamster", JWT_SECRET);
    let mut expiring = WsClient::handshake(&format!("{ws}?token={short}"), &[]).await.expect("still valid");
    expiring.hello().await;
    expiring.subscribe(&["AAPL"]).await;
    let opened = Instant::now();
    let error = expiring
        .recv_until("the expiry error", |m| matches!(m, ServerMessage::Error { code: ErrorCode::Unauthorized, .. }))
        .await;
    let frame = expiring.closed().await.expect("close frame");
    let lasted = opened.elapsed();
    assert_eq!(u16::from(frame.code), 1008, "{frame:?}");
    assert!(lasted >= Duration::from_secs(1) && lasted < Duration::from_secs(12), "closed after {lasted:?}");
    println!("expiring JWT: error {error:?}, closed 1008 after {lasted:?}");
    // The long-lived token's stream is untouched.
    client.quote_for("AAPL").await;
    relay.stop();
}

#[tokio::test]
async fn connections_per_address_are_capped_and_released() {
    let relay = Relay::start(&["--max-connections-per-ip", "3"]);
    let ws = relay.ws_url();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(WsClient::subscribed(&ws, &["AAPL"]).await);
    }
    let refused = WsClient::handshake(&ws, &[]).await.err().expect("fourth refused");
    assert_eq!((refused.status, code(&refused.body)), (429, "too_many_connections"));
    let (status, _, body) = get(&format!("{}/api/stream?symbols=AAPL", relay.http_url()), &[], "").await;
    assert_eq!((status, code(&body)), (429, "too_many_connections"), "SSE shares the cap");
    // REST is not a held connection.
    let (status, _, _) = get(&format!("{}/api/status", relay.http_url()), &[], "").await;
    assert_eq!(status, 200);

    held.pop().unwrap().close().await;
    let deadline = Instant::now() + WAIT;
    let mut again = loop {
        match WsClient::handshake(&ws, &[]).await {
            Ok(client) => break client,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("slot never freed: {e:?}"),
        }
    };
    again.hello().await;
    // The others kept streaming throughout.
    for client in &mut held {
        client.quote_for("AAPL").await;
    }
    relay.stop();

    // Behind a trusted proxy, the address is the one the proxy appended, not the proxy's own.
    let relay = Relay::start(&["--max-connections-per-ip", "1", "--trusted-proxy-hops", "1"]);
    let ws = relay.ws_url();
    let _a = WsClient::handshake(&ws, &[("x-forwarded-for", "198.51.100.1")]).await.expect("client a");
    let _b = WsClient::handshake(&ws, &[("x-forwarded-for", "6.6.6.6, 198.51.100.2")]).await.expect("client b");
    let refused = WsClient::handshake(&ws, &[("x-forwarded-for", "7.7.7.7, 198.51.100.1")]).await.err();
    assert_eq!(refused.map(|r| r.status), Some(429), "a forged left-hand entry does not buy a new slot");
    relay.stop();
}

#[tokio::test]
async fn command_floods_are_rate_limited_then_closed_while_others_are_untouched() {
    let relay = Relay::start(&[
        "--max-commands-per-sec",
        "5",
        "--command-burst",
        "5",
        "--max-refused-per-min",
        "10",
        "--sim-tick-hz",
        "20",
    ]);
    let ws = relay.ws_url();
    let mut bystander = WsClient::subscribed(&ws, &["AAPL"]).await;
    let mut flooder = WsClient::subscribed(&ws, &[]).await;
    for i in 0..40 {
        flooder.send_json(serde_json::json!({"type": "ping", "id": i})).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    let frame = loop {
        match flooder.next_within(WAIT).await {
            Some(Received::Message(ServerMessage::Pong { .. })) => pongs += 1,
            Some(Received::Message(ServerMessage::Error { code: ErrorCode::RateLimited, .. })) => limited += 1,
            Some(Received::Message(other)) => panic!("unexpected {other:?}"),
            Some(Received::Closed(frame)) => break frame,
            None => panic!("flooder never closed"),
        }
    };
    println!("flood of 40 pings: {pongs} pongs, {limited} rate_limited errors, then {frame:?}");
    assert!((5..=7).contains(&pongs), "{pongs} pongs");
    assert!(limited >= 1, "the client was told before being closed");
    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1008));
    // The bystander still gets fresh quotes.
    let before = bystander.quote_for("AAPL").await;
    let after = bystander.quote_for("AAPL").await;
    assert!(after.ts >= before.ts);

    // Garbage counts as refused commands too.
    let mut noisy = WsClient::subscribed(&ws, &[]).await;
    for _ in 0..15 {
        noisy.send_text("{not json").await;
    }
    let first = noisy.recv().await;
    assert!(matches!(first, ServerMessage::Error { code: ErrorCode::BadJson, .. }), "{first:?}");
    let frame = noisy.closed().await;
    assert_eq!(frame.map(|f| u16::from(f.code)), Some(1008));
    let metrics = reqwest::get(format!("{}/metrics", relay.http_url())).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hamster_refused_total{reason=\"abusive\"} 2"), "{metrics}");
    relay.stop();
}

#[tokio::test]
async fn a_request_head_must_arrive_in_time() {
    let relay = Relay::start(&["--handshake-timeout-ms", "500"]);
    let addr = format!("127.0.0.1:{}", relay.port());
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(WAIT, slow.read(&mut buf)).await.expect("the relay never hung up");
    let waited = started.elapsed();
    println!("half-sent request head cut after {waited:?} ({read:?} bytes)");
    assert!(waited >= Duration::from_millis(300), "cut too early: {waited:?}");
    // A prompt client on the same relay is served.
    let mut quick = tokio::net::TcpStream::connect(&addr).await.unwrap();
    quick.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, quick.read_to_string(&mut response)).await.unwrap().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    relay.stop();
}
