//! A WebSocket text frame from a client, through what the server does with it
//! (server/src/hub/connection.rs `handle_text`, hub/dispatch.rs): the parser, the error
//! reply it sends for a bad frame, and the topic checks of a good one.
#![no_main]

use app::protocol::{parse_client_message, ClientMessage, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // a text frame is UTF-8 (the WebSocket layer refuses one that is not)
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_client_message(text) {
        Err(err) => {
            // the reply, with `original_message` (the raw text cut at a char boundary)
            let _ = ServerMessage::Error(*err).to_json();
        }
        Ok(env) => {
            // what `admit` and `error_for` echo back
            let _ = serde_json::to_value(&env);
            // what dispatch checks before it touches the hub
            match &env.msg {
                ClientMessage::Subscribe { topic, .. } | ClientMessage::Unsubscribe { topic } => {
                    let _ = server::hub::check_topic(topic);
                }
                ClientMessage::Publish { topic, data, .. } => {
                    let _ = server::hub::check_topic(topic);
                    let _ = server::hub::publish_refusal(&server::auth::Principal::open(), topic);
                    let _ = serde_json::value::to_raw_value(data);
                }
                _ => {}
            }
            // a message the clients serialize (ClientEnvelope::to_json) parses again
            let again = env.to_json();
            if let Err(e) = parse_client_message(&again) {
                panic!("{text:?} parsed, but its own serialization {again:?} does not: {e:?}");
            }
        }
    }
});
