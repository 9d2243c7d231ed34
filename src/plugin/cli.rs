//! Command line of the plugin binary (placeholder until the plugin-surface issue lands).

use std::process::ExitCode;

pub fn main() -> ExitCode {
    eprintln!("cq-source-postgresql: the `serve` command is not implemented yet");
    ExitCode::FAILURE
}
