//! The `hamster-relay` binary: parse configuration, set up logging, serve.

use clap::Parser;
use hamster_relay::config::{Config, LogFormat};
use hamster_relay::secret::RedactingStderr;
use tracing::Level;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Crates that trace request lines, URLs and frames verbatim, while provider keys travel in query strings
/// (`?apikey=`, `?token=`) and auth frames. Nothing of theirs below info is ever logged, whatever `RUST_LOG`
/// asks for — including a directive naming one of their modules (`tungstenite::handshake=trace`), which would
/// override a crate-level directive.
const VERBATIM_CRATES: &[&str] = &["tungstenite", "tokio_tungstenite", "reqwest", "hyper_util", "hyper"];

fn is_verbatim(target: &str) -> bool {
    VERBATIM_CRATES.iter().any(|c| target.strip_prefix(c).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    // One process-wide TLS crypto backend for upstream wss:// and https:// connections.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    // A separate layer rather than EnvFilter directives, which a more specific RUST_LOG directive would override.
    let keep_keys_out = filter_fn(|meta| *meta.level() <= Level::INFO || !is_verbatim(meta.target()));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| RedactingStderr);
    match config.log_format {
        LogFormat::Human => logs.finish().with(keep_keys_out).init(),
        LogFormat::Json => logs.json().flatten_event(true).finish().with(keep_keys_out).init(),
    }
    // Every client is a socket: a default soft limit of 1024 open files would refuse clients long before the
    // relay runs out of anything else.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-files soft limit raised"),
        Err(e) => tracing::debug!(error = %e, "cannot raise the open-files limit"),
    }
    let run = match config.command.clone() {
        Some(command) => hamster_relay::cli::run(config, command).await,
        None => hamster_relay::app::serve(config).await,
    };
    match run {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("hamster-relay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_crates_are_matched_by_crate_not_by_prefix() {
        for target in ["tungstenite", "tungstenite::handshake::client", "hyper::proto::h1", "reqwest::connect"] {
            assert!(is_verbatim(target), "{target}");
        }
        for target in ["hamster_relay::providers::connection", "hyperloop", "tungstenite_extra::x", "log"] {
            assert!(!is_verbatim(target), "{target}");
        }
    }
}
