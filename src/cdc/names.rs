//! The names of a CDC stream's server objects, derived from the spec's `cdc_id`.
//!
//! Rule (documented in the README): take `cdc_id`, lower-case its ASCII letters, replace every
//! `-` with `_`, and prefix `cq_`. The result names both the replication slot and the
//! publication (slots and publications live in separate namespaces). `cdc_id` must be 1 to 60
//! characters of ASCII letters, digits, `_` and `-`, so that the name is a valid replication
//! slot name (lower-case letters, digits and `_`, at most 63 bytes) and needs no quoting.
//!
//! Consequences: two sources with different `cdc_id`s never share a slot or publication, unless
//! their ids differ only in letter case or in `-` versus `_` (`My-Source` and `my_source` are
//! the same stream by this rule). The `cq_` prefix keeps the plugin's objects apart from
//! publications and slots created by people or other tools.

/// Prefix of every slot and publication this plugin creates.
pub const NAME_PREFIX: &str = "cq_";
/// PostgreSQL identifiers (NAMEDATALEN − 1) and slot names are at most 63 bytes.
pub const MAX_NAME_LEN: usize = 63;
/// Longest accepted `cdc_id`.
pub const MAX_CDC_ID_LEN: usize = MAX_NAME_LEN - NAME_PREFIX.len();

/// The replication slot and publication of one `cdc_id`. Both are valid unquoted identifiers,
/// so they can be written into SQL and replication commands as they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdcNames {
    pub slot: String,
    pub publication: String,
}

/// A valid `cdc_id` and the names derived from it: the one place that states the rule. The
/// spec holds one; the JSON schema's pattern is [`CdcId::json_pattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdcId {
    given: String,
    names: CdcNames,
}

/// A `cdc_id` that breaks the rule; the message states the rule and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} ({problem})", CdcId::RULE)]
pub struct CdcIdError {
    pub problem: String,
}

impl CdcId {
    pub const RULE: &'static str = "must consist of ASCII letters, digits, '_' and '-' \
        (lower-cased, '-' becomes '_') and be at most 60 characters, so that the replication \
        slot name cq_<cdc_id> is valid";

    pub fn parse(cdc_id: &str) -> Result<CdcId, CdcIdError> {
        let problem = |problem: String| Err(CdcIdError { problem });
        if cdc_id.is_empty() {
            return problem("it is empty".into());
        }
        if let Some(bad) = cdc_id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return problem(format!("{cdc_id:?} contains {bad:?}"));
        }
        if cdc_id.len() > MAX_CDC_ID_LEN {
            return problem(format!("{cdc_id:?} has {} characters", cdc_id.len()));
        }
        let name: String = NAME_PREFIX
            .chars()
            .chain(cdc_id.chars().map(|c| match c {
                '-' => '_',
                c => c.to_ascii_lowercase(),
            }))
            .collect();
        Ok(CdcId {
            given: cdc_id.to_string(),
            names: CdcNames {
                slot: name.clone(),
                publication: name,
            },
        })
    }

    /// The rule as a JSON-schema pattern; the empty string (CDC off) also matches.
    pub fn json_pattern() -> String {
        format!("^(?:[A-Za-z0-9_-]{{1,{MAX_CDC_ID_LEN}}})?$")
    }

    /// The id as written in the spec.
    pub fn as_str(&self) -> &str {
        &self.given
    }

    pub fn names(&self) -> &CdcNames {
        &self.names
    }

    /// The replication slot: `cq_` + the normalised id.
    pub fn slot_name(&self) -> &str {
        &self.names.slot
    }

    /// The publication: same name as the slot.
    pub fn publication_name(&self) -> &str {
        &self.names.publication
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_valid_names() {
        let n = CdcId::parse("My-Source_2").unwrap();
        assert_eq!(n.slot_name(), "cq_my_source_2");
        assert_eq!(n.publication_name(), "cq_my_source_2");
        assert_eq!(n.as_str(), "My-Source_2");
        let long = "a".repeat(MAX_CDC_ID_LEN);
        assert_eq!(CdcId::parse(&long).unwrap().slot_name().len(), MAX_NAME_LEN);
        assert_eq!(CdcId::parse("0").unwrap().slot_name(), "cq_0");
    }

    #[test]
    fn rejects_with_the_rule() {
        for bad in ["", "a b", "{{YEAR}}", "é", "a.b", "a\"b", "x;drop"] {
            let e = CdcId::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with(CdcId::RULE), "{e}");
        }
        let e = CdcId::parse(&"a".repeat(MAX_CDC_ID_LEN + 1)).unwrap_err();
        assert!(e.problem.contains("61 characters"), "{e}");
    }

    #[test]
    fn every_accepted_name_is_a_valid_slot_name() {
        for id in ["A", "a-b", "Z_9-x", "--", "__"] {
            let n = CdcId::parse(id).unwrap();
            assert!(n.slot_name().len() <= MAX_NAME_LEN);
            assert!(n
                .slot_name()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
    }
}
