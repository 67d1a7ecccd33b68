//! Alpaca adapter — under construction: until it is finished this module only reports itself down.

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connection::Timing;
use super::secret::Secret;
use super::unconfigured::NotConfigured;
use super::{EventSink, Provider, ProviderCommand};

pub const NAME: &str = "alpaca";

/// Alpaca settings (keys come from the environment, never flags).
#[derive(Debug, Clone, clap::Args)]
pub struct AlpacaArgs {
    /// Alpaca streaming endpoint.
    #[arg(id = "alpaca_ws_url", long = "alpaca-ws-url", env = "ALPACA_WS_URL", default_value = "wss://stream.data.alpaca.markets/v2/iex")]
    pub ws_url: String,
}

/// Builds the provider from its settings and keys (as read from the environment by the caller).
pub fn build(_args: &AlpacaArgs, _keys: Vec<Secret>, _timing: Timing) -> Box<dyn Provider> {
    Box::new(Placeholder)
}

struct Placeholder;

impl Provider for Placeholder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(
        self: Box<Self>,
        commands: mpsc::UnboundedReceiver<ProviderCommand>,
        events: EventSink,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        Box::new(NotConfigured { name: NAME, reason: "adapter under construction".into() }).run(commands, events, stop).boxed()
    }
}
