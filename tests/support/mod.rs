//! Shared support for the integration tests: real PostgreSQL clusters (and, later, the CLI and
//! the test destination). Each test binary includes it with `mod support;`.

// Every test binary compiles this module but uses only part of it.
#![allow(dead_code)]

pub mod cli;
pub mod destination;
pub mod pg;
