//! Arrow schemas with the CloudQuery metadata (extension names, `cq:` keys) of each column.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};

use crate::catalog::Table;
use crate::decode::types::cq_field;

pub(crate) use crate::decode::metadata::{
    CONSTRAINT_NAME, TABLE_DESCRIPTION, TABLE_NAME, TABLE_TITLE,
};

/// The schema CloudQuery sees for `table`, named `dest_name` (after `destination_table_name`).
pub fn arrow_schema(table: &Table, dest_name: &str) -> SchemaRef {
    let fields: Vec<_> = table
        .columns
        .iter()
        .map(|c| cq_field(&c.name, &c.pg_type, !c.not_null, c.primary_key, c.unique))
        .collect();
    let metadata = HashMap::from([
        (TABLE_NAME.to_string(), dest_name.to_string()),
        (TABLE_TITLE.to_string(), String::new()),
        (TABLE_DESCRIPTION.to_string(), table.comment.clone()),
        (CONSTRAINT_NAME.to_string(), table.pk_constraint.clone()),
    ]);
    Arc::new(Schema::new_with_metadata(fields, metadata))
}
