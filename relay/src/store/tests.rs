//! The store against a real SQLite file in a temporary directory: what is recorded reads back, candles aggregate,
//! scans page in arrival order, retention and the size cap delete the oldest rows, a full disk degrades
//! recording without blocking the recorder, and a reopened database keeps everything committed.

use std::time::{Duration, Instant};

use super::read::{candles, coverage, scan_events, scan_ticks, ticks};
use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "hamster-store-{name}-{}-{}",
            std::process::id(),
            crate::clock::now_ms()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(dir: &TempDir) -> StoreConfig {
    StoreConfig {
        path: dir.0.join("hamster.db"),
        retain_ticks: Duration::from_secs(7 * 86_400),
        retain_candles: Duration::from_secs(365 * 86_400),
        max_db_bytes: None,
        queue: 100_000,
        retention_every: Duration::from_secs(3600),
        max_pages: None,
        yield_to_delivery: true,
    }
}

fn quote(symbol: &str, ts: i64, price: f64, volume: Option<f64>) -> Record {
    Record::Quote(QuoteRecord {
        symbol: symbol.into(),
        provider: "sim".into(),
        ts,
        recv: ts + 5,
        price,
        bid: Some(price - 0.01),
        ask: None,
        volume,
    })
}

fn wait_recorded(store: &Store, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.status().recorded + store.status().dropped < n {
        assert!(Instant::now() < deadline, "writer stuck: {:?}", store.status());
        std::thread::sleep(Duration::from_millis(20));
    }
}

const T0: i64 = 1_700_000_040_000; // a minute boundary

#[test]
fn records_read_back_and_candles_aggregate() {
    let dir = TempDir::new("read");
    let store = Store::open(config(&dir)).unwrap();
    let rec = store.recorder().unwrap();
    // Six minutes of AAPL, one tick every 20 s, prices 1, 2, 3 … with a running day volume.
    for i in 0..18 {
        rec.offer(quote("AAPL", T0 + i * 20_000, (i + 1) as f64, Some(100.0 * (i + 1) as f64)));
    }
    rec.offer(Record::Event(EventRecord {
        channel: "FLOW-ALERTS".into(),
        ts: T0,
        recv: T0 + 1,
        payload: r#"{"ticker":"AAPL"}"#.into(),
    }));
    wait_recorded(&store, 19);
    let got = store.read(|c| ticks(c, "AAPL", T0, T0 + 60_000, 100)).unwrap();
    assert_eq!(got.iter().map(|t| t.price).collect::<Vec<_>>(), [1.0, 2.0, 3.0]);
    assert_eq!((got[0].bid, got[0].ask, got[0].recv), (Some(0.99), None, T0 + 5));

    let one = store.read(|c| candles(c, "AAPL", 60_000, T0, T0 + 360_000, 100)).unwrap();
    assert_eq!(one.len(), 6);
    assert_eq!((one[1].open, one[1].high, one[1].low, one[1].close, one[1].ticks), (4.0, 6.0, 4.0, 6.0, 3));
    assert_eq!(one[1].volume, 300.0, "the day volume grew by 300 in that minute");
    let five = store.read(|c| candles(c, "AAPL", 300_000, T0, T0 + 360_000, 100)).unwrap();
    let starts: Vec<i64> = five.iter().map(|c| c.start).collect();
    assert_eq!(starts, [T0 / 300_000 * 300_000, T0 / 300_000 * 300_000 + 300_000]);
    assert_eq!(five.iter().map(|c| c.ticks).sum::<i64>(), 18);
    let day = store.read(|c| candles(c, "AAPL", 86_400_000, T0 - 86_400_000, T0 + 86_400_000, 10)).unwrap();
    assert_eq!((day.len(), day[0].open, day[0].close, day[0].high), (1, 1.0, 18.0, 18.0));
    let last_two = store.read(|c| candles(c, "AAPL", 60_000, T0, T0 + 360_000, 2)).unwrap();
    assert_eq!(last_two[1].close, 18.0, "a limit keeps the newest candles");

    let ev = store.read(|c| scan_events(c, &["FLOW-ALERTS".to_owned()], T0, T0 + 2, None, 10)).unwrap();
    assert_eq!(ev[0].payload, r#"{"ticker":"AAPL"}"#);
    let cov = store.read(coverage).unwrap();
    assert_eq!(cov.len(), 2);
    assert_eq!((cov[0].symbol.as_str(), cov[0].first, cov[0].last), ("AAPL", T0 + 5, T0 + 17 * 20_000 + 5));
}

#[test]
fn scans_page_in_arrival_order_and_a_reopened_store_keeps_what_was_committed() {
    let dir = TempDir::new("scan");
    let store = Store::open(config(&dir)).unwrap();
    let rec = store.recorder().unwrap();
    for i in 0..10_000 {
        rec.offer(quote(if i % 2 == 0 { "A" } else { "B" }, T0 + i, i as f64, None));
    }
    wait_recorded(&store, 10_000);
    store.close();
    drop(store);

    let store = Store::open(config(&dir)).unwrap();
    let symbols = vec!["A".to_owned(), "B".to_owned()];
    let (mut after, mut seen, mut pages) = (None, Vec::new(), 0);
    loop {
        let page = store.read(|c| scan_ticks(c, &symbols, T0, T0 + 20_000, after, 999)).unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.recv, last.id));
        seen.extend(page.iter().map(|t| t.price as i64));
        pages += 1;
    }
    assert_eq!(seen, (0..10_000).collect::<Vec<_>>(), "every tick once, in order");
    assert_eq!(pages, 11);
    let only_b = store.read(|c| scan_ticks(c, &["B".to_owned()], T0, T0 + 20_000, None, 5)).unwrap();
    assert!(only_b.iter().all(|t| t.symbol == "B"));
    assert!(store.read(|c| scan_ticks(c, &[], T0, T0 + 20_000, None, 5)).unwrap().is_empty());
    assert!(store.read(|c| scan_events(c, &["X".to_owned()], 0, i64::MAX, None, 5)).unwrap().is_empty());
}

#[test]
fn retention_and_the_size_cap_delete_the_oldest_rows() {
    let dir = TempDir::new("retain");
    let mut cfg = config(&dir);
    cfg.retain_ticks = Duration::from_secs(3600);
    cfg.retention_every = Duration::from_millis(100);
    let store = Store::open(cfg).unwrap();
    let rec = store.recorder().unwrap();
    let now = crate::clock::now_ms();
    rec.offer(quote("OLD", now - 7_200_000, 1.0, None));
    rec.offer(quote("NEW", now - 60_000, 2.0, None));
    wait_recorded(&store, 2);
    std::thread::sleep(Duration::from_millis(400));
    rec.offer(quote("NEW", now, 3.0, None));
    wait_recorded(&store, 3);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let old = store.read(|c| ticks(c, "OLD", 0, i64::MAX, 10)).unwrap();
        if old.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the two-hour-old tick is still there");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(store.read(|c| ticks(c, "NEW", 0, i64::MAX, 10)).unwrap().len(), 2);
    assert_eq!(store.read(|c| candles(c, "OLD", 60_000, 0, i64::MAX, 10)).unwrap().len(), 1, "candles outlive ticks");
    drop(store);

    // A size cap: write ~2 MB of ticks with a 1 MB cap; the oldest go and the newest stay.
    let dir = TempDir::new("cap");
    let mut cfg = config(&dir);
    cfg.max_db_bytes = Some(1 << 20);
    cfg.retention_every = Duration::from_millis(100);
    let store = Store::open(cfg).unwrap();
    let rec = store.recorder().unwrap();
    for i in 0..40_000 {
        rec.offer(quote("CAP", now + i, i as f64, Some(1.0)));
    }
    wait_recorded(&store, 40_000);
    std::thread::sleep(Duration::from_millis(300));
    rec.offer(quote("CAP", now + 40_000, 40_000.0, None));
    wait_recorded(&store, 40_001);
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.status().used_bytes > 1 << 20 {
        assert!(Instant::now() < deadline, "still {} bytes", store.status().used_bytes);
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = store.read(|c| ticks(c, "CAP", 0, i64::MAX, 100_000)).unwrap();
    assert!(!left.is_empty() && left.len() < 40_000, "{} left", left.len());
    assert_eq!(left.last().map(|t| t.price), Some(40_000.0), "the newest survive");
}

#[test]
fn a_full_disk_degrades_recording_and_the_recorder_never_blocks() {
    let dir = TempDir::new("full");
    let mut cfg = config(&dir);
    cfg.max_pages = Some(64);
    cfg.queue = 1_000;
    let store = Store::open(cfg).unwrap();
    let rec = store.recorder().unwrap();
    // Faster than any disk: the queue overflows, offers are dropped and counted, and offering never waits.
    let started = Instant::now();
    for i in 0..200_000 {
        rec.offer(quote("FAST", T0 + i, i as f64, None));
    }
    assert!(started.elapsed() < Duration::from_secs(5), "offering took {:?}", started.elapsed());
    wait_recorded(&store, 200_000);
    assert!(store.status().dropped > 0, "{:?}", store.status());
    // Now fill the 256 KB "disk" at a pace the writer keeps up with, until it reports the disk full.
    let mut offered = 200_000;
    for chunk in 0..400 {
        for i in 0..500 {
            rec.offer(quote("FULL", T0 + chunk * 500 + i, i as f64, None));
        }
        offered += 500;
        wait_recorded(&store, offered);
        if store.status().degraded.is_some() {
            break;
        }
    }
    let status = store.status();
    assert!(status.degraded.as_deref().is_some_and(|d| d.contains("disk full")), "{status:?}");
    // Reading still works.
    assert!(!store.read(|c| ticks(c, "FULL", 0, i64::MAX, 10)).unwrap().is_empty());
    store.close();
    rec.offer(quote("FULL", T0, 1.0, None));
    assert!(store.status().dropped > status.dropped, "offers after close are counted, not lost silently");
}
