//! `ClientMessage::parse_msgpack` on any bytes, as the relay reads binary frames from a client that negotiated
//! `hamster.msgpack`: no panic (no stack overflow however deep the nesting), an accepted message round-trips
//! through MessagePack and through JSON to the same value, a refused one carries `bad_msgpack`, `unknown_type` or
//! `bad_message`.
#![no_main]

use hamster_shared::{ClientMessage, ErrorCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match ClientMessage::parse_msgpack(data) {
        Ok(message) => {
            let packed = message.to_msgpack().expect("client messages encode");
            assert_eq!(ClientMessage::parse_msgpack(&packed), Ok(message.clone()));
            let json = serde_json::to_string(&message).expect("client messages serialise");
            assert_eq!(ClientMessage::parse(&json), Ok(message));
        }
        Err(e) => {
            assert!(matches!(e.code, ErrorCode::BadMsgpack | ErrorCode::UnknownType | ErrorCode::BadMessage));
            assert!(!e.message.is_empty());
        }
    }
});
