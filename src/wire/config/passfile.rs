//! The password file (`~/.pgpass`, `passfile`, `PGPASSFILE`): read per host at connect time, as
//! libpq does, so a password changed in the file is picked up by the next connection.

use std::path::Path;

/// Reads a passfile if it is a regular file not readable by group or others (libpq's rule:
/// otherwise it is ignored with a warning).
pub(super) fn read_passfile(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            crate::wire_log!(
                crate::logging::Level::Warn,
                "password file has group or world access; permissions should be u=rw (0600) or less; ignoring it",
                path = path.display().to_string()
            );
            return None;
        }
    }
    std::fs::read_to_string(path).ok()
}

/// The password of the first passfile line matching `host:port:db:user` (`*` matches anything;
/// `\:` and `\\` escape). Pure: the unit-testable half of the passfile.
pub(crate) fn passfile_lookup(
    contents: &str,
    host: &str,
    port: u16,
    db: &str,
    user: &str,
) -> Option<String> {
    let port = port.to_string();
    for line in contents.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_passfile_line(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = |pattern: &(String, bool), value: &str| {
            (pattern.0 == "*" && !pattern.1) || pattern.0 == value
        };
        if matches(&fields[0], host)
            && matches(&fields[1], &port)
            && matches(&fields[2], db)
            && matches(&fields[3], user)
        {
            return Some(fields[4].0.clone());
        }
    }
    None
}

/// Splits on unescaped `:`; each field with a flag saying whether it contained an escape (so a
/// literal `\*` does not act as a wildcard).
fn split_passfile_line(line: &str) -> Vec<(String, bool)> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    escaped = true;
                }
            }
            ':' if fields.len() < 4 => {
                fields.push((std::mem::take(&mut cur), escaped));
                escaped = false;
            }
            // The password ends at the next unescaped colon, as in libpq.
            ':' => break,
            c => cur.push(c),
        }
    }
    fields.push((cur, escaped));
    fields
}
