//! The fields protocol 2 added to `subscribe`, `resume` (`epoch`, `seqs`) and `max_hz`, with every JSON type,
//! out-of-range and non-finite numbers, duplicates and unknown members, sent as JSON text and as MessagePack:
//! no panic; the two encodings of one command give the same verdict; an accepted command carries exactly the
//! numbers that were sent; a refused one is `bad_json` for a number JSON cannot hold (`1e999`), else `bad_message` (the type is
//! known) with the `id`.
#![no_main]

use arbitrary::Arbitrary;
use hamster_shared::{ClientMessage, ErrorCode, RequestId};
use libfuzzer_sys::fuzz_target;

/// One JSON value, written by hand so that it can hold what `serde_json::Value` cannot (`1e999`, 30 digits).
#[derive(Debug, Arbitrary)]
enum Field {
    U64(u64),
    I64(i64),
    F64(f64),
    Str(String),
    Bool(bool),
    Null,
    Huge,
    LongInt,
    Arr(Vec<u64>),
}

impl Field {
    fn json(&self) -> String {
        match self {
            Field::U64(n) => n.to_string(),
            Field::I64(n) => n.to_string(),
            // Non-finite floats have no JSON spelling: serde_json writes `null` for them, so do we.
            Field::F64(x) => serde_json::to_string(x).unwrap_or_else(|_| "null".into()),
            Field::Str(s) => serde_json::Value::from(s.as_str()).to_string(),
            Field::Bool(b) => b.to_string(),
            Field::Null => "null".into(),
            Field::Huge => "1e999".into(),
            Field::LongInt => "123456789012345678901234567890".into(),
            Field::Arr(items) => serde_json::to_string(items).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    id: Option<u64>,
    epoch: Option<Field>,
    seqs: Vec<(String, Field)>,
    resume_null: bool,
    extra_in_resume: Option<(String, Field)>,
    max_hz: Option<Field>,
    max_hz_twice: Option<Field>,
}

fuzz_target!(|input: Input| {
    let mut members = vec![r#""type":"subscribe""#.to_owned(), r#""symbols":["AAPL"]"#.to_owned()];
    if let Some(id) = input.id {
        members.push(format!(r#""id":{id}"#));
    }
    if input.resume_null {
        members.push(r#""resume":null"#.into());
    } else if input.epoch.is_some() || !input.seqs.is_empty() || input.extra_in_resume.is_some() {
        let mut resume = Vec::new();
        if let Some(epoch) = &input.epoch {
            resume.push(format!(r#""epoch":{}"#, epoch.json()));
        }
        let seqs: Vec<String> =
            input.seqs.iter().map(|(k, v)| format!("{}:{}", serde_json::Value::from(k.as_str()), v.json())).collect();
        resume.push(format!(r#""seqs":{{{}}}"#, seqs.join(",")));
        if let Some((k, v)) = &input.extra_in_resume {
            resume.push(format!("{}:{}", serde_json::Value::from(k.as_str()), v.json()));
        }
        members.push(format!(r#""resume":{{{}}}"#, resume.join(",")));
    }
    for max_hz in [&input.max_hz, &input.max_hz_twice].into_iter().flatten() {
        members.push(format!(r#""max_hz":{}"#, max_hz.json()));
    }
    let text = format!("{{{}}}", members.join(","));

    let parsed = ClientMessage::parse(&text);
    // The same command in MessagePack, when the JSON is a tree serde_json can hold (`1e999` is not).
    let tree = serde_json::from_str::<serde_json::Value>(&text).ok();
    if let Some(tree) = &tree {
        let packed = rmp_serde::to_vec_named(tree).expect("a JSON tree encodes");
        let from_packed = ClientMessage::parse_msgpack(&packed);
        match (&parsed, &from_packed) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
            (Err(a), Err(b)) => assert_eq!(a.code, b.code, "{text}"),
            _ => panic!("JSON and MessagePack disagree on {text}: {parsed:?} vs {from_packed:?}"),
        }
    }
    match parsed {
        Ok(ClientMessage::Subscribe { id, resume, max_hz, .. }) => {
            assert_eq!(id, input.id.map(RequestId::Num));
            if let (Some(resume), Some(Field::U64(epoch))) = (&resume, &input.epoch) {
                assert_eq!(resume.epoch, *epoch);
            }
            if let (Some(resume), None) = (&resume, &input.extra_in_resume) {
                for (k, v) in &input.seqs {
                    if let (Some(seq), Field::U64(sent)) = (resume.seqs.get(k), v) {
                        // A duplicate key keeps the last value; only a key sent once must match.
                        if input.seqs.iter().filter(|(k2, _)| k2 == k).count() == 1 {
                            assert_eq!(seq, sent, "{text}");
                        }
                    }
                }
            }
            if let (Some(hz), Some(Field::F64(sent)), None) = (max_hz, &input.max_hz, &input.max_hz_twice) {
                // serde_json's default float parser may be one unit in the last place off (its exact parser is
                // the `float_roundtrip` feature); a rate needs no more.
                assert!(!sent.is_finite() || hz.to_bits().abs_diff(sent.to_bits()) <= 1, "{text}: {hz}");
            }
        }
        Ok(other) => panic!("a subscribe parsed as {other:?}"),
        Err(e) if tree.is_none() => assert_eq!(e.code, ErrorCode::BadJson, "{text}: {e}"),
        Err(e) => {
            assert_eq!(e.code, ErrorCode::BadMessage, "{text}: {e}");
            if let Some(id) = input.id {
                assert_eq!(e.id, Some(RequestId::Num(id)), "{text}");
            }
        }
    }
});
