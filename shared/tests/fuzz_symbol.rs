//! Property-based fuzzing of the symbol rules: [`Symbol::parse`] (every subscribe, REST query and dashboard
//! input goes through it) and [`split_list`] (`?symbols=A,B`).
//!
//! Properties: neither panics; an accepted symbol is canonical (trimmed, provider lower-case, ticker upper-case,
//! only allowed characters, within [`MAX_SYMBOL_LEN`]), parsing it again gives it back, and the case of the input
//! does not matter; deserialising agrees with parsing. Cases: `PROPTEST_CASES` (256 by default).

use hamster_shared::symbol::{split_list, MAX_PROVIDER_LEN};
use hamster_shared::{AssetClass, Symbol, MAX_SYMBOL_LEN};
use proptest::prelude::*;

/// Inputs close to the rules: ticker characters, the provider colon, whitespace, a few that are not allowed.
fn symbolish() -> impl Strategy<Value = String> {
    prop_oneof![
        r"[ \t]{0,2}([a-zA-Z0-9-]{0,18}:)?[a-zA-Z0-9./_^=!-]{0,36}[ \t\n]{0,2}",
        r"[a-zA-Z0-9./_^=!:, <>ÄéＡ\u{0}-]{0,40}",
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn check(raw: &str) -> Result<(), TestCaseError> {
    let Ok(symbol) = Symbol::parse(raw) else {
        // Refused: so is every case variant, and deserialising refuses it too.
        prop_assert!(Symbol::parse(&raw.to_ascii_uppercase()).is_err());
        prop_assert!(Symbol::parse(&raw.to_ascii_lowercase()).is_err());
        prop_assert!(serde_json::from_value::<Symbol>(raw.into()).is_err());
        return Ok(());
    };
    let text = symbol.as_str();
    prop_assert!(!text.is_empty());
    prop_assert!(text.chars().count() <= MAX_SYMBOL_LEN, "{:?} is too long", text);
    prop_assert_eq!(text, text.trim());
    // Canonical and idempotent.
    prop_assert_eq!(Symbol::parse(text), Ok(symbol.clone()));
    let shown = symbol.to_string();
    prop_assert_eq!(Symbol::parse(&shown), Ok(symbol.clone()));
    prop_assert_eq!(text.parse::<Symbol>(), Ok(symbol.clone()));
    // Case-insensitive input, canonical case out.
    prop_assert_eq!(Symbol::parse(&raw.to_ascii_uppercase()), Ok(symbol.clone()));
    prop_assert_eq!(Symbol::parse(&raw.to_ascii_lowercase()), Ok(symbol.clone()));
    let ticker = symbol.ticker();
    prop_assert!(!ticker.is_empty());
    prop_assert!(!ticker.bytes().any(|b| b.is_ascii_lowercase()), "{:?}", text);
    prop_assert!(ticker.chars().all(|c| c.is_ascii_alphanumeric() || "./-_^=!".contains(c)), "{:?}", text);
    prop_assert!(ticker.starts_with(|c: char| c.is_ascii_alphanumeric()));
    prop_assert!(ticker.ends_with(|c: char| c.is_ascii_alphanumeric()));
    match symbol.provider() {
        Some(provider) => {
            prop_assert_eq!(text, format!("{provider}:{ticker}"));
            prop_assert!((1..=MAX_PROVIDER_LEN).contains(&provider.len()));
            prop_assert!(provider.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        }
        None => prop_assert_eq!(text, ticker),
    }
    // Serde agrees with parse, and serialises the canonical text.
    prop_assert_eq!(serde_json::from_value::<Symbol>(raw.into()).ok(), Some(symbol.clone()));
    prop_assert_eq!(serde_json::to_value(&symbol).unwrap(), serde_json::Value::from(text));
    // The display helpers take any accepted symbol.
    let class = symbol.asset_class();
    for price in [0.0, 0.5, 1.0, 999.0, 1e6, -1.0, f64::NAN, f64::INFINITY] {
        let _ = class.decimals(ticker, price);
    }
    Ok(())
}

proptest! {
    #[test]
    fn fuzz_symbol_parse(raw in symbolish()) {
        check(&raw)?;
    }

    /// Valid symbols padded past the limit are refused, never truncated into something else.
    #[test]
    fn fuzz_symbol_length_limit(ticker in "[A-Z][A-Z0-9]{0,40}") {
        let parsed = Symbol::parse(&ticker);
        prop_assert_eq!(parsed.is_ok(), ticker.len() <= MAX_SYMBOL_LEN);
    }

    #[test]
    fn fuzz_split_list(list in prop_oneof![r"[A-Za-z/:, \t]{0,60}".boxed(), any::<String>().boxed()]) {
        let items: Vec<&str> = split_list(&list).collect();
        let expected: Vec<&str> = list.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        prop_assert_eq!(&items, &expected);
        for item in items {
            prop_assert!(!item.is_empty() && !item.contains(',') && item == item.trim());
            check(item)?;
        }
    }

    #[test]
    fn fuzz_asset_class(ticker in any::<String>(), price in any::<f64>()) {
        let class = AssetClass::of(&ticker);
        let _ = class.decimals(&ticker, price);
    }
}
