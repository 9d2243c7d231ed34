//! The CloudQuery plugin surface: command line, gRPC services, unix-socket transport.
//!
//! - [`cli`]: `serve` flags as the CLI passes them, `--version`, `--help`, `cleanup-cdc`; and the
//!   connection-string check handed to the spec parser.
//! - [`server`]: runtime, listener (unix socket or TCP), signals, bounded shutdown.
//! - [`transport`]: the unix-socket `:authority` normaliser that lets h2 accept grpc-go's requests.
//! - [`service`]: discovery v1 and plugin v3 over the [`crate::source::Source`] API; the Sync
//!   stream maps the output channel's deliveries onto protobuf.
//!
//! The handlers hold no business logic: they translate protobuf to and from the source's types
//! ([`crate::source::api`], [`crate::source::spec::Spec`]) and [`crate::output::Delivery`].

pub mod cli;
pub mod server;
pub mod service;
pub mod transport;
