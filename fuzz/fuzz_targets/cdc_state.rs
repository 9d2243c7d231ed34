//! Arbitrary publication comments → `cdc::CdcState::parse`: never a panic; whatever parses
//! round-trips through the JSON the plugin writes.
#![no_main]

use cq_source_postgresql::cdc::CdcState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(state) = CdcState::parse("cq_fuzz", Some(text)) {
        let again = CdcState::parse("cq_fuzz", Some(&state.to_json()));
        assert_eq!(again.as_ref().ok(), Some(&state));
    }
});
