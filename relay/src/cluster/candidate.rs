//! One provider on one node: this node's interest in it, and its candidacy for the provider's lease.
//!
//! Every node runs one candidate per provider. It keeps the node's wanted instruments in the provider's
//! interest set (changed at once on every local change, rewritten whole on a heartbeat so a restarted Redis
//! learns them again), and tries for the lease every renewal period. The node that holds the lease runs the
//! provider — the one upstream connection of the whole cluster — subscribed to the union of every live node's
//! interest; an instrument nobody wants any more stays subscribed for the linger before it is dropped, so
//! interest flapping between nodes costs no upstream churn. When the lease gate closes the owner fences
//! itself: it stops publishing and connecting at once and closes the upstream connection.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::bus::{self, OwnerTee, Publisher};
use super::keys;
use super::lease::{self, Answer, Gate};
use super::{Cluster, Signal};
use crate::providers::{EventSink, Provider, ProviderCommand};

/// The owner's term: the provider it runs and what it has subscribed upstream.
struct Term {
    token: Arc<AtomicU64>,
    gate: Arc<Gate>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    commands: mpsc::UnboundedSender<ProviderCommand>,
    /// Instruments subscribed upstream, with when the cluster stopped wanting them (for the linger).
    upstream: HashMap<String, Option<Instant>>,
}

/// The candidate's loop. `first` is the provider built at startup; later terms build a fresh one.
pub(crate) async fn run(
    cluster: Arc<Cluster>,
    first: Box<dyn Provider>,
    mut commands: mpsc::UnboundedReceiver<ProviderCommand>,
    mut signals: mpsc::UnboundedReceiver<Signal>,
    sink: EventSink,
    stop: CancellationToken,
) {
    let provider = first.name();
    let mut spare = Some(first);
    let timing = cluster.timing.clone();
    let mut local: BTreeSet<String> = BTreeSet::new();
    let mut term: Option<Term> = None;
    // The owner token whose silence this node already reported to its clients.
    let mut reported_silent: Option<u64> = None;
    let mut next_try = Instant::now();
    let mut heartbeat = tokio::time::interval(timing.heartbeat);
    let mut union_tick = tokio::time::interval(timing.union_every);
    loop {
        let fence_at = term.as_ref().and_then(|t| t.gate.deadline());
        tokio::select! {
            _ = stop.cancelled() => {
                if let Some(t) = term.take() {
                    let token = t.token.load(Ordering::Acquire);
                    fence(provider, t).await;
                    cluster.hand_over(provider, token).await;
                }
                cluster.forget_interest(provider).await;
                return;
            }
            command = commands.recv() => {
                let Some(command) = command else { return };
                let added = apply_local(&mut local, command);
                cluster.write_interest(provider, &local);
                if !added.is_empty() {
                    // A snapshot for the new subscribers, off the loop: a slow Redis must not delay a renewal.
                    let c = cluster.clone();
                    tokio::spawn(async move { c.catch_up(provider, Some(added)).await });
                }
                if let Some(t) = term.as_mut() {
                    cluster.follow_union(provider, t, &local).await;
                }
            }
            signal = signals.recv() => match signal {
                Some(Signal::Interest) => if let Some(t) = term.as_mut() {
                    cluster.follow_union(provider, t, &local).await;
                },
                Some(Signal::Released) => next_try = Instant::now(),
                None => return,
            },
            _ = sleep_until_opt(fence_at), if fence_at.is_some() => {
                if let Some(t) = term.take() {
                    tracing::warn!(provider, node = %cluster.node, "lease not renewed in time: fencing (closing the upstream connection)");
                    fence(provider, t).await;
                    cluster.set_owner_view(provider, None, false);
                }
            }
            _ = tokio::time::sleep_until(next_try) => {
                next_try = Instant::now() + jitter(timing.renew);
                let sent = std::time::Instant::now();
                match cluster.try_lease(provider).await {
                    Some(Answer::Held { token, fresh }) => {
                        match term.as_mut() {
                            Some(t) => {
                                t.gate.extend(sent, timing.lease, timing.margin);
                                if fresh || t.token.load(Ordering::Acquire) != token {
                                    // Redis lost the lease (a restart) and we took it straight back.
                                    tracing::info!(provider, token, "lease re-acquired after Redis lost it");
                                    t.token.store(token, Ordering::Release);
                                }
                            }
                            None => {
                                let built = spare.take().or_else(|| cluster.rebuild(provider));
                                if let Some(p) = built {
                                    let gate = Arc::new(Gate::new());
                                    gate.extend(sent, timing.lease, timing.margin);
                                    let mut t = cluster.start_term(p, token, gate, &sink, &stop);
                                    cluster.follow_union(provider, &mut t, &local).await;
                                    term = Some(t);
                                }
                            }
                        }
                        cluster.set_owner_view(provider, Some((cluster.node.clone(), token)), true);
                    }
                    Some(Answer::Other { node, token, ttl_ms }) => {
                        if let Some(t) = term.take() {
                            tracing::warn!(provider, owner = %node, "another node holds the lease: fencing");
                            fence(provider, t).await;
                        }
                        // Two renewals missed: the owner is probably gone. Say so while the lease runs out, so a
                        // client's badge does not show `live` through a failover with no data.
                        let silent = ttl_ms >= 0 && (ttl_ms as u128) < timing.lease.saturating_sub(timing.renew * 5 / 2).as_millis();
                        if silent && reported_silent != Some(token) {
                            reported_silent = Some(token);
                            let detail = format!("cluster: owner {node} stopped renewing its lease; another node takes over");
                            sink.status(hamster_shared::ProviderState::Reconnecting, Some(detail)).await;
                        } else if !silent && reported_silent == Some(token) {
                            // A slow owner after all: back to the state it last published.
                            reported_silent = None;
                            cluster.adopt_status(provider).await;
                        }
                        cluster.set_owner_view(provider, Some((node, token)), false);
                        cluster.set_lease_left(provider, ttl_ms);
                        // A lease about to expire is retried right after it does, not a whole period later.
                        if ttl_ms >= 0 {
                            let at = Instant::now() + Duration::from_millis(ttl_ms as u64 + 50);
                            next_try = next_try.min(at);
                        }
                    }
                    None => {}
                }
            }
            _ = heartbeat.tick() => {
                cluster.write_interest(provider, &local);
                cluster.refresh_interest_view(provider, &local).await;
            }
            _ = union_tick.tick(), if term.is_some() => {
                if let Some(t) = term.as_mut() {
                    cluster.follow_union(provider, t, &local).await;
                }
            }
        }
    }
}

/// Applies a local change; returns the instruments newly wanted here.
fn apply_local(local: &mut BTreeSet<String>, command: ProviderCommand) -> Vec<String> {
    match command {
        ProviderCommand::Subscribe(list) => list.into_iter().filter(|i| local.insert(i.clone())).collect(),
        ProviderCommand::Unsubscribe(list) => {
            for i in list {
                local.remove(&i);
            }
            Vec::new()
        }
    }
}

/// Ends a term: the gate closes (no more publishing or connecting), the provider is stopped and its connection
/// closed (waited for, within a bound).
async fn fence(provider: &'static str, term: Term) {
    term.gate.close();
    term.stop.cancel();
    let ended = timeout(Duration::from_secs(2), term.task).await.is_ok();
    if !ended {
        tracing::warn!(provider, "provider did not stop within 2 s of being fenced");
    }
}

/// A renewal period with ±20 % jitter, so nodes started together do not renew in lockstep.
fn jitter(period: Duration) -> Duration {
    period.mul_f64(rand::random_range(0.8..1.2))
}

async fn sleep_until_opt(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

impl Cluster {
    /// Starts a term: the provider runs with a sink that also publishes, as long as `gate` is open.
    fn start_term(
        self: &Arc<Self>,
        provider: Box<dyn Provider>,
        token: u64,
        gate: Arc<Gate>,
        sink: &EventSink,
        stop: &CancellationToken,
    ) -> Term {
        let name = provider.name();
        tracing::info!(provider = name, node = %self.node, token, "this node now owns the provider's upstream connection");
        let token = Arc::new(AtomicU64::new(token));
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let publisher = Publisher {
            provider: name,
            node: self.node.clone(),
            token: token.clone(),
            gate: gate.clone(),
            redis: self.data.clone(),
            published: self.published.clone(),
            recording: self.recording.clone(),
        };
        tokio::spawn(bus::publish(publisher, queue_rx));
        let tee = Arc::new(OwnerTee { gate: gate.clone(), queue: queue_tx });
        let (commands, rx) = mpsc::unbounded_channel();
        let stop = stop.child_token();
        let task = tokio::spawn(provider.run(rx, sink.with_tee(tee), stop.clone()));
        Term { token, gate, stop, task, commands, upstream: HashMap::new() }
    }

    /// Subscribes the owner's provider to the cluster's union of interest, and drops what has lingered unwanted.
    async fn follow_union(&self, provider: &'static str, term: &mut Term, local: &BTreeSet<String>) {
        let Some(mut union) = self.interest_union(provider).await else { return };
        union.extend(local.iter().cloned());
        let now = Instant::now();
        let mut subscribe = Vec::new();
        for instrument in &union {
            match term.upstream.get_mut(instrument) {
                Some(since) => *since = None,
                None => {
                    term.upstream.insert(instrument.clone(), None);
                    subscribe.push(instrument.clone());
                }
            }
        }
        let mut unsubscribe = Vec::new();
        term.upstream.retain(|instrument, since| {
            if union.contains(instrument) {
                return true;
            }
            let at = *since.get_or_insert(now);
            if now.duration_since(at) >= self.timing.linger {
                unsubscribe.push(instrument.clone());
                false
            } else {
                true
            }
        });
        if !unsubscribe.is_empty() {
            tracing::debug!(provider, ?unsubscribe, "cluster upstream unsubscribe after the linger");
            let _ = term.commands.send(ProviderCommand::Unsubscribe(unsubscribe));
        }
        if !subscribe.is_empty() {
            tracing::debug!(provider, ?subscribe, "cluster upstream subscribe");
            let _ = term.commands.send(ProviderCommand::Subscribe(subscribe));
        }
        self.set_interest_view(provider, union.len(), term.upstream.len());
    }

    /// The union of every live node's wanted instruments, or `None` when Redis cannot say.
    pub(super) async fn interest_union(&self, provider: &str) -> Option<BTreeSet<String>> {
        let mut redis = self.data.clone();
        let nodes = self.live_nodes().await?;
        let sets: Vec<String> = nodes.iter().map(|n| keys::want(provider, n)).collect();
        if sets.is_empty() {
            return Some(BTreeSet::new());
        }
        timeout(self.timing.op_timeout, redis.sunion::<_, BTreeSet<String>>(sets)).await.ok()?.ok()
    }

    /// Tries to acquire or renew the lease; `None` when Redis did not answer in time.
    async fn try_lease(&self, provider: &str) -> Option<Answer> {
        let mut redis = self.lease.clone();
        let script = lease::acquire_script();
        let mut call = script.prepare_invoke();
        call.key(keys::lease(provider))
            .key(keys::fence(provider))
            .arg(&self.node)
            .arg(self.timing.lease.as_millis() as u64);
        let reply = timeout(self.timing.op_timeout, call.invoke_async::<(i64, String, i64)>(&mut redis)).await;
        match reply {
            Ok(Ok(reply)) => {
                self.redis_ok(true);
                Answer::parse(reply)
            }
            Ok(Err(e)) => {
                self.redis_ok(false);
                tracing::debug!(provider, error = %e, "lease attempt failed");
                None
            }
            Err(_) => {
                self.redis_ok(false);
                None
            }
        }
    }

    /// A graceful hand-over: delete our lease (only if still ours) and tell the others to try at once.
    async fn hand_over(&self, provider: &'static str, token: u64) {
        let mut redis = self.lease.clone();
        let script = lease::release_script();
        let mut call = script.prepare_invoke();
        call.key(keys::lease(provider)).arg(format!("{}|{token}", self.node));
        let released = timeout(self.timing.op_timeout, call.invoke_async::<i64>(&mut redis)).await;
        if matches!(released, Ok(Ok(1))) {
            let _ =
                timeout(self.timing.op_timeout, redis.publish::<_, _, ()>(keys::control(provider), "released")).await;
            tracing::info!(provider, node = %self.node, "lease released for a hand-over");
        }
    }

    /// Rewrites this node's interest set (delete, add, expire in one transaction) and tells the owner.
    fn write_interest(&self, provider: &'static str, local: &BTreeSet<String>) {
        let mut redis = self.data.clone();
        let key = keys::want(provider, &self.node);
        let members: Vec<String> = local.iter().cloned().collect();
        let ttl = self.timing.interest_ttl.as_millis() as i64;
        let op_timeout = self.timing.op_timeout;
        tokio::spawn(async move {
            let mut pipe = redis::pipe();
            pipe.atomic().del(&key).ignore();
            if !members.is_empty() {
                pipe.sadd(&key, &members).ignore().pexpire(&key, ttl).ignore();
            }
            pipe.publish(keys::control(provider), "interest").ignore();
            let _ = timeout(op_timeout, pipe.query_async::<()>(&mut redis)).await;
        });
    }

    /// Removes this node's interest on shutdown, so the owner need not wait for it to expire.
    async fn forget_interest(&self, provider: &'static str) {
        let mut redis = self.data.clone();
        let mut pipe = redis::pipe();
        pipe.del(keys::want(provider, &self.node)).ignore().publish(keys::control(provider), "interest").ignore();
        let _ = timeout(self.timing.op_timeout, pipe.query_async::<()>(&mut redis)).await;
    }

    async fn refresh_interest_view(&self, provider: &'static str, local: &BTreeSet<String>) {
        if let Some(mut union) = self.interest_union(provider).await {
            union.extend(local.iter().cloned());
            let upstream = self.views.lock().get(provider).map(|v| v.upstream).unwrap_or(0);
            self.set_interest_view(provider, union.len(), upstream);
        }
    }
}
