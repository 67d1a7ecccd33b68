//! The store's flags: where the database lives, whether to record, and how much to keep. Durations read like
//! `7d`, `36h`, `90m` or `600s`; sizes like `2G`, `500M` or a byte count.

use std::path::PathBuf;
use std::time::Duration;

use super::StoreConfig;

/// Recording and storage settings.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// Directory of the embedded store (SQLite, created if missing).
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub(crate) data_dir: PathBuf,

    /// Do not record ticks and events (history then lives in memory only).
    #[arg(long, env = "NO_RECORD")]
    pub(crate) no_record: bool,

    /// How long recorded ticks and events are kept (`7d`, `36h`, `90m`).
    #[arg(long, env = "RETAIN_TICKS", default_value = "7d", value_parser = parse_duration)]
    pub(crate) retain_ticks: Duration,

    /// How long one-minute candles are kept; daily candles are kept for good.
    #[arg(long, env = "RETAIN_CANDLES", default_value = "90d", value_parser = parse_duration)]
    pub(crate) retain_candles: Duration,

    /// Largest the database may grow (`2G`, `500M`, bytes); the oldest ticks and events go first. 0 = no cap.
    #[arg(long, env = "MAX_DB_BYTES", default_value = "2G", value_parser = parse_bytes)]
    pub(crate) max_db_bytes: u64,

    /// Caps the database at this many 4 KiB pages, so a test can make a small disk fill up.
    #[arg(long, env = "STORE_MAX_PAGES", hide = true)]
    pub(crate) store_max_pages: Option<u64>,

    /// Recording is the point of this run (`record-sample`): the writer keeps its normal priority instead of
    /// yielding to delivery. Not a flag.
    #[arg(skip)]
    pub(crate) recording_first: bool,
}

/// The database file inside the data directory.
pub(crate) const DB_FILE: &str = "hamster.db";

impl StoreArgs {
    pub(crate) fn config(&self) -> StoreConfig {
        StoreConfig {
            path: self.data_dir.join(DB_FILE),
            retain_ticks: self.retain_ticks,
            retain_candles: self.retain_candles,
            max_db_bytes: (self.max_db_bytes > 0).then_some(self.max_db_bytes),
            queue: 262_144,
            retention_every: Duration::from_secs(10),
            max_pages: self.store_max_pages,
            yield_to_delivery: !self.recording_first,
        }
    }
}

/// `7d`, `36h`, `90m`, `600s`, or plain seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 7d, 36h, 90m or 600s"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}; use s, m, h, d or w")),
    };
    n.checked_mul(secs).map(Duration::from_secs).ok_or_else(|| format!("{text:?} is too long"))
}

/// `2G`, `500M`, `64K` (powers of 1024), or plain bytes.
pub(crate) fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a size like 2G, 500M or 1048576"))?;
    let factor: u64 = match unit.trim_end_matches(['B', 'b', 'i']) {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        "T" | "t" => 1 << 40,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}; use K, M, G or T")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse_and_bad_ones_say_why() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("600"), Ok(Duration::from_secs(600)));
        assert!(parse_duration("7 days").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("d").is_err() && parse_duration("99999999999999999999d").is_err());
        assert_eq!(parse_bytes("2G"), Ok(2 << 30));
        assert_eq!(parse_bytes("500MiB"), Ok(500 << 20));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("2X").is_err() && parse_bytes("").is_err());
    }
}
