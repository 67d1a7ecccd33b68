//! `Symbol::parse` and `split_list` on any bytes: no panic; an accepted symbol is within the length limit and
//! parsing its canonical text gives it back.
#![no_main]

use hamster_shared::symbol::split_list;
use hamster_shared::{Symbol, MAX_SYMBOL_LEN};
use libfuzzer_sys::fuzz_target;

fn check(raw: &str) {
    if let Ok(symbol) = Symbol::parse(raw) {
        assert!(symbol.as_str().chars().count() <= MAX_SYMBOL_LEN);
        assert_eq!(Symbol::parse(symbol.as_str()), Ok(symbol.clone()));
        assert_eq!(Symbol::parse(&raw.to_ascii_lowercase()), Ok(symbol));
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&text);
    for item in split_list(&text) {
        check(item);
    }
});
