//! How our instruments map to Unusual Whales channel names and back (`docs/providers/unusualwhales.md`, Symbols and channels).

/// How our instruments map to Unusual Whales channel names and back.
#[derive(Debug, Clone)]
pub(super) struct Channels {
    /// Lower-case channel names without a ticker (`flow-alerts`).
    plain: Vec<String>,
    /// Lower-case per-ticker families (`gex` for `gex:SPY`).
    families: Vec<String>,
}

/// What a channel carries, named by our instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// `price:TICKER`: quotes for the instrument `TICKER`.
    Price(String),
    /// Any other channel: events for the instrument (`FLOW-ALERTS`, `GEX-SPY`).
    Channel(String),
}

impl Target {
    pub(super) fn instrument(&self) -> &str {
        match self {
            Target::Price(i) | Target::Channel(i) => i,
        }
    }
}

impl Channels {
    pub(super) fn new(plain: &[String], families: &[String]) -> Channels {
        let clean = |list: &[String]| -> Vec<String> {
            list.iter().map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()).collect()
        };
        Channels { plain: clean(plain), families: clean(families) }
    }

    /// The channel to join for `instrument`.
    pub(super) fn channel_of(&self, instrument: &str) -> String {
        let lower = instrument.trim().to_ascii_lowercase();
        if self.plain.contains(&lower) {
            return lower;
        }
        for family in &self.families {
            let ticker = lower.strip_prefix(family.as_str()).and_then(|rest| rest.strip_prefix('-'));
            if let Some(ticker) = ticker.filter(|t| !t.is_empty()) {
                return format!("{family}:{}", ticker.to_ascii_uppercase());
            }
        }
        format!("price:{}", instrument.trim().to_ascii_uppercase())
    }

    /// The instrument a channel's frames belong to. Stateless (the inverse of [`Channels::channel_of`] for every
    /// configured name), so frames for channels we did not join simply find no subscriber in the sink.
    pub(super) fn target_of(channel: &str) -> Target {
        match channel.split_once(':') {
            Some((family, ticker)) if family.eq_ignore_ascii_case("price") => {
                Target::Price(ticker.to_ascii_uppercase())
            }
            Some((family, ticker)) => Target::Channel(format!("{family}-{ticker}").to_ascii_uppercase()),
            None => Target::Channel(channel.to_ascii_uppercase()),
        }
    }
}

