//! The store's one writer: a dedicated thread that takes records from a bounded queue and writes them in batched
//! transactions, keeps one-minute and daily candles, and enforces retention in small steps.
//!
//! The hub's side of the queue never blocks: when the disk cannot keep up the queue fills, new records are dropped
//! and counted ([`super::Recorder::offer`]), and live delivery is unaffected. A batch is one transaction, committed
//! at least every [`FLUSH_EVERY`], so a crash loses at most the batch in flight. A full disk (`SQLITE_FULL`) rolls
//! the batch back, counts its records as dropped, and marks the store degraded until a later batch succeeds.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, Transaction};

use super::{Record, Shared, StoreConfig, StoreError, ToWriter};

/// Longest a record waits in a batch before it is committed.
pub(super) const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Most records in one transaction.
const MAX_BATCH: usize = 20_000;
/// Retention deletes at most this many rows per statement.
const RETENTION_STEP: usize = 5_000;
/// A minute and a day, in ms.
pub(super) const MINUTE_MS: i64 = 60_000;
pub(super) const DAY_MS: i64 = 86_400_000;

/// A candle being built from one batch's ticks, merged into the table once per batch.
#[derive(Debug, Clone, Copy)]
struct Partial {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    ticks: i64,
}

/// State the writer keeps between batches.
struct Writer {
    conn: Connection,
    config: StoreConfig,
    shared: Arc<Shared>,
    /// Symbol → instruments.id.
    ids: HashMap<String, i64>,
    /// Symbol → the last day volume seen, to turn running day volumes into per-candle volumes.
    day_volume: HashMap<String, f64>,
    last_retention: Instant,
}

/// Runs until told to close (or every [`super::Recorder`] is gone), committing what is left first.
pub(super) fn run(conn: Connection, config: StoreConfig, shared: Arc<Shared>, records: Receiver<ToWriter>) {
    if config.yield_to_delivery {
        yield_to_delivery();
    }
    let mut w = Writer {
        conn,
        config,
        shared,
        ids: HashMap::new(),
        day_volume: HashMap::new(),
        last_retention: Instant::now(),
    };
    let mut batch = Vec::with_capacity(1024);
    let mut last_drop_log = Instant::now();
    let mut dropped_logged = 0;
    loop {
        let closed = match records.recv_timeout(w.config.retention_every) {
            Ok(ToWriter::Record(first)) => {
                batch.push(first);
                let deadline = Instant::now() + FLUSH_EVERY;
                let mut closed = false;
                while batch.len() < MAX_BATCH {
                    match records.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(ToWriter::Record(record)) => batch.push(record),
                        Err(RecvTimeoutError::Timeout) => break,
                        Ok(ToWriter::Close) | Err(RecvTimeoutError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                closed
            }
            Err(RecvTimeoutError::Timeout) => false,
            Ok(ToWriter::Close) | Err(RecvTimeoutError::Disconnected) => true,
        };
        if !batch.is_empty() {
            w.write(&mut batch);
        }
        if w.last_retention.elapsed() >= w.config.retention_every {
            w.retain();
        }
        let dropped = w.shared.dropped.load(Ordering::Relaxed);
        if dropped > dropped_logged && last_drop_log.elapsed() >= Duration::from_secs(60) {
            tracing::warn!(dropped = dropped - dropped_logged, "recording fell behind; records were dropped");
            dropped_logged = dropped;
            last_drop_log = Instant::now();
        }
        if closed {
            return;
        }
    }
}

impl Writer {
    fn write(&mut self, batch: &mut Vec<Record>) {
        let n = batch.len() as u64;
        match self.try_write(batch) {
            Ok(()) => {
                self.shared.recorded.fetch_add(n, Ordering::Relaxed);
                self.shared.set_degraded(None);
            }
            Err(e) => {
                self.shared.dropped.fetch_add(n, Ordering::Relaxed);
                let reason =
                    if is_full(&e) { "disk full: recording paused".to_owned() } else { format!("write failed: {e}") };
                tracing::warn!(records = n, %reason, "recording batch lost");
                self.shared.set_degraded(Some(reason));
                // Ids cached during a rolled-back transaction may not exist.
                self.ids.clear();
            }
        }
        batch.clear();
    }

    fn try_write(&mut self, batch: &[Record]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let mut minutes: HashMap<(i64, i64), Partial> = HashMap::new();
        let mut days: HashMap<(i64, i64), Partial> = HashMap::new();
        {
            let mut tick =
                tx.prepare_cached("INSERT INTO ticks (instrument, ts, recv, price, bid, ask, volume, provider) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
            let mut event =
                tx.prepare_cached("INSERT INTO events (channel, ts, recv, payload) VALUES (?1, ?2, ?3, ?4)")?;
            for record in batch {
                match record {
                    Record::Quote(q) => {
                        let id = id_of(&tx, &mut self.ids, &q.symbol)?;
                        tick.execute(params![id, q.ts, q.recv, q.price, q.bid, q.ask, q.volume, q.provider])?;
                        let traded = match (q.volume, self.day_volume.get(&q.symbol)) {
                            (Some(v), Some(prev)) if v >= *prev => v - prev,
                            // A smaller running volume means a new trading day began.
                            (Some(v), Some(_)) => v,
                            _ => 0.0,
                        };
                        if let Some(v) = q.volume {
                            self.day_volume.insert(q.symbol.clone(), v);
                        }
                        for (table, span) in [(&mut minutes, MINUTE_MS), (&mut days, DAY_MS)] {
                            let start = q.ts.div_euclid(span) * span;
                            table
                                .entry((id, start))
                                .and_modify(|c| {
                                    c.high = c.high.max(q.price);
                                    c.low = c.low.min(q.price);
                                    c.close = q.price;
                                    c.volume += traded;
                                    c.ticks += 1;
                                })
                                .or_insert(Partial {
                                    open: q.price,
                                    high: q.price,
                                    low: q.price,
                                    close: q.price,
                                    volume: traded,
                                    ticks: 1,
                                });
                        }
                    }
                    Record::Event(e) => {
                        let id = id_of(&tx, &mut self.ids, &e.channel)?;
                        event.execute(params![id, e.ts, e.recv, e.payload])?;
                    }
                }
            }
        }
        merge_candles(&tx, "candles_1m", &minutes)?;
        merge_candles(&tx, "candles_1d", &days)?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes what is older than the retention windows, then the oldest ticks and events while the database is
    /// over its size cap — in steps of [`RETENTION_STEP`] rows so no statement holds the lock for long.
    fn retain(&mut self) {
        self.last_retention = Instant::now();
        let now = crate::clock::now_ms();
        let tick_cutoff = now - self.config.retain_ticks.as_millis() as i64;
        let candle_cutoff = now - self.config.retain_candles.as_millis() as i64;
        let steps: [(&str, i64); 3] = [
            ("DELETE FROM ticks WHERE rowid IN (SELECT rowid FROM ticks WHERE recv < ?1 LIMIT ?2)", tick_cutoff),
            ("DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE recv < ?1 LIMIT ?2)", tick_cutoff),
            (
                "DELETE FROM candles_1m WHERE (instrument, start) IN (SELECT instrument, start FROM candles_1m WHERE start < ?1 LIMIT ?2)",
                candle_cutoff,
            ),
        ];
        for (sql, cutoff) in steps {
            for _ in 0..100 {
                match self.conn.execute(sql, params![cutoff, RETENTION_STEP as i64]) {
                    Ok(n) if n == RETENTION_STEP => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "retention step failed");
                        break;
                    }
                }
            }
        }
        if let Some(max) = self.config.max_db_bytes {
            for _ in 0..100 {
                match used_bytes(&self.conn) {
                    Ok(used) if used > max => {}
                    _ => break,
                }
                let freed = self
                    .conn
                    .execute(
                        "DELETE FROM ticks WHERE rowid IN (SELECT rowid FROM ticks ORDER BY recv LIMIT ?1)",
                        params![RETENTION_STEP as i64],
                    )
                    .unwrap_or(0)
                    + self
                        .conn
                        .execute(
                            "DELETE FROM events WHERE rowid IN (SELECT rowid FROM events ORDER BY recv LIMIT ?1)",
                            params![(RETENTION_STEP / 10) as i64],
                        )
                        .unwrap_or(0);
                if freed == 0 {
                    break;
                }
            }
        }
    }
}

/// Bytes in use (pages minus free pages): what the size cap bounds, as SQLite reuses freed pages.
pub(super) fn used_bytes(conn: &Connection) -> Result<u64, StoreError> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}

fn id_of(tx: &Transaction<'_>, ids: &mut HashMap<String, i64>, symbol: &str) -> Result<i64, StoreError> {
    if let Some(id) = ids.get(symbol) {
        return Ok(*id);
    }
    tx.execute("INSERT OR IGNORE INTO instruments (symbol) VALUES (?1)", params![symbol])?;
    let id: i64 = tx.query_row("SELECT id FROM instruments WHERE symbol = ?1", params![symbol], |r| r.get(0))?;
    ids.insert(symbol.to_owned(), id);
    Ok(id)
}

fn merge_candles(tx: &Transaction<'_>, table: &str, candles: &HashMap<(i64, i64), Partial>) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {table} (instrument, start, open, high, low, close, volume, ticks) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (instrument, start) DO UPDATE SET high = max(high, excluded.high), low = min(low, excluded.low),
         close = excluded.close, volume = volume + excluded.volume, ticks = ticks + excluded.ticks"
    );
    let mut stmt = tx.prepare_cached(&sql)?;
    for ((id, start), c) in candles {
        stmt.execute(params![id, start, c.open, c.high, c.low, c.close, c.volume, c.ticks])?;
    }
    Ok(())
}

fn is_full(e: &StoreError) -> bool {
    matches!(e, StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) if f.code == ErrorCode::DiskFull)
}

/// Lowers this thread's scheduling priority to the lowest, so that when the cores are busy the kernel runs the
/// fan-out first and the recorder falls behind (its queue fills, records are dropped and counted) instead of
/// delaying live delivery. Measured at 100,000 ticks/s on 2 cores: without it, recording pushed the fan-out's
/// p50 from under 1 ms to tens or hundreds of ms. On Linux `setpriority(PRIO_PROCESS, 0, …)` applies to the
/// calling thread only.
fn yield_to_delivery() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and touches no memory of ours.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "store writer keeps its priority");
        }
    }
}
