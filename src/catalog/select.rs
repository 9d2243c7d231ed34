//! Table selection: the CloudQuery SDK's `tables` / `skip_tables` rules.
//!
//! `*` is the only wildcard (any run of characters, possibly empty), matching is case-sensitive and
//! a skip pattern wins over an include pattern. One deliberate difference from the SDK: a pattern
//! that matches nothing is reported back to the caller (who logs a warning) instead of failing the
//! whole sync, so one renamed table does not stop every other table from syncing.

/// Matches `name` against a glob where `*` is the only wildcard.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, rest) = (parts[0], &parts[1..]);
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let (last, middle) = match rest.split_last() {
        Some(split) => split,
        None => return remaining.is_empty(),
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// The outcome of applying `tables` / `skip_tables` to the discovered names.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Selection {
    /// Indexes into the input names, in input order.
    pub selected: Vec<usize>,
    /// `tables` patterns that matched no table.
    pub unmatched_tables: Vec<String>,
    /// `skip_tables` patterns that matched no table.
    pub unmatched_skips: Vec<String>,
}

pub(crate) fn select<S: AsRef<str>>(
    names: &[S],
    tables: &[String],
    skip_tables: &[String],
) -> Selection {
    let matches_any =
        |patterns: &[String], name: &str| patterns.iter().any(|p| glob_match(p, name));
    let unmatched = |patterns: &[String]| -> Vec<String> {
        patterns
            .iter()
            .filter(|p| !names.iter().any(|n| glob_match(p, n.as_ref())))
            .cloned()
            .collect()
    };
    let selected = names
        .iter()
        .enumerate()
        .filter(|(_, n)| matches_any(tables, n.as_ref()) && !matches_any(skip_tables, n.as_ref()))
        .map(|(i, _)| i)
        .collect();
    Selection {
        selected,
        unmatched_tables: unmatched(tables),
        unmatched_skips: unmatched(skip_tables),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_rules() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("*", ""));
        assert!(glob_match("users", "users"));
        assert!(!glob_match("users", "Users"));
        assert!(!glob_match("users", "users2"));
        assert!(glob_match("sales.*", "sales.orders"));
        assert!(!glob_match("sales.*", "public_sales.orders"));
        assert!(glob_match("*_log", "audit_log"));
        assert!(!glob_match("*_log", "audit_log2"));
        assert!(glob_match("a*b*c", "abc"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxcyyb"));
        assert!(glob_match("a**", "a"));
        assert!(
            !glob_match("ab*ba", "aba"),
            "prefix and suffix may not overlap"
        );
        assert!(glob_match("", ""));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn skip_wins_and_unmatched_patterns_are_reported() {
        let names = ["users", "orders", "products", "sales.orders"];
        let s = select(
            &names,
            &["users".into(), "*orders".into(), "missing".into()],
            &["sales.*".into(), "nothing*".into()],
        );
        assert_eq!(s.selected, vec![0, 1]);
        assert_eq!(s.unmatched_tables, vec!["missing".to_string()]);
        assert_eq!(s.unmatched_skips, vec!["nothing*".to_string()]);
    }
}
