//! `ClientMessage::parse` on any bytes (read as lossy UTF-8, as the relay reads text frames): no panic, an
//! accepted message round-trips, a refused one carries one of the three parse error codes.
#![no_main]

use hamster_shared::{ClientMessage, ErrorCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match ClientMessage::parse(&text) {
        Ok(message) => {
            let again = serde_json::to_string(&message).expect("client messages serialise");
            assert_eq!(ClientMessage::parse(&again), Ok(message));
        }
        Err(e) => assert!(matches!(e.code, ErrorCode::BadJson | ErrorCode::UnknownType | ErrorCode::BadMessage)),
    }
});
