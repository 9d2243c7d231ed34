//! The metadata keys of CloudQuery's Arrow schemas (the Go plugin SDK's `schema/arrow.go` and
//! `schema/table.go`), and Arrow's extension-type keys, in one place.

/// The key arrow-go (and so the CloudQuery CLI) reads extension types from.
pub const EXTENSION_NAME_KEY: &str = "ARROW:extension:name";
/// Must be exactly `<name>-serialized` or the CLI rejects the IPC stream.
pub const EXTENSION_METADATA_KEY: &str = "ARROW:extension:metadata";

/// Field-level keys.
pub const CQ_PRIMARY_KEY: &str = "cq:extension:primary_key";
pub const CQ_UNIQUE: &str = "cq:extension:unique";
pub const CQ_INCREMENTAL: &str = "cq:extension:incremental";
pub const CQ_PRIMARY_KEY_COMPONENT: &str = "cq:extension:primary_key_component";
pub const CQ_TYPE_SCHEMA: &str = "cq:extension:type_schema";

/// Schema-level keys.
pub const TABLE_NAME: &str = "cq:table_name";
pub const TABLE_TITLE: &str = "cq:table_title";
pub const TABLE_DESCRIPTION: &str = "cq:table_description";
pub const CONSTRAINT_NAME: &str = "cq:extension:constraint_name";
pub const TABLE_PERMISSIONS_NEEDED: &str = "cq:table_permissions_needed";
pub const TABLE_SENSITIVE_COLUMNS: &str = "cq:table_sensitive_columns";
