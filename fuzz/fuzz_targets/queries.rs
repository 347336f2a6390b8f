//! A request's query string as axum's `Query` extractor reads it (`serde_urlencoded`)
//! into the query structs of `GET /api/v1/topics/{topic}/history`, `GET /api/v1/topics`
//! (server/src/api/topics.rs) and `GET /api/v1/workflows` (api/listing.rs), and the
//! latter's checks: its `state` filter and its `cursor`, which must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::api::listing::{decode_cursor, encode_cursor, filter, ListQuery};
use server::api::topics::{HistoryQuery, TopicsQuery};

fuzz_target!(|data: &[u8]| {
    // the query of a URI: text (percent-escapes decode to any bytes, lossily)
    let Ok(query) = std::str::from_utf8(data) else { return };
    let _ = serde_urlencoded::from_str::<HistoryQuery>(query);
    let _ = serde_urlencoded::from_str::<TopicsQuery>(query);
    let Ok(list) = serde_urlencoded::from_str::<ListQuery>(query) else { return };
    let _ = filter(&list);
    // ListQuery's fields are private: its `cursor` read again as a pair
    let Ok(pairs) = serde_urlencoded::from_str::<Vec<(String, String)>>(query) else { return };
    for (_, cursor) in pairs.iter().filter(|(k, _)| k == "cursor") {
        if let Ok(c) = decode_cursor(cursor) {
            let again = encode_cursor(&c);
            match decode_cursor(&again) {
                Ok(back) => assert_eq!(back, c, "{cursor:?} -> {again:?}"),
                Err(e) => panic!("{cursor:?} decoded to {c:?}, whose encoding {again:?} does not decode: {}", e.message),
            }
        }
    }
});
