//! HTTP surfaces and lifecycle of the real relay: SSE and REST agree on prices, history fills, errors are JSON
//! with a status, health and metrics answer, a built dashboard's precompressed files are served as they are, and
//! SIGTERM closes clients with 1001 and exits promptly.

use std::time::{Duration, Instant};

use futures::StreamExt;
use hamster_shared::api::{ApiError, HistoryResponse, QuotesResponse};
use hamster_shared::{ErrorCode, Quote, ServerMessage};
use hamster_tests::{Relay, TempDir, WsClient, WAIT};

/// Reads SSE events from `/api/stream` until a `snapshot` with all `symbols` is seen.
async fn sse_snapshot(relay: &Relay, symbols: &str) -> Vec<Quote> {
    let url = format!("{}/api/stream?symbols={symbols}", relay.http_url());
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let chunk = tokio::time::timeout_at(deadline, body.next()).await.expect("sse timed out").unwrap().unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let data = event.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("");
            if event.starts_with("event: snapshot") {
                let ServerMessage::Snapshot { quotes } = serde_json::from_str(data).unwrap() else { panic!() };
                return quotes;
            }
        }
    }
}

#[tokio::test]
async fn sse_and_rest_return_the_same_prices() {
    // Slow ticks so both reads can land between two ticks.
    let relay = Relay::start(&["--sim-tick-hz", "0.5"]);
    let (status, first) = relay.get_json::<QuotesResponse>("/api/quotes?symbols=AAPL,BTC/USD").await;
    assert_eq!(status, 200);
    assert_eq!(first.pending.len() + first.quotes.len(), 2);
    // Wait for both to have a value (the REST lease subscribed them upstream).
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, q) = relay.get_json::<QuotesResponse>("/api/quotes?symbols=AAPL,BTC/USD").await;
        if q.quotes.len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no prices: {q:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for attempt in 0..5 {
        let (_, before) = relay.get_json::<QuotesResponse>("/api/quotes?symbols=AAPL,BTC/USD").await;
        let sse = sse_snapshot(&relay, "AAPL,BTC/USD").await;
        let (_, after) = relay.get_json::<QuotesResponse>("/api/quotes?symbols=AAPL,BTC/USD").await;
        if before.quotes != after.quotes {
            // A tick landed in between; try again.
            assert!(attempt < 4, "prices kept moving");
            continue;
        }
        assert_eq!(sse, before.quotes, "SSE snapshot and REST disagree");
        break;
    }
}

#[tokio::test]
async fn sse_streams_updates() {
    let relay = Relay::start(&["--sim-tick-hz", "20"]);
    let url = format!("{}/api/stream?symbols=EUR/USD", relay.http_url());
    let mut body = reqwest::get(url).await.unwrap().bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while text.matches("event: quotes").count() < 3 {
        let chunk = tokio::time::timeout_at(deadline, body.next()).await.expect("sse timed out").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let order: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).take(4).collect();
    assert_eq!(order, ["hello", "status", "subscribed", "snapshot"]);
    assert!(text.contains(r#""symbol":"EUR/USD""#));
}

#[tokio::test]
async fn rest_errors_are_json_with_status() {
    let relay = Relay::start(&[]);
    let (status, e) = relay.get_json::<ApiError>("/api/quotes?symbols=AAPL,bad%20sym").await;
    assert_eq!((status, e.code), (400, ErrorCode::InvalidSymbol), "{e:?}");
    let (status, e) = relay.get_json::<ApiError>("/api/quotes?symbols=nosuch:AAPL").await;
    assert_eq!((status, e.code), (400, ErrorCode::UnknownProvider));
    let many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
    let (status, e) = relay.get_json::<ApiError>(&format!("/api/quotes?symbols={}", many.join(","))).await;
    assert_eq!((status, e.code), (400, ErrorCode::TooManySymbols));
    let (status, e) = relay.get_json::<ApiError>("/api/stream").await;
    assert_eq!((status, e.code), (400, ErrorCode::InvalidSymbol));
    let (status, e) = relay.get_json::<ApiError>("/api/history/%3Cscript%3E").await;
    assert_eq!((status, e.code), (400, ErrorCode::InvalidSymbol));
    let (status, e) = relay.get_json::<ApiError>("/api/nothing-here").await;
    assert_eq!((status, e.code), (404, ErrorCode::NotFound));
    let (status, health) = relay.get_json::<serde_json::Value>("/healthz").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
}

#[tokio::test]
async fn history_and_metrics_follow_the_ticks() {
    let relay = Relay::start(&["--sim-tick-hz", "50"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["BTC/USD"]).await;
    for _ in 0..10 {
        ws.recv_until("quotes", |m| matches!(m, ServerMessage::Quotes { .. })).await;
    }
    for path in ["/api/history/BTC/USD", "/api/history/BTC%2FUSD", "/api/history/btc%2Fusd"] {
        let (status, h) = relay.get_json::<HistoryResponse>(path).await;
        assert_eq!(status, 200);
        assert_eq!(h.symbol.as_str(), "BTC/USD");
        assert!(h.ticks.len() >= 10, "{path}: {} ticks", h.ticks.len());
        assert!(h.ticks.windows(2).all(|w| w[0].ts <= w[1].ts));
        let last = h.candles.last().expect("a candle");
        assert!(last.low <= last.close && last.close <= last.high);
    }
    let metrics = reqwest::get(format!("{}/metrics", relay.http_url())).await.unwrap().text().await.unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} missing in\n{metrics}"))
    };
    assert!(value("hamster_quotes_in_total ") >= 10.0);
    assert!(value("hamster_quotes_out_total ") >= 10.0);
    assert_eq!(value("hamster_clients "), 1.0);
    assert_eq!(value("hamster_upstream_subscriptions "), 1.0);
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_exits() {
    let relay = Relay::start(&["--sim-tick-hz", "20"]);
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.hello().await;
    ws.subscribe(&["AAPL"]).await;
    let url = format!("{}/api/stream?symbols=AAPL", relay.http_url());
    let mut sse = reqwest::get(url).await.unwrap().bytes_stream();

    let started = Instant::now();
    relay.signal(libc::SIGTERM);
    let close = ws.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1001);
    // The SSE stream ends too.
    let deadline = tokio::time::Instant::now() + WAIT;
    while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, sse.next()).await {}

    let mut relay = relay;
    let status = relay.wait_exit(Duration::from_secs(5)).expect("relay must exit within 5 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    println!("SIGTERM to exit: {:?}", started.elapsed());
}

/// A release build leaves `.gz` (zopfli) and `.br` copies next to its immutable files; the relay sends the copy the
/// browser accepts byte for byte, the plain file to one that accepts neither, and gzips the rest on the fly. Every
/// answer says it varies by Accept-Encoding, so a cache in front of the relay keeps the variants apart.
#[tokio::test]
async fn precompressed_copies_are_served_to_browsers_that_accept_them() {
    let dist = TempDir::new("precompressed");
    let file = |name: &str, body: &[u8]| std::fs::write(dist.path().join(name), body).expect("write the dist");
    file("index.html", "<!doctype html><title>dash</title>".repeat(40).as_bytes());
    file("hamster-web-0123abcd_bg.wasm", b"\0asm plain module");
    file("hamster-web-0123abcd_bg.wasm.gz", b"the zopfli copy");
    file("hamster-web-0123abcd_bg.wasm.br", b"the brotli copy");
    let relay = Relay::start(&["--static-dir", &dist.arg()]);
    let http = reqwest::Client::new();
    let get = |path: &str, accept: &str| {
        let request = http.get(format!("{}{path}", relay.http_url())).header("accept-encoding", accept);
        async move {
            let response = request.send().await.expect("the relay answers");
            let header = |name: &str| {
                response.headers().get(name).map(|v| v.to_str().unwrap_or_default().to_owned()).unwrap_or_default()
            };
            let (status, encoding, vary) = (response.status().as_u16(), header("content-encoding"), header("vary"));
            let body = response.bytes().await.expect("a body").to_vec();
            (status, encoding, vary, body)
        }
    };
    let wasm = "/hamster-web-0123abcd_bg.wasm";
    for (accept, want_encoding, want_body) in [
        ("gzip", "gzip", &b"the zopfli copy"[..]),
        ("br", "br", b"the brotli copy"),
        ("gzip;q=0.5, br", "br", b"the brotli copy"),
        ("identity", "", b"\0asm plain module"),
    ] {
        let (status, encoding, vary, body) = get(wasm, accept).await;
        assert_eq!((status, encoding.as_str()), (200, want_encoding), "Accept-Encoding: {accept}");
        assert_eq!(body, want_body, "Accept-Encoding: {accept}");
        assert_eq!(vary, "accept-encoding", "Accept-Encoding: {accept}");
    }
    let (status, encoding, vary, body) = get("/index.html", "gzip").await;
    assert_eq!((status, encoding.as_str(), vary.as_str()), (200, "gzip", "accept-encoding"));
    assert!(body.len() < 200 && body.starts_with(&[0x1f, 0x8b]), "gzipped per request: {} bytes", body.len());
}
