//! The `hamster-relay` binary: parse configuration, set up logging, serve.

use clap::Parser;
use hamster_relay::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = Config::parse();
    // One process-wide TLS crypto backend for upstream wss:// and https:// connections.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    // These crates trace request URLs verbatim, and provider keys travel in query strings (`?apikey=`,
    // `?token=`): whatever RUST_LOG asks for, they never log below info.
    for directive in ["tungstenite=info", "tokio_tungstenite=info", "reqwest=info", "hyper_util=info", "hyper=info"] {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Human => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    match hamster_relay::app::serve(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("hamster-relay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
