//! The test destination's own checks (canonical JSON, state application) and the CLI support's
//! summary parser, so they run in CI with the rest of the suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod support;

use support::{cli, destination};

#[test]
fn destination_selftest_passes() {
    let (ok, output) = destination::run_selftest();
    assert!(ok, "tests/destination/selftest.py failed:\n{output}");
}

#[test]
fn wrapper_is_executable() {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cli::DEST_PLUGIN)
        .expect("cq-dest-test")
        .permissions()
        .mode();
    assert!(mode & 0o111 != 0, "{} is not executable", cli::DEST_PLUGIN);
}

#[test]
fn parses_sync_summaries() {
    let console = "- Syncing resources... (7/-) [1s]   \rSync completed successfully. Resources: 7, Errors: 0, Warnings: 2, Time: 1s\n";
    assert_eq!(
        cli::parse_summary(console),
        Some(cli::SyncSummary {
            completed_ok: true,
            resources: 7,
            errors: 0,
            warnings: 2
        })
    );
    let with_errors = "Sync completed with errors, see logs for details. Resources: 12, Errors: 3, Warnings: 0, Time: 2s";
    assert_eq!(
        cli::parse_summary(with_errors),
        Some(cli::SyncSummary {
            completed_ok: false,
            resources: 12,
            errors: 3,
            warnings: 0
        })
    );
    let text_log = "2026-11-24T09:07:53Z INF Sync summary duration=1s errors=1 invocation_id=x module=cli resources=70 result=\"Sync completed successfully\" warnings=4";
    assert_eq!(
        cli::parse_summary(text_log),
        Some(cli::SyncSummary {
            completed_ok: true,
            resources: 70,
            errors: 1,
            warnings: 4
        })
    );
    let json_log = r#"{"level":"info","module":"cli","resources":7,"errors":0,"warnings":0,"duration":"1s","result":"Sync completed successfully","message":"Sync summary"}"#;
    assert_eq!(
        cli::parse_summary(json_log),
        Some(cli::SyncSummary {
            completed_ok: true,
            resources: 7,
            errors: 0,
            warnings: 0
        })
    );
    // the per-destination summary object (destination_errors=…) is not the final line
    assert_eq!(
        cli::parse_summary("INF Sync summary summary={\"destination_errors\":0}"),
        None
    );
}
