//! Property-based fuzzing of [`ClientMessage::parse`], the first thing every client frame meets (the relay's
//! `session::handle_text` hands it the raw text, so this covers the client command path up to validation).
//!
//! Properties: it never panics, whatever the input; valid messages round-trip; every error carries the code
//! its input deserves (`bad_json`, `unknown_type`, `bad_message`) and the `id` when one could be read.
//! Cases: `PROPTEST_CASES` (256 by default); see `docs/fuzzing.md` for the long run.

use hamster_shared::{ClientMessage, ErrorCode, ReplayAction, RequestId};
use proptest::prelude::*;
use serde_json::Value;

/// A JSON document as text is built, so it can hold what `serde_json::Value` cannot: numbers out of `f64`'s
/// range (`1e999`), over-long integers, and duplicate keys.
#[derive(Debug, Clone)]
enum Json {
    /// A literal or number, written as is.
    Raw(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Raw(raw) => out.push_str(raw),
            Json::Str(s) => out.push_str(&Value::from(s.as_str()).to_string()),
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
                    out.push_str(&Value::from(key.as_str()).to_string());
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// Numbers and literals, including the ones that break naive parsers.
fn raw_scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter_map("finite", |f| f.is_finite().then(|| format!("{f:?}"))),
        prop::sample::select(vec![
            "0",
            "-0",
            "1.0",
            "1e999",
            "-1e999",
            "1e-999",
            "18446744073709551616",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "1.7976931348623157e308",
            "5e-324",
            "0.0000000000000000000001",
        ])
        .prop_map(str::to_owned),
    ]
    .prop_map(Json::Raw)
}

/// Strings: the real type names and symbols, and anything at all.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["subscribe", "unsubscribe", "ping", "Subscribe", "PING", "", "AAPL", "BTC/USD"])
            .prop_map(str::to_owned),
        ".{0,12}",
        any::<String>(),
    ]
}

/// Object keys: mostly the real ones, so generated objects come close to valid messages.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["type", "id", "symbols"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["extra", "Type", "symbol", ""]).prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

/// Any JSON, nested up to 8 levels.
fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![raw_scalar(), string().prop_map(Json::Str)];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Arr),
            prop::collection::vec((key(), inner), 0..6).prop_map(Json::Obj),
        ]
    })
}

/// An object built from the real keys with values of the right or a wrong type (sometimes missing, sometimes
/// twice, sometimes with extra members).
fn message_like() -> impl Strategy<Value = Json> {
    let kind = prop_oneof![
        3 => prop::sample::select(ClientMessage::KINDS.to_vec()).prop_map(|s| Json::Str(s.to_owned())),
        1 => json(),
    ];
    let id =
        prop_oneof![any::<u64>().prop_map(|n| Json::Raw(n.to_string())), any::<String>().prop_map(Json::Str), json(),];
    let symbols = prop_oneof![
        3 => prop::collection::vec(string().prop_map(Json::Str), 0..8).prop_map(Json::Arr),
        1 => json(),
    ];
    // The replay commands' members: numbers of the right shape most of the time, anything otherwise.
    let number = || {
        prop_oneof![
            3 => any::<i64>().prop_map(|n| Json::Raw(n.to_string())),
            1 => json(),
        ]
    };
    let action = prop_oneof![
        3 => prop::sample::select(vec!["pause", "resume", "speed", "seek", "stop"]).prop_map(|s| Json::Str(s.to_owned())),
        1 => json(),
    ];
    let replay =
        (prop::option::of(number()), prop::option::of(number()), prop::option::of(number()), prop::option::of(action));
    (
        prop::option::weighted(0.9, kind),
        prop::option::of(id),
        prop::option::weighted(0.8, symbols),
        replay,
        prop::collection::vec((key(), json()), 0..3),
        any::<bool>(),
    )
        .prop_map(|(kind, id, symbols, (from, to, speed, action), extra, reversed)| {
            let named = [
                ("type", kind),
                ("id", id),
                ("symbols", symbols),
                ("from", from),
                ("to", to),
                ("speed", speed),
                ("action", action),
            ];
            let mut members: Vec<(String, Json)> =
                named.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))).collect();
            members.extend(extra);
            if reversed {
                members.reverse();
            }
            Json::Obj(members)
        })
}

/// A value wrapped in `depth` arrays or objects: beyond serde_json's recursion limit (128) near the top.
fn deeply_nested() -> impl Strategy<Value = String> {
    (1usize..400, any::<bool>(), message_like()).prop_map(|(depth, objects, inner)| {
        let (open, close) = if objects { (r#"{"type":"#, "}") } else { ("[", "]") };
        format!("{}{}{}", open.repeat(depth), inner.text(), close.repeat(depth))
    })
}

/// Any valid client message.
fn client_message() -> impl Strategy<Value = ClientMessage> {
    let id =
        prop::option::of(prop_oneof![any::<u64>().prop_map(RequestId::Num), any::<String>().prop_map(RequestId::Str)]);
    let symbols = prop::collection::vec(any::<String>(), 0..12);
    prop_oneof![
        (id.clone(), symbols.clone()).prop_map(|(id, symbols)| ClientMessage::Subscribe {
            max_hz: None,
            resume: None,
            id,
            symbols
        }),
        (id.clone(), symbols).prop_map(|(id, symbols)| ClientMessage::Unsubscribe { id, symbols }),
        id.clone().prop_map(|id| ClientMessage::Ping { id }),
        (id.clone(), any::<i64>(), any::<i64>(), prop::collection::vec(any::<String>(), 0..4), 0u32..100_000).prop_map(
            |(id, from, to, symbols, speed)| ClientMessage::Replay {
                id,
                from,
                to,
                symbols,
                speed: f64::from(speed) / 100.0
            }
        ),
        (
            id,
            prop::sample::select(vec![
                ReplayAction::Pause,
                ReplayAction::Resume,
                ReplayAction::Speed,
                ReplayAction::Seek,
                ReplayAction::Stop
            ]),
            prop::option::of(0u32..100_000),
            prop::option::of(any::<i64>())
        )
            .prop_map(|(id, action, speed, to)| ClientMessage::ReplayControl {
                id,
                action,
                speed: speed.map(|s| f64::from(s) / 100.0),
                to
            }),
    ]
}

/// `value` with every number as a float, so `10` and `10.0` compare equal.
fn numbers_as_f64(value: Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map(Value::from).unwrap_or(Value::Number(n)),
        Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_f64).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect()),
        other => other,
    }
}

/// What `parse` must do with `text`, stated from the protocol rather than from its code: returns `Ok` when the
/// property holds.
fn check(text: &str) -> Result<(), TestCaseError> {
    let result = ClientMessage::parse(text);
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        let err = result.expect_err("text that is not JSON cannot parse");
        prop_assert_eq!(err.code, ErrorCode::BadJson);
        prop_assert_eq!(err.id, None);
        return Ok(());
    };
    let readable_id = value.get("id").and_then(|v| serde_json::from_value::<RequestId>(v.clone()).ok());
    let known = value.get("type").and_then(Value::as_str).is_some_and(|kind| ClientMessage::KINDS.contains(&kind));
    match result {
        Ok(message) => {
            prop_assert!(known, "accepted a message without a known type: {}", text);
            // What was accepted is what was sent: re-serialised, it is the input (an explicit `"id":null` is the
            // same as no id, and optional fields are omitted, never null).
            let mut expected = value.clone();
            if let Some(map) = expected.as_object_mut() {
                if map.get("id") == Some(&Value::Null) {
                    map.remove("id");
                }
            }
            // Numbers may change spelling (`10` → `10.0`) and a missing `speed` reads as 1, so a replay's
            // fields are compared as numbers.
            if let Some(map) = expected.as_object_mut() {
                if message.kind() == "replay" && !map.contains_key("speed") {
                    map.insert("speed".into(), Value::from(1.0));
                }
            }
            prop_assert_eq!(numbers_as_f64(serde_json::to_value(&message).unwrap()), numbers_as_f64(expected));
            let again = ClientMessage::parse(&serde_json::to_string(&message).unwrap());
            prop_assert_eq!(again.as_ref(), Ok(&message));
        }
        Err(err) => {
            prop_assert_eq!(err.code, if known { ErrorCode::BadMessage } else { ErrorCode::UnknownType }, "{}", text);
            prop_assert_eq!(err.id, readable_id, "{}", text);
            prop_assert!(!err.message.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_client_message_arbitrary_strings(text in any::<String>()) {
        check(&text)?;
    }

    #[test]
    fn fuzz_client_message_lossy_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn fuzz_client_message_json_alphabet(text in r#"[\[\]{}:,"0-9a-z\\. e+-]{0,64}"#) {
        check(&text)?;
    }

    #[test]
    fn fuzz_client_message_arbitrary_json(doc in json()) {
        check(&doc.text())?;
    }

    #[test]
    fn fuzz_client_message_structured(doc in message_like()) {
        check(&doc.text())?;
    }

    #[test]
    fn fuzz_client_message_deep_nesting(text in deeply_nested()) {
        check(&text)?;
    }

    #[test]
    fn fuzz_client_message_round_trips(message in client_message()) {
        let text = serde_json::to_string(&message).unwrap();
        prop_assert_eq!(ClientMessage::parse(&text), Ok(message));
    }

    /// Any proper prefix of a message is not JSON (an object is complete only at its closing brace).
    #[test]
    fn fuzz_client_message_truncated(message in client_message(), cut in any::<prop::sample::Index>()) {
        let text = serde_json::to_string(&message).unwrap();
        let mut at = cut.index(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let err = ClientMessage::parse(&text[..at]).unwrap_err();
        prop_assert_eq!(err.code, ErrorCode::BadJson);
    }
}

#[test]
fn fuzz_oracle_agrees_on_the_documented_cases() {
    for text in [
        "{nope",
        "[1,2]",
        r#"{"symbols":[]}"#,
        r#"{"type":"dance"}"#,
        r#"{"type":"subscribe"}"#,
        r#"{"type":"subscribe","symbols":"AAPL"}"#,
        r#"{"type":"ping","extra":1}"#,
        r#"{"type":"subscribe","id":"a1"}"#,
        r#"{"type":"subscribe","id":7,"symbols":["BTC/USD","AAPL"]}"#,
        r#"{"type":"ping","id":null}"#,
        r#"{"type":"ping","id":1e999}"#,
    ] {
        check(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    }
}
