//! Wiring: builds the hub, the upstream router and the HTTP router from a [`Config`], serves until a signal,
//! then shuts down in order (stop accepting, close clients with 1001, stop providers, exit within the grace).
//!
//! The routes themselves belong to the transports (each has a `routes()`); this module only decides which of
//! them sit behind client auth, where CORS applies, and what answers everything else (the dashboard's files).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue};
use axum::response::Html;
use axum::Router;
use hamster_shared::{ProviderState, Symbol};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::broker::alpaca::{Alpaca, AlpacaMarks};
use crate::broker::paper::{Paper, PaperTap};
use crate::broker::{Broker, BrokerKind};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::guard::site::Site;
use crate::guard::{self, Guard};
use crate::hub::{Hub, HubEvent};
use crate::ingest::{self, OffThread, Tap};
use crate::metrics::Metrics;
use crate::replay::Replays;
use crate::server::{self, ServeOptions};
use crate::shutdown;
use crate::state::AppState;
use crate::store::{Journal, Store};
use crate::transport::{orders, recordings, rest, sse, symbols, ws};
use crate::upstream::{Routes, Upstream};

/// Starts the hub, providers and background tasks.
pub(crate) fn build(config: Config) -> anyhow::Result<AppState> {
    let config = Arc::new(config);
    let metrics = Metrics::new();
    let guard = Arc::new(Guard::new(config.guard(), metrics.clone())?);
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    // Bounded: if the hub ever falls behind, providers feel back-pressure instead of the relay growing memory.
    let (events_tx, events_rx) = mpsc::channel(16_384);
    let (demand_tx, demand_rx) = mpsc::unbounded_channel();
    let hub = Hub::new(config.hub(), demand_tx, metrics.clone());
    let routes = Routes::parse(&config.routes)?;
    let cluster = Cluster::new(&config.cluster, rebuild(&config))?;
    let upstream = Upstream::start(
        config.provider_args.build(&config.providers, &config.upstream_timing()),
        routes,
        events_tx,
        metrics.clone(),
        cluster.as_ref(),
        &shutdown,
        &tracker,
    )?;
    if let Some(cluster) = &cluster {
        tracing::info!(node = cluster.node(), "cluster mode: one upstream connection per provider for all nodes");
        tracker.spawn(cluster.clone().run(shutdown.clone()));
    }
    // Every provider is known to the hub before the first client can connect, so `hello` lists them all (the
    // providers' own status events, already queued, land after this and win).
    let announced = upstream.names().into_iter().map(|name| HubEvent::Status {
        provider: name.to_owned(),
        state: ProviderState::Connecting,
        detail: None,
        since: crate::clock::now_ms(),
    });
    hub.ingest(announced.collect());
    let store = open_store(&config);
    let mut taps: Vec<Box<dyn Tap>> = Vec::new();
    match (store.as_ref().and_then(|s| s.recorder()), &cluster) {
        (Some(recorder), None) if !config.store.no_record => taps.push(Box::new(recorder)),
        // A cluster records each tick once, on the node that owns its provider, not on every node that relays it.
        (Some(recorder), Some(cluster)) if !config.store.no_record => {
            let up = upstream.clone();
            cluster.record_on_owner(
                Box::new(recorder),
                Arc::new(move |provider, instrument| up.symbol_for(provider, instrument)),
            );
        }
        _ => {}
    }
    let broker: Arc<dyn Broker> = match config.broker.broker {
        BrokerKind::Paper => {
            let paper = open_paper(&config)?;
            taps.push(Box::new(OffThread::spawn("paper-broker", PaperTap(paper.clone()))?));
            paper
        }
        BrokerKind::Alpaca => {
            let alpaca = Alpaca::start(&config.broker.alpaca, shutdown.clone())?;
            taps.push(Box::new(OffThread::spawn("alpaca-marks", AlpacaMarks(alpaca.clone()))?));
            alpaca
        }
    };
    tokio::spawn(ingest::run(hub.clone(), events_rx, taps));
    tokio::spawn(broker_leases(hub.clone(), broker.clone(), shutdown.clone()));
    tokio::spawn(upstream.clone().run(demand_rx));
    tokio::spawn(metrics.clone().run_sampler(shutdown.clone()));
    tokio::spawn(sweeper(hub.clone(), shutdown.clone()));
    let replays = store.as_ref().map(|store| Replays::new(store.clone(), hub.clone(), config.max_replays));
    let site = Arc::new(Site::new(&config.public_hosts, &config.allowed_origins));
    Ok(AppState { config, hub, upstream, metrics, shutdown, tracker, guard, store, replays, broker, site, cluster })
}

/// Builds a fresh instance of a configured provider, for each new term of ownership in a cluster.
fn rebuild(config: &Arc<Config>) -> crate::cluster::Rebuild {
    let config = config.clone();
    Arc::new(move |name: &str| {
        let adapter = config.providers.iter().find(|a| a.name == name)?;
        config.provider_args.build(&[*adapter], &config.upstream_timing()).pop()
    })
}

/// Opens the paper broker on the store's database. Without a usable database it trades in memory only, and says
/// so: orders and positions would not survive a restart.
fn open_paper(config: &Config) -> anyhow::Result<Arc<Paper>> {
    let path = config.store.config().path;
    let journal = match Journal::open(&path) {
        Ok(journal) => Some(journal),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "paper broker runs in memory: orders and positions will not survive a restart");
            None
        }
    };
    Ok(Paper::open(config.broker.paper(), journal)?)
}

/// Keeps the symbols of working orders and open positions demanded upstream, so their stops see every tick even
/// with no client watching them.
async fn broker_leases(hub: Arc<Hub>, broker: Arc<dyn Broker>, stop: CancellationToken) {
    let every = Duration::from_secs(crate::hub::LEASE_TTL_SECS / 3).max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {
                let symbols: Vec<Symbol> = broker.watched().iter().filter_map(|s| Symbol::parse(s).ok()).collect();
                if let Err(e) = hub.lease(&symbols) {
                    tracing::warn!(error = %e, "cannot keep the broker's symbols subscribed");
                }
            }
        }
    }
}

/// Opens the embedded store. A store that cannot open (an unwritable directory, a database from a newer relay)
/// costs recording and stored history, not the relay: it runs on, says so at startup and in `/api/status`.
fn open_store(config: &Config) -> Option<Arc<Store>> {
    match Store::open(config.store.config()) {
        Ok(store) => {
            if config.store.no_record {
                tracing::info!(dir = %config.store.data_dir.display(), "store open; recording is off (--no-record)");
            } else {
                tracing::info!(dir = %config.store.data_dir.display(), "recording ticks and events");
            }
            Some(store)
        }
        Err(e) => {
            tracing::warn!(dir = %config.store.data_dir.display(), error = %e, "no embedded store: running without recording");
            None
        }
    }
}

/// Expires REST leases and trims idle caches once a second.
async fn sweeper(hub: Arc<Hub>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => hub.sweep(Instant::now()),
        }
    }
}

/// The HTTP router: streams and REST behind the edge policy, the dashboard's static files public.
pub(crate) fn router(app: AppState) -> Router {
    let guard = app.guard.clone();
    let mut protected = Router::new()
        .merge(ws::routes())
        .merge(sse::routes())
        .merge(recordings::routes())
        .merge(orders::routes())
        .merge(symbols::routes())
        .merge(rest::routes());
    let mut public = Router::new();
    for (endpoint, path, handler) in rest::probes() {
        if app.config.is_public(endpoint) {
            public = public.route(path, handler);
        } else {
            protected = protected.route(path, handler);
        }
    }
    let api = protected
        .route_layer(axum::middleware::from_fn_with_state(guard.clone(), guard::require_auth))
        .merge(public)
        .layer(axum::middleware::map_response(crate::error::json_errors))
        // The dashboard may be hosted on another origin and poll REST while its socket is down.
        .layer(guard.cors());
    let dir = &app.config.static_dir;
    let index = dir.join("index.html");
    let router = if index.is_file() {
        // A release build leaves zopfli-gzip and brotli copies of its immutable files next to them, smaller than
        // anything compressed per request; the rest (index.html, config.json, style sheets of a debug build) is
        // gzipped on the fly. Either way the answer depends on Accept-Encoding, which caches must be told.
        let files = ServeDir::new(dir).precompressed_gzip().precompressed_br().not_found_service(ServeFile::new(index));
        api.fallback_service(
            tower::ServiceBuilder::new()
                .layer(CompressionLayer::new())
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::VARY,
                    HeaderValue::from_static("accept-encoding"),
                ))
                .service(files),
        )
    } else {
        tracing::warn!(dir = %dir.display(), "no built dashboard found; serving a placeholder page at /");
        api.fallback(|| async { Html(PLACEHOLDER) })
    };
    // Spans name the path only: query strings may carry a client's `?token=`.
    let trace = TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
        tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
    });
    router.layer(trace).with_state(app)
}

const PLACEHOLDER: &str = r#"<!doctype html><meta charset="utf-8"><title>Hamster Terminal relay</title>
<body style="font-family:system-ui;background:#0b0f14;color:#d8dee9;padding:2rem">
<h1>Hamster Terminal relay</h1><p>The dashboard is not built. Run <code>./scripts/run.sh</code> from the repository,
or <code>trunk build --release</code> and restart the relay.</p>
<p>API: <a href="/api/quotes" style="color:#88c0d0">/api/quotes</a> ·
<a href="/api/status" style="color:#88c0d0">/api/status</a> · <code>/ws</code> · <code>/api/stream?symbols=AAPL</code></p>"#;

/// Runs the relay until SIGINT/SIGTERM.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let addr = SocketAddr::new(config.host, config.port);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let listener = TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr()?;
    let options = ServeOptions { handshake_timeout: config.handshake_timeout(), send_buffer: config.send_buffer_bytes };
    let app = build(config)?;
    let (shutdown, tracker, store) = (app.shutdown.clone(), app.tracker.clone(), app.store.clone());
    let guard = app.guard.clone();
    // Tests and scripts read the actual port from this line.
    println!("listening on http://127.0.0.1:{}", local.port());
    tracing::info!(%local, providers = ?app.upstream.names(), "relay listening");
    for warning in app.guard.warnings() {
        tracing::warn!("{warning}");
    }
    if !app.guard.auth_enabled() {
        match app.config.broker.broker {
            BrokerKind::Paper => tracing::warn!(
                "client auth is off: the local paper trading account is open to anyone who can reach the relay"
            ),
            BrokerKind::Alpaca if app.config.broker.alpaca.alpaca_owner == "local" => {
                tracing::warn!("client auth is off: the Alpaca account is open to anyone who can reach the relay")
            }
            BrokerKind::Alpaca => {}
        }
    } else if app.config.broker.broker == BrokerKind::Alpaca && app.config.broker.alpaca.alpaca_owner == "local" {
        tracing::warn!("client auth is on but --alpaca-owner is `local`: no identity can trade on the Alpaca account");
    }

    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown::signal().await;
            shutdown.cancel();
        }
    });
    let server = tokio::spawn(server::serve(listener, router(app), guard, options, shutdown.clone()));
    shutdown.cancelled().await;
    tracker.close();
    let drained = tokio::time::timeout(grace, async {
        tracker.wait().await;
        let _ = server.await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(?grace, "connections still open after the grace period; exiting anyway");
    }
    if let Some(store) = store {
        // Commits what the writer still holds (at most a quarter second of recording).
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }
    tracing::info!("relay stopped");
    Ok(())
}
