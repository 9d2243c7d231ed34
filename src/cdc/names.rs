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

/// Derive the names per the module's rule, or explain the rule in the error.
pub fn cdc_names(cdc_id: &str) -> Result<CdcNames, String> {
    let rule = format!(
        "cdc_id must be 1 to {MAX_CDC_ID_LEN} characters of ASCII letters, digits, '_' and '-' \
         (the replication slot and publication are named {NAME_PREFIX}<cdc_id lower-cased, '-' \
         replaced by '_'>)"
    );
    if cdc_id.is_empty() {
        return Err(format!("{rule}; it is empty"));
    }
    if let Some(bad) = cdc_id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!("{rule}; {cdc_id:?} contains {bad:?}"));
    }
    if cdc_id.len() > MAX_CDC_ID_LEN {
        return Err(format!(
            "{rule}; {cdc_id:?} has {} characters",
            cdc_id.len()
        ));
    }
    let name: String = NAME_PREFIX
        .chars()
        .chain(cdc_id.chars().map(|c| match c {
            '-' => '_',
            c => c.to_ascii_lowercase(),
        }))
        .collect();
    Ok(CdcNames {
        slot: name.clone(),
        publication: name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_valid_names() {
        let n = cdc_names("My-Source_2").unwrap();
        assert_eq!(n.slot, "cq_my_source_2");
        assert_eq!(n.publication, "cq_my_source_2");
        let long = "a".repeat(MAX_CDC_ID_LEN);
        assert_eq!(cdc_names(&long).unwrap().slot.len(), MAX_NAME_LEN);
        assert_eq!(cdc_names("0").unwrap().slot, "cq_0");
    }

    #[test]
    fn rejects_with_the_rule() {
        for bad in ["", "a b", "{{YEAR}}", "é", "a.b", "a\"b", "x;drop"] {
            let e = cdc_names(bad).unwrap_err();
            assert!(e.contains("cdc_id must be"), "{e}");
        }
        let e = cdc_names(&"a".repeat(MAX_CDC_ID_LEN + 1)).unwrap_err();
        assert!(e.contains("61 characters"), "{e}");
    }

    #[test]
    fn every_accepted_name_is_a_valid_slot_name() {
        for id in ["A", "a-b", "Z_9-x", "--", "__"] {
            let n = cdc_names(id).unwrap();
            assert!(n.slot.len() <= MAX_NAME_LEN);
            assert!(n
                .slot
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
    }
}
