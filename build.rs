//! Generates the gRPC code for CloudQuery's plugin v3 and discovery v1 protocols.
//!
//! `protox` (pure Rust) compiles `proto/**.proto` to a file descriptor set, so the build needs no
//! system `protoc`; `tonic-prost-build` turns it into messages, servers and clients under `OUT_DIR`
//! (included by `src/plugin/pb.rs`). The well-known `google/protobuf/timestamp.proto` ships with
//! protox and maps to `prost_types::Timestamp`.

use std::error::Error;

const PROTOS: [&str; 2] = [
    "proto/plugin/v3/plugin.proto",
    "proto/discovery/v1/discovery.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
