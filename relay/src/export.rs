//! Export of recorded data as CSV or NDJSON, a page at a time: ticks (arrival order), candles of a timeframe, or
//! channel events. Memory stays constant whatever the range — each page is encoded and handed to a sink (an HTTP
//! body or stdout) before the next is read. Used by `GET /api/export` and `hamster-relay export`.
//!
//! Columns (CSV header row; NDJSON uses the same names as keys):
//! * ticks: `symbol,provider,ts,recv,price,bid,ask,volume` — `ts` the provider's event time, `recv` the relay's
//!   receive time, both ms since the epoch; empty when the provider gave no bid/ask/volume.
//! * candles: `symbol,start,open,high,low,close,volume,ticks` — `start` the first ms of the candle.
//! * events: `channel,ts,recv,payload` — `payload` the provider's JSON document (a JSON string in CSV).

use serde::Serialize;

use crate::store::{read, Store, StoreError, StoredEvent};

/// Rows read per page.
const PAGE: usize = 5_000;

/// What to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Ticks,
    Candles { tf_ms: i64 },
    Events,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Ndjson,
}

/// A validated export request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExportSpec {
    pub(crate) kind: Kind,
    pub(crate) format: Format,
    /// Recorded symbols (or channels, for events).
    pub(crate) symbols: Vec<String>,
    /// Range, ms: receive time for ticks and events, candle start for candles.
    pub(crate) from: i64,
    pub(crate) to: i64,
}

impl ExportSpec {
    /// Builds a spec from the query-string words; the error says what is wrong.
    pub(crate) fn parse(
        kind: Option<&str>,
        format: Option<&str>,
        tf: Option<&str>,
        symbols: Vec<String>,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<ExportSpec, String> {
        let kind = match kind.unwrap_or("ticks") {
            "ticks" => Kind::Ticks,
            "candles" => Kind::Candles { tf_ms: timeframe_ms(tf.unwrap_or("1m"))? },
            "events" => Kind::Events,
            other => return Err(format!("unknown kind {other:?}; use ticks, candles or events")),
        };
        let format = match format.unwrap_or("csv") {
            "csv" => Format::Csv,
            "ndjson" => Format::Ndjson,
            other => return Err(format!("unknown format {other:?}; use csv or ndjson")),
        };
        if symbols.is_empty() {
            return Err("name the symbols (or channels) to export, e.g. symbols=AAPL,BTC/USD".into());
        }
        let (from, to) = (from.unwrap_or(0), to.unwrap_or(i64::MAX));
        if from >= to {
            return Err("from must be before to (ms since the epoch)".into());
        }
        Ok(ExportSpec { kind, format, symbols, from, to })
    }
}

/// `1m`, `5m`, `15m`, `1h`, `4h`, `1d` … as milliseconds (whole minutes).
pub(crate) fn timeframe_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("unknown timeframe {text:?}; use e.g. 1m, 5m, 15m, 1h or 1d");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: i64 = text[..split].parse().map_err(|_| bad())?;
    let unit = match &text[split..] {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" | "D" => 86_400_000,
        _ => return Err(bad()),
    };
    if !(1..=10_000).contains(&n) {
        return Err(bad());
    }
    Ok(n * unit)
}

#[derive(Serialize)]
struct TickRow<'a> {
    symbol: &'a str,
    provider: &'a str,
    ts: i64,
    recv: i64,
    price: f64,
    bid: Option<f64>,
    ask: Option<f64>,
    volume: Option<f64>,
}

#[derive(Serialize)]
struct CandleRow<'a> {
    symbol: &'a str,
    start: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    ticks: i64,
}

/// An event as an NDJSON line: the payload stays a JSON document.
#[derive(Serialize)]
struct EventRow<'a> {
    channel: &'a str,
    ts: i64,
    recv: i64,
    payload: &'a serde_json::value::RawValue,
}

/// An event as a CSV row: the payload is its JSON text in one field.
#[derive(Serialize)]
struct EventCsvRow<'a> {
    channel: &'a str,
    ts: i64,
    recv: i64,
    payload: &'a str,
}

/// Encodes rows one page at a time.
struct Encoder {
    format: Format,
    header_written: bool,
}

impl Encoder {
    fn page<T: Serialize>(&mut self, rows: impl Iterator<Item = T>) -> Vec<u8> {
        let mut out = Vec::new();
        match self.format {
            Format::Ndjson => {
                for row in rows {
                    // Serialising plain rows cannot fail; a row that somehow did is left out rather than half-written.
                    if serde_json::to_writer(&mut out, &row).is_ok() {
                        out.push(b'\n');
                    }
                }
            }
            Format::Csv => {
                let mut writer = csv::WriterBuilder::new().has_headers(!self.header_written).from_writer(&mut out);
                for row in rows {
                    if writer.serialize(row).is_ok() {
                        self.header_written = true;
                    }
                }
                let _ = writer.flush();
            }
        }
        out
    }
}

/// Streams `spec` from `store` into `sink` page by page; `sink` returns false to stop early (the reader left).
/// Returns the number of rows written.
pub(crate) fn export(
    store: &Store,
    spec: &ExportSpec,
    mut sink: impl FnMut(Vec<u8>) -> bool,
) -> Result<u64, StoreError> {
    let mut enc = Encoder { format: spec.format, header_written: false };
    let mut rows = 0u64;
    match spec.kind {
        Kind::Ticks => {
            let mut after = None;
            loop {
                let page = store.read(|c| read::scan_ticks(c, &spec.symbols, spec.from, spec.to, after, PAGE))?;
                let Some(last) = page.last() else { break };
                after = Some((last.recv, last.id));
                rows += page.len() as u64;
                let bytes = enc.page(page.iter().map(|t| TickRow {
                    symbol: &t.symbol,
                    provider: &t.provider,
                    ts: t.ts,
                    recv: t.recv,
                    price: t.price,
                    bid: t.bid,
                    ask: t.ask,
                    volume: t.volume,
                }));
                if !sink(bytes) || page.len() < PAGE {
                    break;
                }
            }
        }
        Kind::Events => {
            let mut after = None;
            loop {
                let page = store.read(|c| read::scan_events(c, &spec.symbols, spec.from, spec.to, after, PAGE))?;
                let Some(last) = page.last() else { break };
                after = Some((last.recv, last.id));
                rows += page.len() as u64;
                let bytes = match spec.format {
                    Format::Csv => enc.page(page.iter().map(|e| EventCsvRow {
                        channel: &e.channel,
                        ts: e.ts,
                        recv: e.recv,
                        payload: &e.payload,
                    })),
                    Format::Ndjson => {
                        // Recorded payloads are JSON written by the relay; one that is not is left out, not corrupted.
                        let raw: Vec<(&StoredEvent, Box<serde_json::value::RawValue>)> = page
                            .iter()
                            .filter_map(|e| {
                                Some((e, serde_json::value::RawValue::from_string(e.payload.clone()).ok()?))
                            })
                            .collect();
                        enc.page(raw.iter().map(|(e, payload)| EventRow {
                            channel: &e.channel,
                            ts: e.ts,
                            recv: e.recv,
                            payload,
                        }))
                    }
                };
                if !sink(bytes) || page.len() < PAGE {
                    break;
                }
            }
        }
        Kind::Candles { tf_ms } => {
            for symbol in &spec.symbols {
                let candles = store.read(|c| read::candles(c, symbol, tf_ms, spec.from, spec.to, usize::MAX))?;
                for chunk in candles.chunks(PAGE) {
                    rows += chunk.len() as u64;
                    let bytes = enc.page(chunk.iter().map(|c| CandleRow {
                        symbol,
                        start: c.start,
                        open: c.open,
                        high: c.high,
                        low: c.low,
                        close: c.close,
                        volume: c.volume,
                        ticks: c.ticks,
                    }));
                    if !sink(bytes) {
                        return Ok(rows);
                    }
                }
            }
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_validated_with_reasons() {
        let spec =
            ExportSpec::parse(Some("candles"), Some("ndjson"), Some("15m"), vec!["AAPL".into()], Some(1), Some(2))
                .unwrap();
        assert_eq!((spec.kind, spec.format), (Kind::Candles { tf_ms: 900_000 }, Format::Ndjson));
        assert!(ExportSpec::parse(Some("bars"), None, None, vec!["A".into()], None, None)
            .unwrap_err()
            .contains("kind"));
        assert!(ExportSpec::parse(None, Some("xml"), None, vec!["A".into()], None, None)
            .unwrap_err()
            .contains("format"));
        assert!(ExportSpec::parse(None, None, None, vec![], None, None).unwrap_err().contains("symbols"));
        assert!(ExportSpec::parse(None, None, None, vec!["A".into()], Some(5), Some(5)).is_err());
        assert_eq!(timeframe_ms("1h"), Ok(3_600_000));
        assert_eq!(timeframe_ms("1D"), Ok(86_400_000));
        assert!(timeframe_ms("0m").is_err() && timeframe_ms("5x").is_err() && timeframe_ms("m").is_err());
    }

    #[test]
    fn csv_has_one_header_and_quotes_payloads_ndjson_embeds_them() {
        let mut enc = Encoder { format: Format::Csv, header_written: false };
        let json = r#"{"a":"x,y"}"#;
        let first = enc.page(std::iter::once(EventCsvRow { channel: "NEWS", ts: 1, recv: 2, payload: json }));
        let second = enc.page(std::iter::once(EventCsvRow { channel: "NEWS", ts: 3, recv: 4, payload: json }));
        assert_eq!(
            String::from_utf8(first).unwrap(),
            "channel,ts,recv,payload\nNEWS,1,2,\"{\"\"a\"\":\"\"x,y\"\"}\"\n"
        );
        assert_eq!(String::from_utf8(second).unwrap(), "NEWS,3,4,\"{\"\"a\"\":\"\"x,y\"\"}\"\n");
        let mut enc = Encoder { format: Format::Ndjson, header_written: false };
        let payload = serde_json::value::RawValue::from_string(json.into()).unwrap();
        let line = enc.page(std::iter::once(EventRow { channel: "NEWS", ts: 1, recv: 2, payload: &payload }));
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "{\"channel\":\"NEWS\",\"ts\":1,\"recv\":2,\"payload\":{\"a\":\"x,y\"}}\n"
        );
    }
}
