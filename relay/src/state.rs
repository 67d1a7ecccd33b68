//! [`AppState`]: what every request handler may reach (configuration, hub, upstream router, metrics, edge
//! policy, shutdown). It lives apart from the wiring in [`crate::app`] so the transports can name it without
//! depending on the module that builds and serves them.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::guard::site::Site;
use crate::guard::Guard;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::replay::Replays;
use crate::store::Store;
use crate::upstream::Upstream;

/// Everything a request handler may need. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) config: Arc<Config>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) upstream: Arc<Upstream>,
    pub(crate) metrics: Arc<Metrics>,
    /// Fires when the relay starts shutting down.
    pub(crate) shutdown: CancellationToken,
    /// Long-lived connection tasks, awaited on shutdown.
    pub(crate) tracker: TaskTracker,
    /// Origin, auth and limits for every client.
    pub(crate) guard: Arc<Guard>,
    /// The embedded store, when it could be opened.
    pub(crate) store: Option<Arc<Store>>,
    /// Replays of recorded data, one per connection at most (only with a store).
    pub(crate) replays: Option<Arc<Replays>>,
    /// Where orders go (the paper broker by default).
    pub(crate) broker: Arc<dyn Broker>,
    /// The host names and origins trading is accepted from.
    pub(crate) site: Arc<Site>,
    /// Cluster mode, when `REDIS_URL` is set.
    pub(crate) cluster: Option<Arc<Cluster>>,
}
