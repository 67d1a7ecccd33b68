//! Cluster mode (`--cluster N`): the bench's own `redis-server` and N relay nodes sharing it, all pointed at the
//! bench's generator.
//!
//! The relays elect one owner of the Twelve Data upstream through a lease in Redis; the owner alone connects to
//! the generator and publishes every report on Redis, and the other nodes deliver what they receive from it
//! (`docs/scaling.md`). The bench starts Redis on a free loopback port with persistence off, starts the nodes
//! (`bench-1` … `bench-N`), and waits until every node names the same owner and sees all N nodes, so the
//! measured clients can be told apart: those on the owner get their quotes straight from the upstream, the
//! others through Redis. Redis's CPU is read from `/proc` like the relays'; its own count of `PUBLISH` calls
//! (`INFO commandstats`, through `redis-cli`, which comes with the server) says how many messages that CPU paid
//! for.

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::process::{Child, Command};

use crate::target::{Kind, Launch, Target};

/// How long Redis may take to answer its first `PING`, and the nodes to agree on an owner.
const REDIS_START: Duration = Duration::from_secs(10);
const OWNER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after they agree on an owner every node may take to subscribe to the data channel.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(15);
/// The provider the bench's generator stands for.
const PROVIDER: &str = "twelvedata";

/// A `redis-server` of the bench's own. Killed if the bench goes away.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    child: Child,
}

impl Redis {
    /// Starts `redis-server` on a free loopback port with persistence off and waits until it answers.
    pub async fn start(pin: bool) -> anyhow::Result<Redis> {
        // Bind port 0 to learn a free port, then hand it to Redis (the window for a clash is tiny on loopback).
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .context("no free loopback port for redis-server")?;
        let mut command = Command::new("redis-server");
        crate::pin::server(&mut command, pin);
        let child = command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => anyhow::anyhow!(
                    "--cluster needs redis-server on the PATH, and redis-cli (Debian: `apt-get install \
                     redis-server`, which scripts/setup.sh does)"
                ),
                _ => anyhow::anyhow!("cannot start redis-server: {e}"),
            })?;
        let mut redis = Redis { port, child };
        let deadline = Instant::now() + REDIS_START;
        loop {
            if redis.cli(&["PING"]).await?.trim() == "PONG" {
                return Ok(redis);
            }
            if let Ok(Some(status)) = redis.child.try_wait() {
                bail!("redis-server on port {port} exited at start ({status})");
            }
            if Instant::now() >= deadline {
                bail!("redis-server on port {port} did not answer PING within {REDIS_START:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// One command through `redis-cli`; its output.
    async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    anyhow::anyhow!("--cluster needs redis-cli on the PATH (it comes with redis-server)")
                }
                _ => anyhow::anyhow!("cannot run redis-cli: {e}"),
            })?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `PUBLISH` calls Redis has served so far, and the µs it spent inside them (`INFO commandstats`).
    pub async fn publish_calls(&self) -> Option<(u64, u64)> {
        let info = self.cli(&["INFO", "commandstats"]).await.ok()?;
        parse_command_stats(&info, "publish")
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: signals our own child, which we have not reaped yet, so the pid is still ours.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }

    /// Subscribers of the provider's data channel (`PUBSUB NUMSUB`): one per node that receives the owner's
    /// quotes.
    async fn data_subscribers(&self) -> Option<usize> {
        let out = self.cli(&["PUBSUB", "NUMSUB", &data_channel()]).await.ok()?;
        out.lines().nth(1)?.trim().parse().ok()
    }
}

/// The provider's data channel, as the relay names it (`relay/src/cluster/keys.rs`).
fn data_channel() -> String {
    format!("hamster:{{{PROVIDER}}}:data")
}

/// `calls` and `usec` of `cmdstat_<command>:calls=…,usec=…,…` in an `INFO commandstats` answer.
fn parse_command_stats(info: &str, command: &str) -> Option<(u64, u64)> {
    let prefix = format!("cmdstat_{command}:");
    let line = info.lines().find_map(|l| l.trim().strip_prefix(prefix.as_str()))?;
    let field = |name: &str| {
        line.split(',').find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('='))?.parse::<u64>().ok())
    };
    Some((field("calls")?, field("usec")?))
}

/// A running cluster: Redis, its nodes, and which of them holds the upstream connection.
#[derive(Debug)]
pub struct Cluster {
    pub redis: Redis,
    /// Index into the nodes of the owner of the Twelve Data lease (its id is [`node_id`]`(owner)`).
    pub owner: usize,
}

/// The id of node `i` (0-based).
pub fn node_id(i: usize) -> String {
    format!("bench-{}", i + 1)
}

impl Cluster {
    /// Starts Redis and `n` relay nodes on it, and waits until they agree on one owner. On error, whatever was
    /// started is stopped (dropped: killed).
    pub async fn start(n: usize, launch: &Launch, upstream_url: &str) -> anyhow::Result<(Cluster, Vec<Target>)> {
        let redis = Redis::start(launch.pin).await?;
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let mut node = launch.clone();
            node.cluster_node = Some((redis.url(), node_id(i)));
            let target = Target::start(Kind::Relay, &node, upstream_url)
                .await
                .with_context(|| format!("node {}", node_id(i)))?;
            nodes.push(target);
        }
        let owner = match agreed_owner(&nodes, &redis).await {
            Ok(owner) => owner,
            Err(e) => {
                for node in nodes {
                    node.stop().await;
                }
                redis.stop().await;
                return Err(e);
            }
        };
        Ok((Cluster { redis, owner }, nodes))
    }
}

/// Polls every node's `/api/status` until exactly one says it owns the provider, every node names it as the
/// owner and every node sees all the others; then waits until every node has subscribed to the data channel
/// (a node that has not would serve its clients nothing).
async fn agreed_owner(nodes: &[Target], redis: &Redis) -> anyhow::Result<usize> {
    let deadline = Instant::now() + OWNER_TIMEOUT;
    loop {
        let mut views = Vec::with_capacity(nodes.len());
        for node in nodes {
            views.push(node.status().await.and_then(|s| s.cluster));
        }
        let owners: Vec<usize> = views
            .iter()
            .enumerate()
            .filter(|(_, v)| {
                v.as_ref().is_some_and(|v| v.providers.iter().any(|p| p.provider == PROVIDER && p.this_node))
            })
            .map(|(i, _)| i)
            .collect();
        if let [owner] = owners.as_slice() {
            let id = node_id(*owner);
            let agree = views.iter().all(|v| {
                v.as_ref().is_some_and(|v| {
                    v.nodes.len() == nodes.len()
                        && v.providers.iter().any(|p| p.provider == PROVIDER && p.owner.as_deref() == Some(id.as_str()))
                })
            });
            if agree {
                return all_subscribed(nodes.len(), redis).await.map(|()| *owner);
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "the {} nodes agreed on no owner of {PROVIDER} within {OWNER_TIMEOUT:?}: owners {owners:?}, views \
                 {views:?}",
                nodes.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn all_subscribed(n: usize, redis: &Redis) -> anyhow::Result<()> {
    let deadline = Instant::now() + SUBSCRIBE_TIMEOUT;
    loop {
        let subscribers = redis.data_subscribers().await;
        if subscribers == Some(n) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let subscribe = redis.cli(&["INFO", "commandstats"]).await.unwrap_or_default();
            let subscribe = subscribe.lines().find(|l| l.starts_with("cmdstat_subscribe:")).unwrap_or("no SUBSCRIBE");
            bail!(
                "the nodes agree on an owner, but {} of {n} subscribed to {} within {SUBSCRIBE_TIMEOUT:?} (the others \
                 would deliver nothing; Redis: {})",
                subscribers.map_or("?".into(), |s| s.to_string()),
                data_channel(),
                subscribe.trim()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_command_stats() {
        let info =
            "# Commandstats\r\ncmdstat_ping:calls=2,usec=3,usec_per_call=1.50,rejected_calls=0,failed_calls=0\r\n\
                    cmdstat_publish:calls=12345,usec=67890,usec_per_call=5.50,rejected_calls=0,failed_calls=0\r\n";
        assert_eq!(parse_command_stats(info, "publish"), Some((12345, 67890)));
        assert_eq!(parse_command_stats(info, "ping"), Some((2, 3)));
        assert_eq!(parse_command_stats(info, "hset"), None);
        assert_eq!(parse_command_stats("garbage", "publish"), None);
    }
}
