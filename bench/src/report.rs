//! The results as markdown: one table of every run, and relay-vs-node ratios where both ran the same scenario.
//!
//! Latencies are in milliseconds, memory in MB (MiB), CPU in percent of one core (so 200 % is both cores of
//! this machine). `deliveries/s` counts quotes that arrived while the window was open; the latencies are those
//! of the ticks *sent* in the window, so a server that falls behind shows low deliveries and high (or no)
//! latencies. `gaps` are skipped updates the clients saw; `relay conflated` is the relay's own
//! `conflated_total` growth over the run (its `/api/status`), which the Node peer does not have. A cluster's
//! rows (`relay ×N on Redis`) sum CPU, RSS and conflation over its nodes; Redis's CPU is in their notes.

use std::fmt::Write as _;

use crate::scenario::Row;
use crate::target::Kind;

/// The whole report: a header line about the conditions, the table, the comparison.
pub fn render(header: &str, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}\n");
    out.push_str(&table(rows));
    let comparison = comparison(rows);
    if !comparison.is_empty() {
        out.push('\n');
        out.push_str(&comparison);
    }
    out
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| target | scenario | clients | symbols | ticks/s in | deliveries/s | p50 ms | p90 ms | p99 ms | max ms \
         | gaps | relay conflated | RSS MB | CPU % | bench CPU % | notes |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n",
    );
    for r in rows {
        let s = &r.summary;
        let has_latency = s.deliveries > 0;
        let ms = |us: u64| if has_latency { format!("{:.2}", us as f64 / 1000.0) } else { "–".into() };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            target_label(r),
            r.label,
            thousands(r.clients as f64),
            r.symbols,
            thousands(r.ticks_in_per_s),
            thousands(r.deliveries_per_s),
            ms(s.p50_us),
            ms(s.p90_us),
            ms(s.p99_us),
            ms(s.max_us),
            thousands(s.gaps as f64),
            r.relay_conflated.map_or("–".into(), |c| thousands(c as f64)),
            r.rss.map_or("–".into(), |b| format!("{:.1}", b as f64 / 1048576.0)),
            r.cpu_percent.map_or("–".into(), |c| format!("{c:.0}")),
            r.bench_cpu_percent.map_or("–".into(), |c| format!("{c:.0}")),
            r.notes.join("; "),
        );
    }
    out
}

/// `relay`, `node`, or `relay ×3 on Redis` for a cluster.
fn target_label(r: &Row) -> String {
    match r.cluster {
        Some(n) => format!("{} ×{n} on Redis", r.target.label()),
        None => r.target.label().to_owned(),
    }
}

/// Relay vs node for every scenario row both targets produced.
fn comparison(rows: &[Row]) -> String {
    let mut out = String::new();
    for relay in rows.iter().filter(|r| r.target == Kind::Relay && r.cluster.is_none() && !r.failed) {
        let Some(node) = rows
            .iter()
            .find(|n| n.target == Kind::Node && !n.failed && n.label == relay.label && n.clients == relay.clients)
        else {
            continue;
        };
        if out.is_empty() {
            out.push_str(
                "| scenario | clients | deliveries/s relay / node (ratio) | p99 ms relay / node (node ÷ relay) \
                 | CPU % relay / node | RSS MB relay / node | idle RSS per connection KB relay / node |\n\
                 |---|--:|---|---|---|---|---|\n",
            );
        }
        let ratio = |a: f64, b: f64| if a > 0.0 && b > 0.0 { format!(" ({:.2}×)", a / b) } else { String::new() };
        let mb = |r: &Row| r.rss.map_or("–".into(), |b| format!("{:.1}", b as f64 / 1048576.0));
        let cpu = |r: &Row| r.cpu_percent.map_or("–".into(), |c| format!("{c:.0}"));
        let p99 = |r: &Row| {
            if r.summary.deliveries > 0 {
                format!("{:.2}", r.summary.p99_us as f64 / 1000.0)
            } else {
                "–".into()
            }
        };
        let per_client = |r: &Row| r.rss_per_client.map_or("–".into(), |b| format!("{:.1}", b / 1024.0));
        let _ = writeln!(
            out,
            "| {} | {} | {} / {}{} | {} / {}{} | {} / {} | {} / {} | {} / {}{} |",
            relay.label,
            thousands(relay.clients as f64),
            thousands(relay.deliveries_per_s),
            thousands(node.deliveries_per_s),
            ratio(relay.deliveries_per_s, node.deliveries_per_s),
            p99(relay),
            p99(node),
            ratio(node.summary.p99_us as f64, relay.summary.p99_us as f64),
            cpu(relay),
            cpu(node),
            mb(relay),
            mb(node),
            per_client(relay),
            per_client(node),
            ratio(relay.rss_per_client.unwrap_or(0.0), node.rss_per_client.unwrap_or(0.0)),
        );
    }
    out
}

/// `1234567.8` → `1,234,568`.
fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.6), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-4200.0), "-4,200");
    }
}
