//! The keyword/value form of a connection string (`host=db port=5433 user='a b'`).

use super::{echo_if_name, Raw};
use crate::wire::error::ConfigError;

/// `key=value key2='quoted \' value'` (whitespace around `=` allowed, backslash escapes).
pub(super) fn parse_dsn(s: &str) -> Result<Raw, ConfigError> {
    let mut raw = Raw::default();
    let mut chars = s.chars().peekable();
    let mut previous_key = String::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            // A word without "=" right after a password is most likely the rest of an unquoted
            // password with a space in it: name the place, not the word.
            let word = if previous_key.contains("password") {
                format!("following the value of \"{previous_key}\" (quote values with spaces)")
            } else {
                echo_if_name(&key)
            };
            return Err(ConfigError::new(format!(
                "missing \"=\" after {word} in the connection string"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(ConfigError::new(format!(
                    "unterminated quoted value for \"{key}\" in the connection string"
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        if key.is_empty() {
            return Err(ConfigError::new(
                "empty key before \"=\" in the connection string",
            ));
        }
        raw.set(&key, value);
        previous_key = key;
    }
    Ok(raw)
}
