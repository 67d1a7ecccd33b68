//! Every Redis key and channel cluster mode uses, named in one place.
//!
//! `{provider}` is a hash tag: all of one provider's keys land in one slot, so the lease script and `SUNION`
//! over the interest sets also work on a Redis Cluster. The prefix keeps a shared Redis usable by other apps.

const PREFIX: &str = "hamster";

/// The provider's lease: `node|token`, with a TTL.
pub(crate) fn lease(provider: &str) -> String {
    format!("{PREFIX}:{{{provider}}}:lease")
}

/// The provider's fencing counter (only ever increases, even after Redis loses its data).
pub(crate) fn fence(provider: &str) -> String {
    format!("{PREFIX}:{{{provider}}}:fence")
}

/// One node's wanted instruments of a provider (a set with a TTL, re-asserted by the node).
pub(crate) fn want(provider: &str, node: &str) -> String {
    format!("{PREFIX}:{{{provider}}}:want:{node}")
}

/// The provider's last quote per instrument, for snapshots and catching up after a gap.
pub(crate) fn last(provider: &str) -> String {
    format!("{PREFIX}:{{{provider}}}:last")
}

/// The provider's connection state as its owner last reported it.
pub(crate) fn status(provider: &str) -> String {
    format!("{PREFIX}:{{{provider}}}:status")
}

/// Everything the owner's provider reports, in order, with the owner's token and a sequence number.
pub(crate) fn data(provider: &str) -> String {
    format!("{PREFIX}:{{{provider}}}:data")
}

/// Fast signals: interest changed, the lease was released.
pub(crate) fn control(provider: &str) -> String {
    format!("{PREFIX}:{{{provider}}}:ctl")
}

/// Live nodes: a sorted set scored by the last time each said it was alive (ms).
pub(crate) const NODES: &str = "hamster:nodes";

/// The provider a `data` or `ctl` channel belongs to, and which of the two it is.
pub(crate) fn parse_channel(channel: &str) -> Option<(&str, bool)> {
    let rest = channel.strip_prefix(PREFIX)?.strip_prefix(":{")?;
    let (provider, kind) = rest.split_once("}:")?;
    match kind {
        "data" => Some((provider, true)),
        "ctl" => Some((provider, false)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_name_their_provider() {
        assert_eq!(parse_channel(&data("binance")), Some(("binance", true)));
        assert_eq!(parse_channel(&control("sim")), Some(("sim", false)));
        assert_eq!(parse_channel("hamster:{sim}:last"), None);
        assert_eq!(parse_channel("other:{sim}:data"), None);
        assert_eq!(lease("sim"), "hamster:{sim}:lease");
    }
}
