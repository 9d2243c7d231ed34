//! The CloudQuery plugin surface: command line, gRPC services, spec, unix-socket transport.

pub mod cli;
pub mod pb;
pub mod server;
pub mod service;
pub mod spec;
pub mod spec_schema;
pub mod transport;
