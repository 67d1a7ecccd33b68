//! What the binary does besides serving: `hamster-relay export` writes recorded data to stdout for scripts, and
//! `hamster-relay record-sample` records a short session from the configured providers (the simulator unless
//! told otherwise) into the data directory — the reproducible sample that the replay tests and README use.

use std::io::Write;
use std::time::Duration;

use hamster_shared::symbol::split_list;
use hamster_shared::Symbol;

use crate::config::Config;
use crate::export::{self, ExportSpec};
use crate::store::Store;

/// A subcommand; without one the relay serves.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Write recorded ticks, candles or events as CSV or NDJSON to stdout (columns: docs/store.md).
    Export(ExportArgs),
    /// Record a short session from the configured providers into the data directory, then exit.
    RecordSample(RecordArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Recorded symbols or channels, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    symbols: Vec<String>,
    /// Start of the range (receive time, or candle start), ms since the epoch.
    #[arg(long)]
    from: Option<i64>,
    /// End of the range (exclusive), ms since the epoch.
    #[arg(long)]
    to: Option<i64>,
    /// `ticks`, `candles` or `events`.
    #[arg(long, default_value = "ticks")]
    kind: String,
    /// `csv` or `ndjson`.
    #[arg(long, default_value = "csv")]
    format: String,
    /// Candle timeframe: `1m`, `5m`, `15m`, `1h`, `1d` …
    #[arg(long, default_value = "1m")]
    tf: String,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// How long to record at most.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Stop as soon as this many ticks and events are recorded (a fixed-size sample on any machine).
    #[arg(long)]
    until_recorded: Option<u64>,
    /// Symbols and channels to record, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "BTC/USD,ETH/USD,AAPL,MSFT,NVDA,SPY,EUR/USD,FLOW-ALERTS,NEWS")]
    symbols: Vec<String>,
}

/// Runs `command`.
pub async fn run(config: Config, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Export(args) => export_to_stdout(&config, args),
        Command::RecordSample(args) => record_sample(config, args).await,
    }
}

fn export_to_stdout(config: &Config, args: ExportArgs) -> anyhow::Result<()> {
    let mut symbols = Vec::new();
    for text in args.symbols.iter().flat_map(|s| split_list(s)) {
        symbols.push(Symbol::parse(text).map_err(|e| anyhow::anyhow!("{text:?}: {e}"))?.as_str().to_owned());
    }
    let spec = ExportSpec::parse(Some(&args.kind), Some(&args.format), Some(&args.tf), symbols, args.from, args.to)
        .map_err(anyhow::Error::msg)?;
    let path = config.store.config().path;
    if !path.is_file() {
        anyhow::bail!("no recording at {} (set --data-dir)", path.display());
    }
    let store = Store::open(config.store.config())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = None;
    let rows = export::export(&store, &spec, |page| match out.write_all(&page) {
        Ok(()) => true,
        Err(e) => {
            failed = Some(e);
            false
        }
    })?;
    out.flush()?;
    match failed {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => {
            tracing::info!(rows, "exported");
            Ok(())
        }
    }
}

async fn record_sample(mut config: Config, args: RecordArgs) -> anyhow::Result<()> {
    config.store.recording_first = true;
    if config.store.no_record {
        anyhow::bail!("record-sample records: drop --no-record");
    }
    let mut symbols = Vec::new();
    for text in args.symbols.iter().flat_map(|s| split_list(s)) {
        symbols.push(Symbol::parse(text).map_err(|e| anyhow::anyhow!("{text:?}: {e}"))?);
    }
    let app = crate::app::build(config)?;
    let store = app.store.clone().ok_or_else(|| anyhow::anyhow!("the store could not be opened"))?;
    let until = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
    // A REST lease keeps the symbols subscribed with no client attached; renewed well within its lifetime.
    let mut renew = tokio::time::Instant::now();
    while tokio::time::Instant::now() < until {
        if tokio::time::Instant::now() >= renew {
            app.hub.lease(&symbols).map_err(|e| anyhow::anyhow!("{e}"))?;
            renew += Duration::from_secs(10);
        }
        if args.until_recorded.is_some_and(|n| store.status().recorded >= n) {
            break;
        }
        tokio::time::sleep_until(until.min(tokio::time::Instant::now() + Duration::from_millis(100))).await;
    }
    app.shutdown.cancel();
    let status = tokio::task::spawn_blocking(move || {
        store.close();
        store.status()
    })
    .await?;
    println!(
        "recorded {} ticks and events of {} into {} ({} dropped)",
        status.recorded,
        symbols.iter().map(Symbol::as_str).collect::<Vec<_>>().join(","),
        status.path.display(),
        status.dropped
    );
    Ok(())
}
