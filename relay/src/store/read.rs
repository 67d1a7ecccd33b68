//! The store's queries: ticks, candles at any timeframe (aggregated from one-minute or daily candles), events,
//! what is recorded where (for a replay timeline), and keyset scans in arrival order for replay and export, so a
//! reader of a million rows holds one page at a time.

use rusqlite::{params, params_from_iter, Connection, Row};

use super::writer::{DAY_MS, MINUTE_MS};
use super::StoreError;

/// A recorded quote.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredTick {
    /// Row id: the scan position.
    pub(crate) id: i64,
    pub(crate) symbol: String,
    pub(crate) provider: String,
    pub(crate) ts: i64,
    pub(crate) recv: i64,
    pub(crate) price: f64,
    pub(crate) bid: Option<f64>,
    pub(crate) ask: Option<f64>,
    pub(crate) volume: Option<f64>,
}

/// A candle of any timeframe. `volume` is what traded inside it where the provider gives volumes, else 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StoredCandle {
    pub(crate) start: i64,
    pub(crate) open: f64,
    pub(crate) high: f64,
    pub(crate) low: f64,
    pub(crate) close: f64,
    pub(crate) volume: f64,
    pub(crate) ticks: i64,
}

/// A recorded channel event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredEvent {
    pub(crate) id: i64,
    pub(crate) channel: String,
    pub(crate) ts: i64,
    pub(crate) recv: i64,
    pub(crate) payload: String,
}

/// Where data exists for one symbol or channel (receive times, ms).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Coverage {
    pub(crate) symbol: String,
    pub(crate) first: i64,
    pub(crate) last: i64,
}

fn tick(row: &Row<'_>) -> rusqlite::Result<StoredTick> {
    Ok(StoredTick {
        id: row.get(0)?,
        symbol: row.get(1)?,
        provider: row.get(2)?,
        ts: row.get(3)?,
        recv: row.get(4)?,
        price: row.get(5)?,
        bid: row.get(6)?,
        ask: row.get(7)?,
        volume: row.get(8)?,
    })
}

fn event(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent { id: row.get(0)?, channel: row.get(1)?, ts: row.get(2)?, recv: row.get(3)?, payload: row.get(4)? })
}

const TICK_COLUMNS: &str = "t.rowid, i.symbol, t.provider, t.ts, t.recv, t.price, t.bid, t.ask, t.volume";

/// Ticks of `symbol` with event time in `[from, to)`, oldest first, at most `limit`.
#[cfg(test)]
pub(crate) fn ticks(
    conn: &Connection,
    symbol: &str,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<Vec<StoredTick>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TICK_COLUMNS} FROM ticks t JOIN instruments i ON i.id = t.instrument
         WHERE i.symbol = ?1 AND t.ts >= ?2 AND t.ts < ?3 ORDER BY t.ts, t.rowid LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![symbol, from, to, limit as i64], tick)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Candles of `symbol` of `tf_ms` (a multiple of a minute) starting in `[from, to)`, oldest first, at most `limit`
/// (the newest ones when there are more). Whole days come from the daily rollups, which outlive the minutes.
pub(crate) fn candles(
    conn: &Connection,
    symbol: &str,
    tf_ms: i64,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<Vec<StoredCandle>, StoreError> {
    let tf_ms = (tf_ms.max(MINUTE_MS) / MINUTE_MS) * MINUTE_MS;
    let table = if tf_ms % DAY_MS == 0 { "candles_1d" } else { "candles_1m" };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT c.start, c.open, c.high, c.low, c.close, c.volume, c.ticks FROM {table} c JOIN instruments i ON i.id = c.instrument
         WHERE i.symbol = ?1 AND c.start >= ?2 AND c.start < ?3 ORDER BY c.start"
    ))?;
    let mut rows = stmt.query(params![symbol, from.div_euclid(tf_ms) * tf_ms, to])?;
    let mut out: Vec<StoredCandle> = Vec::new();
    while let Some(row) = rows.next()? {
        let c = StoredCandle {
            start: row.get::<_, i64>(0)?.div_euclid(tf_ms) * tf_ms,
            open: row.get(1)?,
            high: row.get(2)?,
            low: row.get(3)?,
            close: row.get(4)?,
            volume: row.get(5)?,
            ticks: row.get(6)?,
        };
        match out.last_mut() {
            Some(last) if last.start == c.start => {
                last.high = last.high.max(c.high);
                last.low = last.low.min(c.low);
                last.close = c.close;
                last.volume += c.volume;
                last.ticks += c.ticks;
            }
            _ => out.push(c),
        }
    }
    if out.len() > limit {
        out.drain(..out.len() - limit);
    }
    Ok(out)
}

/// For every recorded symbol and channel, the first and last receive time of its ticks or events.
pub(crate) fn coverage(conn: &Connection) -> Result<Vec<Coverage>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT i.symbol,
                coalesce((SELECT min(recv) FROM ticks WHERE instrument = i.id), (SELECT min(recv) FROM events WHERE channel = i.id)),
                coalesce((SELECT max(recv) FROM ticks WHERE instrument = i.id), (SELECT max(recv) FROM events WHERE channel = i.id))
         FROM instruments i ORDER BY i.symbol",
    )?;
    let rows =
        stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?)))?;
    let mut out = Vec::new();
    for row in rows {
        if let (symbol, Some(first), Some(last)) = row? {
            out.push(Coverage { symbol, first, last });
        }
    }
    Ok(out)
}

/// The next page of ticks of `symbols` received in `[from, to)`, in arrival order, after position `after`
/// (`(recv, rowid)` of the last row of the previous page).
///
/// `INDEXED BY` pins the arrival-order index: left to itself the planner walks the per-instrument index and sorts
/// every match for every page, which made a million-row export quadratic (minutes instead of seconds).
pub(crate) fn scan_ticks(
    conn: &Connection,
    symbols: &[String],
    from: i64,
    to: i64,
    after: Option<(i64, i64)>,
    limit: usize,
) -> Result<Vec<StoredTick>, StoreError> {
    let (after_recv, after_id) = after.unwrap_or((i64::MIN, i64::MIN));
    let list = placeholders(symbols.len(), 6);
    let sql = format!(
        "SELECT {TICK_COLUMNS} FROM ticks t INDEXED BY ticks_by_recv JOIN instruments i ON i.id = t.instrument
         WHERE t.recv >= ?1 AND t.recv < ?2 AND (t.recv, t.rowid) > (?3, ?4) AND ?5
           AND t.instrument IN (SELECT id FROM instruments WHERE symbol IN ({list}))
         ORDER BY t.recv, t.rowid LIMIT {limit}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let head: [rusqlite::types::Value; 5] =
        [from.into(), to.into(), after_recv.into(), after_id.into(), i64::from(!symbols.is_empty()).into()];
    let args = head.into_iter().chain(symbols.iter().map(|s| rusqlite::types::Value::from(s.clone())));
    let rows = stmt.query_map(params_from_iter(args), tick)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The next page of events on `channels` received in `[from, to)`, in arrival order, after `after`.
pub(crate) fn scan_events(
    conn: &Connection,
    channels: &[String],
    from: i64,
    to: i64,
    after: Option<(i64, i64)>,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let (after_recv, after_id) = after.unwrap_or((i64::MIN, i64::MIN));
    let list = placeholders(channels.len(), 6);
    let sql = format!(
        "SELECT e.rowid, i.symbol, e.ts, e.recv, e.payload FROM events e INDEXED BY events_by_recv JOIN instruments i ON i.id = e.channel
         WHERE e.recv >= ?1 AND e.recv < ?2 AND (e.recv, e.rowid) > (?3, ?4) AND ?5
           AND e.channel IN (SELECT id FROM instruments WHERE symbol IN ({list}))
         ORDER BY e.recv, e.rowid LIMIT {limit}"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let head: [rusqlite::types::Value; 5] =
        [from.into(), to.into(), after_recv.into(), after_id.into(), i64::from(!channels.is_empty()).into()];
    let args = head.into_iter().chain(channels.iter().map(|s| rusqlite::types::Value::from(s.clone())));
    let rows = stmt.query_map(params_from_iter(args), event)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `?6, ?7, …` for `n` values starting at parameter `first` (an empty list is `NULL`, matching nothing).
fn placeholders(n: usize, first: usize) -> String {
    if n == 0 {
        return "NULL".to_owned();
    }
    (first..first + n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
}
