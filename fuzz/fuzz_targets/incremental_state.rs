//! What an incremental sync reads from outside the process: state values from the destination
//! (`Position::from_json`), the server's snapshot text (`PgSnapshot::parse`) and the state
//! backend's `Read` records (`decode_state_rows`). Never a panic; a parsed position round-trips
//! and `plan_read` accepts it against any parsed snapshot.
#![no_main]

use cq_source_postgresql::incremental::{plan_read, CursorColumn, PgSnapshot, Position};
use cq_source_postgresql::source::state_client::decode_state_rows;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            let _ = decode_state_rows(rest);
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            // "position JSON\nsnapshot text"
            let (json, snapshot) = text.split_once('\n').unwrap_or((text, "1:1:"));
            let Ok(current) = PgSnapshot::parse(snapshot) else {
                return;
            };
            if let Ok(position) = Position::from_json(json) {
                assert_eq!(
                    Position::from_json(&position.to_json()).as_ref(),
                    Ok(&position)
                );
                let column = CursorColumn {
                    name: "c",
                    type_name: "text",
                };
                let _ = plan_read(
                    Some(&position),
                    &position.mode,
                    &position.scope,
                    &current,
                    Some(column),
                );
            }
        }
    }
});
