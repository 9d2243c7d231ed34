//! Any string: the connection-string parser returns a Config or an error, never panics, and
//! never echoes the password into the error or the redacted form.
#![no_main]

use cq_source_postgresql::wire::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let env = |k: &str| match k {
        "USER" => Some("fuzz".to_string()),
        "HOME" => Some("/nonexistent".to_string()),
        _ => None,
    };
    match Config::parse_with_env(s, &env) {
        Ok(cfg) => {
            let _ = cfg.redacted();
            let _ = format!("{cfg:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // The same text as a URL body exercises the URL parser too.
    let _ = Config::parse_with_env(&format!("postgres://{s}"), &env);
});
