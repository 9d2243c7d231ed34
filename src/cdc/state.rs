//! Where a CDC stream's progress lives: the COMMENT of its publication.
//!
//! The publication belongs to the plugin (it created it, so it owns it), a comment on it needs
//! no privilege beyond ownership, and `COMMENT ON` is transactional: the mark that a table's
//! backfill finished is written in the same transaction that can see the backfill's outcome, and
//! it disappears together with the publication (`DROP PUBLICATION`). No extra table is created
//! in the user's database.
//!
//! Content: `{"v":1,"backfilled":["public.users", …]}`: the tables (`schema.name`, unquoted)
//! whose initial sync completed while they were in the publication. A table that leaves the
//! publication (deselected, or dropped and re-created) loses its mark, see
//! [`CdcState::retain_published`], so it is backfilled again when it comes back.
//!
//! Recovery when the comment is damaged: the error says to run
//! `COMMENT ON PUBLICATION <name> IS NULL`, after which every table is backfilled once more
//! (duplicates are upserts at the destination, nothing is lost).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The format version this plugin writes and reads.
pub const STATE_VERSION: u32 = 1;

/// The progress of one CDC stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CdcState {
    /// `schema.name` of every table whose backfill completed.
    pub backfilled: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    v: u32,
    #[serde(default)]
    backfilled: Vec<String>,
}

/// A comment that is not this plugin's state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the CDC state in the comment of publication {publication} cannot be read ({detail}); \
     it is written by this plugin only. To start over (every table is backfilled once more), run: \
     COMMENT ON PUBLICATION {publication} IS NULL"
)]
pub struct StateError {
    pub publication: String,
    pub detail: String,
}

impl CdcState {
    /// Parse the publication's comment; `None` (no comment) or an empty comment is a fresh
    /// state.
    pub fn parse(publication: &str, comment: Option<&str>) -> Result<CdcState, StateError> {
        let err = |detail: String| StateError {
            publication: publication.to_string(),
            detail,
        };
        let Some(text) = comment.filter(|c| !c.trim().is_empty()) else {
            return Ok(CdcState::default());
        };
        let stored: Stored = serde_json::from_str(text).map_err(|e| {
            let preview: String = text.chars().take(60).collect();
            err(format!("not the expected JSON: {e}; it begins {preview:?}"))
        })?;
        if stored.v != STATE_VERSION {
            return Err(err(format!(
                "format version {} (this plugin reads version {STATE_VERSION}; a newer plugin \
                 may have written it)",
                stored.v
            )));
        }
        Ok(CdcState {
            backfilled: stored.backfilled.into_iter().collect(),
        })
    }

    /// The JSON text stored in the comment.
    pub fn to_json(&self) -> String {
        let stored = Stored {
            v: STATE_VERSION,
            backfilled: self.backfilled.iter().cloned().collect(),
        };
        // Serializing a struct of a number and strings cannot fail.
        serde_json::to_string(&stored).unwrap_or_else(|_| format!("{{\"v\":{STATE_VERSION}}}"))
    }

    pub fn is_backfilled(&self, table: &str) -> bool {
        self.backfilled.contains(table)
    }

    /// Drop the marks of tables that are not (any longer) in the publication: their changes
    /// were not captured while they were out, so they need a new backfill.
    pub fn retain_published<'a>(&mut self, published: impl IntoIterator<Item = &'a str>) {
        let published: BTreeSet<&str> = published.into_iter().collect();
        self.backfilled.retain(|t| published.contains(t.as_str()));
    }
}

/// The state key of a table: `schema.name`, unquoted (as `pg_publication_tables` lists it).
pub fn table_key(schema: &str, name: &str) -> String {
    format!("{schema}.{name}")
}

/// SQL returning one row with the comment (NULL when none) if the publication exists, no row
/// otherwise.
/// The publication's comment, the publication's name bound as `$1`.
pub const READ_STATE_SQL: &str = "SELECT obj_description(oid, 'pg_publication') \
     FROM pg_catalog.pg_publication WHERE pubname = $1";

/// SQL storing `state` as the publication's comment.
pub fn write_state_sql(publication: &str, state: &CdcState) -> String {
    format!(
        "COMMENT ON PUBLICATION {} IS {}",
        quote_ident(publication),
        quote_literal(&state.to_json())
    )
}

pub use crate::catalog::{quote_ident, quote_literal};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut s = CdcState::default();
        s.backfilled.insert("public.users".into());
        s.backfilled.insert("sales.o'd\"er\\s".into());
        let json = s.to_json();
        assert_eq!(
            json,
            r#"{"v":1,"backfilled":["public.users","sales.o'd\"er\\s"]}"#
        );
        assert_eq!(CdcState::parse("p", Some(&json)).unwrap(), s);
        assert_eq!(
            write_state_sql("cq_x", &s),
            r#"COMMENT ON PUBLICATION "cq_x" IS E'{"v":1,"backfilled":["public.users","sales.o''d\\"er\\\\s"]}'"#
        );
    }

    #[test]
    fn fresh_and_garbage() {
        assert_eq!(CdcState::parse("p", None).unwrap(), CdcState::default());
        assert_eq!(
            CdcState::parse("p", Some("  ")).unwrap(),
            CdcState::default()
        );
        let e = CdcState::parse("cq_x", Some("hello")).unwrap_err();
        assert!(
            e.to_string()
                .contains("COMMENT ON PUBLICATION cq_x IS NULL"),
            "{e}"
        );
        assert!(e.to_string().contains("\"hello\""), "{e}");
        let e = CdcState::parse("cq_x", Some(r#"{"v":2}"#)).unwrap_err();
        assert!(e.detail.contains("version 2"), "{e}");
        assert!(CdcState::parse("p", Some(r#"{"v":1,"backfilled":[1]}"#)).is_err());
        assert!(CdcState::parse("p", Some(r#"[]"#)).is_err());
        assert_eq!(
            CdcState::parse("p", Some(r#"{"v":1}"#)).unwrap(),
            CdcState::default()
        );
    }

    #[test]
    fn retain() {
        let mut s = CdcState::default();
        s.backfilled.insert("public.a".into());
        s.backfilled.insert("public.b".into());
        s.retain_published(["public.b", "public.c"]);
        assert!(!s.is_backfilled("public.a"));
        assert!(s.is_backfilled("public.b"));
    }
}
