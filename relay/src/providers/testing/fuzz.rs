//! Strategies and checks shared by the providers' property-based fuzz tests (`<provider>/fuzz_tests.rs`).
//!
//! Every adapter's inbound parser is fed three kinds of frames: arbitrary text, arbitrary JSON built from the
//! keys the providers use, and the provider's documented sample frames *mutated* — values replaced by JSON of
//! another type or by huge, negative and NaN-ish numbers and strings, members dropped, duplicated or renamed,
//! arrays resized, the text truncated at a random byte. Whatever comes in, a parser must not panic, and every
//! quote it produces must be one the protocol can carry ([`check_events`]).
//!
//! Cases per property: `PROPTEST_CASES` (256 by default); `docs/fuzzing.md` has the long run.

use hamster_shared::{Quote, Symbol};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

use crate::providers::stream::WireEvent;

/// A JSON document as text is built, so it can hold what [`serde_json::Value`] cannot: numbers beyond `f64`
/// (`1e999`), over-long integers, duplicate keys, and members in any order.
#[derive(Debug, Clone)]
pub(crate) enum Json {
    /// A literal or number, written as is.
    Raw(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn from_value(v: &Value) -> Json {
        match v {
            Value::Null | Value::Bool(_) | Value::Number(_) => Json::Raw(v.to_string()),
            Value::String(s) => Json::Str(s.clone()),
            Value::Array(items) => Json::Arr(items.iter().map(Json::from_value).collect()),
            Value::Object(map) => Json::Obj(map.iter().map(|(k, v)| (k.clone(), Json::from_value(v))).collect()),
        }
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        let quoted = |s: &str| Value::from(s).to_string();
        match self {
            Json::Raw(raw) => out.push_str(raw),
            Json::Str(s) => out.push_str(&quoted(s)),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Obj(members) => {
                out.push('{');
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&quoted(key));
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    /// Paths (child positions from the root) of every node, the root first.
    fn paths(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, at: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        out.push(at.clone());
        let children: Vec<&Json> = match self {
            Json::Arr(items) => items.iter().collect(),
            Json::Obj(members) => members.iter().map(|(_, v)| v).collect(),
            Json::Raw(_) | Json::Str(_) => Vec::new(),
        };
        for (i, child) in children.into_iter().enumerate() {
            at.push(i);
            child.collect_paths(at, out);
            at.pop();
        }
    }

    fn at(&self, path: &[usize]) -> &Json {
        match (self, path.split_first()) {
            (node, None) => node,
            (Json::Arr(items), Some((i, rest))) => items[*i].at(rest),
            (Json::Obj(members), Some((i, rest))) => members[*i].1.at(rest),
            (node, Some(_)) => node,
        }
    }

    fn at_mut(&mut self, path: &[usize]) -> &mut Json {
        match (self, path.split_first()) {
            (node, None) => node,
            (Json::Arr(items), Some((i, rest))) => items[*i].at_mut(rest),
            (Json::Obj(members), Some((i, rest))) => members[*i].1.at_mut(rest),
            (node, Some(_)) => node,
        }
    }

    fn is_obj(&self) -> bool {
        matches!(self, Json::Obj(_))
    }

    fn is_arr(&self) -> bool {
        matches!(self, Json::Arr(_))
    }
}

/// Keys the providers' frames use, so generated objects reach past the first `match`.
const KEYS: &[&str] = &[
    // Twelve Data
    "event",
    "symbol",
    "price",
    "timestamp",
    "bid",
    "ask",
    "day_volume",
    "status",
    "fails",
    "messages",
    "message",
    "success",
    "code", // Binance
    "e",
    "E",
    "s",
    "c",
    "o",
    "p",
    "P",
    "b",
    "a",
    "v",
    "data",
    "stream",
    "id",
    "result",
    "error",
    "msg",
    // Alpaca
    "T",
    "S",
    "bp",
    "ap",
    "t",
    "trades",
    "quotes", // Finnhub
    "type",   // Unusual Whales
    "close",
    "time",
    "vol",
    "response",
    "reason",
    "executed_at",
];

/// String values the providers' frames use: event names, statuses, symbols, times.
const STRINGS: &[&str] = &[
    "price",
    "subscribe-status",
    "unsubscribe-status",
    "heartbeat",
    "error",
    "ok",
    "warning",
    "24hrTicker",
    "24hrMiniTicker",
    "serverShutdown",
    "bnbbtc@ticker",
    "t",
    "q",
    "success",
    "subscription",
    "connected",
    "authenticated",
    "trade",
    "ping",
    "Subscribing to too many symbols",
    "AAPL",
    "BNBBTC",
    "BTC/USD",
    "BINANCE:BTCUSDT",
    "price:SPY",
    "price:",
    "flow-alerts",
    "gex:SPY",
    "2021-02-22T15:51:45.335689322Z",
    "2025-06-11T21:40:56Z",
    "9999-12-31T23:59:59.999999999Z",
    "0000-01-01T00:00:00-23:59",
    "1726670327692",
];

/// Numbers and number-like strings that break naive number handling: out of range, negative, zero, subnormal,
/// NaN and infinity spelled out, numbers with junk.
pub(crate) fn numberish() -> impl Strategy<Value = Json> {
    let raw = prop_oneof![
        prop::sample::select(vec![
            "0",
            "-0",
            "-1",
            "1e999",
            "-1e999",
            "1e-999",
            "5e-324",
            "1e308",
            "-1.7976931348623157e308",
            "1e15",
            "1e11",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "9223372036854775807",
            "123456789012345678901234567890",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter_map("finite", |f| f.is_finite().then(|| format!("{f:?}"))),
    ]
    .prop_map(Json::Raw);
    let string = prop_oneof![
        prop::sample::select(vec![
            "NaN",
            "nan",
            "-NaN",
            "inf",
            "-inf",
            "Infinity",
            "-infinity",
            "1e999",
            "-1e400",
            "1e-400",
            "",
            " ",
            " 12 ",
            "0x10",
            "1_000",
            "+5",
            ".5",
            "5.",
            "-0",
            "0",
            "١٢٣",
        ])
        .prop_map(str::to_owned),
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
    .prop_map(Json::Str);
    prop_oneof![raw, string]
}

fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        3 => prop_oneof![Just("null"), Just("true"), Just("false")].prop_map(|s| Json::Raw(s.to_owned())),
        3 => numberish(),
        3 => prop::sample::select(STRINGS).prop_map(|s| Json::Str(s.to_owned())),
        1 => ".{0,16}".prop_map(Json::Str),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => ".{0,6}"]
}

/// Any JSON, up to 6 levels deep, with the providers' keys and values.
pub(crate) fn arbitrary_json() -> impl Strategy<Value = Json> {
    scalar().prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Arr),
            prop::collection::vec((key(), inner), 0..8).prop_map(Json::Obj),
        ]
    })
}

/// Any text: arbitrary Unicode, arbitrary bytes read as lossy UTF-8, and JSON-looking punctuation soup.
pub(crate) fn arbitrary_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..256).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        r#"[\[\]{}:,"0-9a-zA-Z\\. e+-]{0,64}"#,
    ]
}

/// One edit of a sample. Each [`Index`] picks among the nodes the edit applies to when it is applied.
#[derive(Debug, Clone)]
enum Mutation {
    /// A node becomes random JSON (often of another type).
    Replace(Index, Json),
    /// A node becomes a huge, negative, NaN-ish … number or numeric string.
    Numberish(Index, Json),
    /// An array or object member disappears.
    Drop(Index),
    /// An object member appears twice (serde sees a duplicate field).
    Duplicate(Index),
    /// An object member's key changes.
    Rename(Index, String),
    /// An array gets a random length (copies of its own elements); without arrays, the frame is wrapped in one.
    Resize(Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), arbitrary_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        4 => (any::<Index>(), numberish()).prop_map(|(i, v)| Mutation::Numberish(i, v)),
        2 => any::<Index>().prop_map(Mutation::Drop),
        1 => any::<Index>().prop_map(Mutation::Duplicate),
        1 => (any::<Index>(), key()).prop_map(|(i, k)| Mutation::Rename(i, k)),
        1 => (any::<Index>(), 0usize..40).prop_map(|(i, n)| Mutation::Resize(i, n)),
    ]
}

impl Mutation {
    fn apply(&self, doc: &mut Json) {
        let paths = doc.paths();
        match self {
            Mutation::Replace(i, v) | Mutation::Numberish(i, v) => {
                *doc.at_mut(&paths[i.index(paths.len())]) = v.clone()
            }
            Mutation::Drop(i) => {
                let children: Vec<_> = paths.iter().filter(|p| !p.is_empty()).cloned().collect();
                if children.is_empty() {
                    return;
                }
                let path = &children[i.index(children.len())];
                let (last, parent) = path.split_last().expect("non-empty path");
                match doc.at_mut(parent) {
                    Json::Arr(items) => {
                        items.remove(*last);
                    }
                    Json::Obj(members) => {
                        members.remove(*last);
                    }
                    Json::Raw(_) | Json::Str(_) => {}
                }
            }
            Mutation::Duplicate(i) | Mutation::Rename(i, _) => {
                // Object members: nodes whose parent is an object.
                let members: Vec<_> =
                    paths.iter().filter(|p| !p.is_empty() && doc.at(&p[..p.len() - 1]).is_obj()).cloned().collect();
                if members.is_empty() {
                    return;
                }
                let path = &members[i.index(members.len())];
                let (last, parent) = path.split_last().expect("non-empty path");
                let Json::Obj(list) = doc.at_mut(parent) else { return };
                match self {
                    Mutation::Rename(_, key) => list[*last].0 = key.clone(),
                    _ => {
                        let copy = list[*last].clone();
                        list.insert(*last + 1, copy);
                    }
                }
            }
            Mutation::Resize(i, len) => {
                let arrays: Vec<_> = paths.iter().filter(|p| doc.at(p).is_arr()).cloned().collect();
                if arrays.is_empty() {
                    let inner = std::mem::replace(doc, Json::Arr(Vec::new()));
                    *doc = Json::Arr(vec![inner; *len]);
                    return;
                }
                let Json::Arr(items) = doc.at_mut(&arrays[i.index(arrays.len())]) else { return };
                let pool = std::mem::take(items);
                *items = (0..*len)
                    .map(|n| pool.get(n % pool.len().max(1)).cloned().unwrap_or(Json::Obj(Vec::new())))
                    .collect();
            }
        }
    }
}

/// The `samples` (valid JSON texts), each edited one to four times and, now and then, cut at a random byte.
pub(crate) fn mutated(samples: &'static [&'static str]) -> impl Strategy<Value = String> {
    (
        prop::sample::select(samples),
        prop::collection::vec(mutation(), 1..5),
        prop::option::weighted(0.2, any::<Index>()),
    )
        .prop_map(|(sample, mutations, cut)| {
            let value: Value = serde_json::from_str(sample).expect("samples are valid JSON");
            let mut doc = Json::from_value(&value);
            for m in &mutations {
                m.apply(&mut doc);
            }
            let mut text = doc.text();
            if let Some(cut) = cut {
                let mut at = cut.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
            text
        })
}

/// One step of a fuzzed adapter session: a (re)connect, a subscription change, or an incoming frame.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    Open,
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
    Frame(String),
}

/// Session steps over the adapter's `instruments` lists and documented `samples`, weighted towards frames.
pub(crate) fn op<S>(instruments: impl Fn() -> S, samples: &'static [&'static str]) -> impl Strategy<Value = Op>
where
    S: Strategy<Value = Vec<String>> + 'static,
{
    prop_oneof![
        1 => Just(Op::Open),
        3 => instruments().prop_map(Op::Subscribe),
        2 => instruments().prop_map(Op::Unsubscribe),
        8 => session_frame(samples).prop_map(Op::Frame),
    ]
}

/// A frame for a session: mostly documented samples (as is or mutated) so state builds up, sometimes anything.
pub(crate) fn session_frame(samples: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(samples).prop_map(str::to_owned),
        4 => mutated(samples),
        1 => arbitrary_json().prop_map(|j| j.text()),
        1 => arbitrary_text(),
    ]
}

/// Every quote in `events` is one the protocol can carry (see [`check_quote`]).
pub(crate) fn check_events(provider: &str, events: &[WireEvent]) -> Result<(), TestCaseError> {
    for event in events {
        if let WireEvent::Quotes(quotes) = event {
            for quote in quotes {
                check_quote(provider, quote)?;
            }
        }
    }
    Ok(())
}

/// A finite price, a non-empty canonical symbol, the right provider, and optional numbers that are finite when
/// present (a non-finite one would go out as `null`, which the protocol never sends).
pub(crate) fn check_quote(provider: &str, q: &Quote) -> Result<(), TestCaseError> {
    prop_assert!(q.price.is_finite(), "non-finite price: {:?}", q);
    prop_assert!(!q.symbol.as_str().is_empty(), "empty symbol: {:?}", q);
    prop_assert_eq!(Symbol::parse(q.symbol.as_str()).ok(), Some(q.symbol.clone()), "symbol not canonical");
    prop_assert_eq!(q.provider.as_str(), provider);
    for (field, value) in
        [("bid", q.bid), ("ask", q.ask), ("volume", q.volume), ("change", q.change), ("change_pct", q.change_pct)]
    {
        prop_assert!(value.is_none_or(f64::is_finite), "non-finite {}: {:?}", field, q);
    }
    Ok(())
}

/// Quotes among `events`, for properties about which instruments they are for.
pub(crate) fn quotes(events: &[WireEvent]) -> impl Iterator<Item = &Quote> {
    events.iter().flat_map(|e| match e {
        WireEvent::Quotes(q) => q.as_slice(),
        _ => &[],
    })
}

#[test]
fn fuzz_mutations_keep_samples_recognisable() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    // The mutator must leave most frames parseable, or the parsers would only ever see syntax errors.
    const SAMPLES: &[&str] = &[r#"{"e":"24hrTicker","E":1,"s":"BNBBTC","c":"0.0025","arr":[1,2,{"x":[]}]}"#];
    let mut runner = TestRunner::deterministic();
    let strategy = mutated(SAMPLES);
    let parsed = (0..400)
        .filter(|_| {
            let text = strategy.new_tree(&mut runner).expect("strategy").current();
            serde_json::from_str::<Value>(&text).is_ok()
        })
        .count();
    assert!(parsed > 200, "only {parsed} of 400 mutated frames are JSON");
}
