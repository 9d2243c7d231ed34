//! Any bytes as a stream of backend messages: framing and every parser (ErrorResponse, RowDescription,
//! DataRow, Authentication, Copy*Response, replication XLogData/keepalive) never panic.
#![no_main]

use cq_source_postgresql::wire::codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    codec::fuzz_all(data);
    // The payload of a CopyData as a replication message, and the auth channel-binding parser.
    let _ = codec::parse_replication_message(data);
    let _ = cq_source_postgresql::wire::auth::tls_server_end_point(data);
});
