//! `destination_table_name`: the template that names each table at the destination.

use std::time::{SystemTime, UNIX_EPOCH};

/// The default template: destination names are the source names.
pub const DEFAULT_TABLE_TEMPLATE: &str = "{{TABLE}}";

/// One piece of a `destination_table_name` template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    Table,
    Uuid,
    Year,
    Month,
    Day,
    Hour,
    Minute,
}

impl Placeholder {
    pub const ALL: [(&'static str, Placeholder); 7] = [
        ("TABLE", Placeholder::Table),
        ("UUID", Placeholder::Uuid),
        ("YEAR", Placeholder::Year),
        ("MONTH", Placeholder::Month),
        ("DAY", Placeholder::Day),
        ("HOUR", Placeholder::Hour),
        ("MINUTE", Placeholder::Minute),
    ];

    fn is_time(self) -> bool {
        matches!(
            self,
            Placeholder::Year
                | Placeholder::Month
                | Placeholder::Day
                | Placeholder::Hour
                | Placeholder::Minute
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder(Placeholder),
}

/// `destination_table_name`: the name each table gets at the destination.
///
/// Placeholders: `{{TABLE}}` (the table's name), `{{UUID}}` (one random UUID per sync, written with
/// `_` instead of `-` so the name stays a plain identifier), `{{YEAR}}`, `{{MONTH}}`, `{{DAY}}`,
/// `{{HOUR}}`, `{{MINUTE}}` (sync start, UTC, zero-padded: 2026, 01, 09, 07, 05). The template
/// must contain `{{TABLE}}` or `{{UUID}}`; any other `{{…}}` is an error naming it. Text outside
/// placeholders is copied as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableNameTemplate {
    raw: String,
    parts: Vec<Part>,
}

impl Default for TableNameTemplate {
    fn default() -> Self {
        TableNameTemplate {
            raw: DEFAULT_TABLE_TEMPLATE.to_string(),
            parts: vec![Part::Placeholder(Placeholder::Table)],
        }
    }
}

impl TableNameTemplate {
    pub fn parse(s: &str) -> Result<TableNameTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            let (literal, after) = rest.split_at(start);
            if !literal.is_empty() {
                parts.push(Part::Literal(literal.to_string()));
            }
            let inner = after.get(2..).unwrap_or_default();
            let Some(end) = inner.find("}}") else {
                return Err(format!(
                    "has an unterminated placeholder at {:?}; placeholders are written {{{{NAME}}}}",
                    after
                ));
            };
            let name = inner.get(..end).unwrap_or_default();
            let Some((_, p)) = Placeholder::ALL.iter().find(|(n, _)| *n == name) else {
                return Err(format!(
                    "unknown placeholder {{{{{name}}}}}; the valid placeholders are {}",
                    Placeholder::ALL
                        .iter()
                        .map(|(n, _)| format!("{{{{{n}}}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            parts.push(Part::Placeholder(*p));
            rest = inner.get(end + 2..).unwrap_or_default();
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        let names_table = parts.iter().any(|p| {
            matches!(
                p,
                Part::Placeholder(Placeholder::Table) | Part::Placeholder(Placeholder::Uuid)
            )
        });
        if !names_table {
            return Err(format!(
                "must contain {{{{TABLE}}}} or {{{{UUID}}}} so that tables get distinct names, got {s:?}"
            ));
        }
        Ok(TableNameTemplate {
            raw: s.to_string(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// True for `{{TABLE}}`: destination names are the source names.
    pub fn is_identity(&self) -> bool {
        self.parts == [Part::Placeholder(Placeholder::Table)]
    }

    pub fn has_time_placeholders(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Placeholder(p) if p.is_time()))
    }

    pub fn render(&self, table: &str, now: UtcMinute, uuid: &uuid::Uuid) -> String {
        let mut out = String::with_capacity(self.raw.len() + table.len());
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Placeholder(Placeholder::Table) => out.push_str(table),
                Part::Placeholder(Placeholder::Uuid) => {
                    out.push_str(&uuid.hyphenated().to_string().replace('-', "_"))
                }
                Part::Placeholder(Placeholder::Year) => out.push_str(&format!("{:04}", now.year)),
                Part::Placeholder(Placeholder::Month) => out.push_str(&format!("{:02}", now.month)),
                Part::Placeholder(Placeholder::Day) => out.push_str(&format!("{:02}", now.day)),
                Part::Placeholder(Placeholder::Hour) => out.push_str(&format!("{:02}", now.hour)),
                Part::Placeholder(Placeholder::Minute) => {
                    out.push_str(&format!("{:02}", now.minute))
                }
            }
        }
        out
    }
}

/// A UTC calendar time to the minute, for the time placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcMinute {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
}

impl UtcMinute {
    /// From seconds since the Unix epoch (proleptic Gregorian calendar, UTC).
    pub fn from_unix_seconds(secs: i64) -> UtcMinute {
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        UtcMinute {
            year,
            month: month as u32,
            day: day as u32,
            hour: (of_day / 3600) as u32,
            minute: (of_day % 3600 / 60) as u32,
        }
    }

    pub fn from_system_time(t: SystemTime) -> UtcMinute {
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX / 2) - 1,
        };
        UtcMinute::from_unix_seconds(secs)
    }
}

/// Renders a destination table name: `now_utc` is the sync start, `uuid` the sync's UUID.
pub fn render_table_name(
    template: &TableNameTemplate,
    table: &str,
    now_utc: SystemTime,
    uuid: &uuid::Uuid,
) -> String {
    template.render(table, UtcMinute::from_system_time(now_utc), uuid)
}
