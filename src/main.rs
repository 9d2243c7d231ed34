//! Thin binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    cq_source_postgresql::plugin::cli::main()
}
