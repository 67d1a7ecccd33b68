//! Stand-in for a provider that was selected but lacks its key: it reports `down` with the reason and refuses
//! every symbol routed to it, so clients get a clear rejection instead of silence, and the relay keeps running.

use futures::future::BoxFuture;
use futures::FutureExt;
use hamster_shared::{ErrorCode, ProviderState};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{EventSink, Provider, ProviderCommand};

/// A provider that is named in the configuration but cannot run.
#[derive(Debug)]
pub(crate) struct NotConfigured {
    pub(crate) name: &'static str,
    pub(crate) reason: String,
}

impl Provider for NotConfigured {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(
        self: Box<Self>,
        mut commands: mpsc::UnboundedReceiver<ProviderCommand>,
        events: EventSink,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            tracing::warn!(provider = self.name, reason = %self.reason, "provider not configured");
            events.status(ProviderState::Down, Some(format!("not configured: {}", self.reason))).await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    command = commands.recv() => match command {
                        Some(ProviderCommand::Subscribe(instruments)) => {
                            for instrument in instruments {
                                let message = format!("{} is not configured on this relay: {}", self.name, self.reason);
                                events.reject(&instrument, ErrorCode::ProviderRejected, message).await;
                            }
                        }
                        Some(ProviderCommand::Unsubscribe(_)) => {}
                        None => return,
                    }
                }
            }
        }
        .boxed()
    }
}
