//! The key/value table CloudQuery's state backend keeps, with the Go SDK's rules: on load the
//! highest `version` of each key wins (a NULL version counts as 0; on a tie the row read last),
//! so a destination that appends instead of upserting still works; setting a key to a new value
//! raises its version and marks it to be written; an unchanged value writes nothing.

use std::collections::{BTreeMap, HashMap};

/// One row of the state table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub key: String,
    pub value: String,
    pub version: u64,
}

#[derive(Debug, Default, Clone)]
pub struct StateTable {
    rows: HashMap<String, (String, u64)>,
    /// Keys set since the last [`StateTable::take_dirty`], in key order.
    dirty: BTreeMap<String, ()>,
}

impl StateTable {
    /// Builds the table from the rows a `Read` returned, in the order read.
    pub fn from_rows(rows: impl IntoIterator<Item = StateRow>) -> StateTable {
        let mut table = StateTable::default();
        for row in rows {
            let keep = match table.rows.get(&row.key) {
                Some((_, version)) => row.version >= *version,
                None => true,
            };
            if keep {
                table.rows.insert(row.key, (row.value, row.version));
            }
        }
        table
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.rows.get(key).map(|(v, _)| v.as_str())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Sets `key`; returns false (and marks nothing) when the value is unchanged.
    pub fn set(&mut self, key: &str, value: String) -> bool {
        let version = match self.rows.get(key) {
            Some((old, _)) if *old == value => return false,
            Some((_, version)) => version.saturating_add(1),
            None => 1,
        };
        self.rows.insert(key.to_string(), (value, version));
        self.dirty.insert(key.to_string(), ());
        true
    }

    /// The rows set since the last call, to be written.
    pub fn take_dirty(&mut self) -> Vec<StateRow> {
        let keys = std::mem::take(&mut self.dirty);
        keys.into_keys()
            .filter_map(|key| {
                let (value, version) = self.rows.get(&key)?.clone();
                Some(StateRow {
                    key,
                    value,
                    version,
                })
            })
            .collect()
    }

    /// Puts rows back as dirty after a failed write, so the next write retries them.
    pub fn restore_dirty(&mut self, rows: &[StateRow]) {
        for row in rows {
            self.dirty.insert(row.key.clone(), ());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, value: &str, version: u64) -> StateRow {
        StateRow {
            key: key.into(),
            value: value.into(),
            version,
        }
    }

    #[test]
    fn highest_version_wins_and_ties_go_to_the_last_row() {
        let t = StateTable::from_rows([
            row("a", "a1", 1),
            row("a", "a3", 3),
            row("a", "a2", 2),
            row("b", "b-first", 0),
            row("b", "b-last", 0),
        ]);
        assert_eq!(t.get("a"), Some("a3"));
        assert_eq!(t.get("b"), Some("b-last"));
        assert_eq!(t.get("c"), None);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn set_bumps_the_version_and_marks_only_changes() {
        let mut t = StateTable::from_rows([row("a", "x", 4)]);
        assert!(!t.set("a", "x".into()));
        assert!(t.take_dirty().is_empty());
        assert!(t.set("a", "y".into()));
        assert!(t.set("b", "z".into()));
        let dirty = t.take_dirty();
        assert_eq!(dirty, vec![row("a", "y", 5), row("b", "z", 1)]);
        assert!(t.take_dirty().is_empty());
        t.restore_dirty(&dirty);
        assert_eq!(t.take_dirty(), dirty);
    }
}
