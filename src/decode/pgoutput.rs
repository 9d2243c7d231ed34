//! pgoutput logical replication messages (the payload of an XLogData message), parsed into
//! views that borrow the input: no copies, no allocation.
//!
//! Covers protocol version 1 (Begin, Commit, Origin, Relation, Type, Insert, Update, Delete,
//! Truncate, Message) and the version 2 streaming additions (Stream Start/Stop/Commit/Abort,
//! and the transaction id that prefixes Relation, Type, Insert, Update, Delete, Truncate and
//! Message inside a streamed block). Whether a message sits inside a streamed block is state
//! the caller tracks (between Stream Start and Stream Stop): use [`parse_streamed`] there and
//! [`parse`] everywhere else. Version 3 (two-phase) messages are reported as unknown.
//!
//! Strings (names) are validated as UTF-8 (the plugin connects with client_encoding=UTF8);
//! tuple values are handed out as raw byte slices in the format pgoutput chose (text, or
//! binary with the `binary` option).

use super::buf::Buf;
use super::error::DecodeError;

pub use crate::wire::Lsn;
/// Microseconds since 2000-01-01 UTC (PostgreSQL's TimestampTz).
pub type PgTimestamp = i64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgOutputMessage<'a> {
    Begin(Begin),
    Commit(Commit),
    Origin(Origin<'a>),
    Relation(Relation<'a>),
    Type(TypeMessage<'a>),
    Insert(Insert<'a>),
    Update(Update<'a>),
    Delete(Delete<'a>),
    Truncate(Truncate<'a>),
    Message(LogicalMessage<'a>),
    StreamStart(StreamStart),
    StreamStop,
    StreamCommit(StreamCommit),
    StreamAbort(StreamAbort),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Begin {
    /// LSN of the commit record of the transaction.
    pub final_lsn: Lsn,
    pub commit_time: PgTimestamp,
    pub xid: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commit {
    pub flags: u8,
    pub commit_lsn: Lsn,
    /// End of the commit record: the LSN to acknowledge once the transaction is durable.
    pub end_lsn: Lsn,
    pub commit_time: PgTimestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    pub commit_lsn: Lsn,
    pub name: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relation<'a> {
    /// Present only inside a streamed transaction.
    pub xid: Option<u32>,
    pub id: u32,
    pub namespace: &'a str,
    pub name: &'a str,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    column_count: u16,
    columns: &'a [u8],
}

/// One column of a [`Relation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelationColumn<'a> {
    /// Bit 0 (value 1): the column is part of the replica identity key.
    pub flags: u8,
    pub name: &'a str,
    pub type_oid: u32,
    pub type_modifier: i32,
}

impl RelationColumn<'_> {
    pub(crate) fn is_key(&self) -> bool {
        self.flags & 1 != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeMessage<'a> {
    pub xid: Option<u32>,
    pub oid: u32,
    pub namespace: &'a str,
    pub name: &'a str,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insert<'a> {
    pub xid: Option<u32>,
    pub relation_id: u32,
    pub new: TupleData<'a>,
}

/// Which old row image an Update or Delete carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OldKind {
    /// `K`: the replica identity key columns only (others null).
    Key,
    /// `O`: the whole old row (REPLICA IDENTITY FULL).
    Old,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Update<'a> {
    pub xid: Option<u32>,
    pub relation_id: u32,
    /// Present when the key changed (`K`) or under REPLICA IDENTITY FULL (`O`).
    pub old: Option<(OldKind, TupleData<'a>)>,
    pub new: TupleData<'a>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delete<'a> {
    pub xid: Option<u32>,
    pub relation_id: u32,
    pub old: (OldKind, TupleData<'a>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncate<'a> {
    pub xid: Option<u32>,
    /// Bit 0: CASCADE; bit 1: RESTART IDENTITY.
    pub options: u8,
    relation_count: u32,
    relation_ids: &'a [u8],
}

impl<'a> Truncate<'a> {
    pub fn cascade(&self) -> bool {
        self.options & 1 != 0
    }

    pub fn restart_identity(&self) -> bool {
        self.options & 2 != 0
    }

    pub fn relation_count(&self) -> usize {
        self.relation_count as usize
    }

    pub fn relation_ids(&self) -> impl Iterator<Item = u32> + 'a {
        self.relation_ids
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// A `pg_logical_emit_message` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogicalMessage<'a> {
    pub xid: Option<u32>,
    /// Bit 0: transactional.
    pub flags: u8,
    pub lsn: Lsn,
    pub prefix: &'a str,
    pub content: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamStart {
    pub xid: u32,
    pub first_segment: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamCommit {
    pub xid: u32,
    pub flags: u8,
    pub commit_lsn: Lsn,
    pub end_lsn: Lsn,
    pub commit_time: PgTimestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamAbort {
    pub xid: u32,
    pub subtransaction_xid: u32,
    /// Protocol version 4 (parallel apply) only.
    pub abort_lsn: Option<Lsn>,
    pub abort_time: Option<PgTimestamp>,
}

/// The columns of a row image, validated at parse time; iterate with [`TupleData::iter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TupleData<'a> {
    column_count: u16,
    data: &'a [u8],
}

/// One column of a [`TupleData`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TupleValue<'a> {
    /// `n`
    Null,
    /// `u`: an unchanged TOASTed value whose bytes were not sent.
    UnchangedToast,
    /// `t`: the value in text format.
    Text(&'a [u8]),
    /// `b`: the value in binary (send) format.
    Binary(&'a [u8]),
}

impl<'a> TupleData<'a> {
    pub fn len(&self) -> usize {
        usize::from(self.column_count)
    }

    pub fn is_empty(&self) -> bool {
        self.column_count == 0
    }

    /// The size of the columns in the message (kinds, lengths and values), in bytes.
    pub(crate) fn byte_len(&self) -> usize {
        self.data.len()
    }

    pub fn iter(&self) -> TupleIter<'a> {
        TupleIter {
            buf: Buf::new(self.data),
            left: self.column_count,
        }
    }

    /// Read the column count and walk every column, so iteration cannot fail later.
    fn parse(r: &mut Buf<'a>) -> Result<TupleData<'a>, DecodeError> {
        let count = r.i16("pgoutput tuple column count")?;
        let column_count = u16::try_from(count).map_err(|_| DecodeError::Invalid {
            what: "pgoutput tuple column count",
            expected: "a count ≥ 0",
            found: i64::from(count),
        })?;
        let start = *r;
        for _ in 0..column_count {
            read_value(r)?;
        }
        let used = start.remaining() - r.remaining();
        let data = Buf::new(start_bytes(start)).take(used, "pgoutput tuple")?;
        Ok(TupleData { column_count, data })
    }
}

impl<'a> IntoIterator for TupleData<'a> {
    type Item = TupleValue<'a>;
    type IntoIter = TupleIter<'a>;

    fn into_iter(self) -> TupleIter<'a> {
        self.iter()
    }
}

/// The bytes a cursor has not consumed yet (without consuming them in the caller's copy).
fn start_bytes(mut b: Buf<'_>) -> &[u8] {
    b.take_rest()
}

/// Iterates over the columns of a [`TupleData`].
#[derive(Clone, Debug)]
pub struct TupleIter<'a> {
    buf: Buf<'a>,
    left: u16,
}

impl<'a> Iterator for TupleIter<'a> {
    type Item = TupleValue<'a>;

    fn next(&mut self) -> Option<TupleValue<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // The data was validated when the tuple was parsed, so this does not fail.
        read_value(&mut self.buf).ok()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

fn read_value<'a>(r: &mut Buf<'a>) -> Result<TupleValue<'a>, DecodeError> {
    match r.u8("pgoutput tuple column kind")? {
        b'n' => Ok(TupleValue::Null),
        b'u' => Ok(TupleValue::UnchangedToast),
        kind @ (b't' | b'b') => {
            let len = r.i32("pgoutput tuple value length")?;
            let len = usize::try_from(len).map_err(|_| DecodeError::Invalid {
                what: "pgoutput tuple value length",
                expected: "a length ≥ 0",
                found: i64::from(len),
            })?;
            let bytes = r.take(len, "pgoutput tuple value")?;
            Ok(if kind == b't' {
                TupleValue::Text(bytes)
            } else {
                TupleValue::Binary(bytes)
            })
        }
        other => Err(DecodeError::Invalid {
            what: "pgoutput tuple column kind",
            expected: "'n', 'u', 't' or 'b'",
            found: i64::from(other),
        }),
    }
}

impl<'a> Relation<'a> {
    pub fn column_count(&self) -> usize {
        usize::from(self.column_count)
    }

    pub fn columns(&self) -> impl Iterator<Item = RelationColumn<'a>> + 'a {
        let mut r = Buf::new(self.columns);
        // Validated at parse time, so reading stops only at the end.
        (0..self.column_count).map_while(move |_| read_relation_column(&mut r).ok())
    }
}

fn read_relation_column<'a>(r: &mut Buf<'a>) -> Result<RelationColumn<'a>, DecodeError> {
    Ok(RelationColumn {
        flags: r.u8("pgoutput relation column flags")?,
        name: r.cstr("pgoutput relation column name")?,
        type_oid: r.u32("pgoutput relation column type")?,
        type_modifier: r.i32("pgoutput relation column typmod")?,
    })
}

/// Parse a message outside a streamed transaction.
pub fn parse(bytes: &[u8]) -> Result<PgOutputMessage<'_>, DecodeError> {
    parse_message(bytes, false)
}

/// Parse a message inside a streamed transaction (between Stream Start and Stream Stop), where
/// data messages carry the transaction id first.
pub fn parse_streamed(bytes: &[u8]) -> Result<PgOutputMessage<'_>, DecodeError> {
    parse_message(bytes, true)
}

fn parse_message(bytes: &[u8], streamed: bool) -> Result<PgOutputMessage<'_>, DecodeError> {
    let mut r = Buf::new(bytes);
    let tag = r.u8("pgoutput message type")?;
    let xid = |r: &mut Buf<'_>| -> Result<Option<u32>, DecodeError> {
        if streamed {
            r.u32("pgoutput transaction id").map(Some)
        } else {
            Ok(None)
        }
    };
    let message = match tag {
        b'B' => PgOutputMessage::Begin(Begin {
            final_lsn: Lsn::new(r.u64("pgoutput begin final lsn")?),
            commit_time: r.i64("pgoutput begin commit time")?,
            xid: r.u32("pgoutput begin xid")?,
        }),
        b'C' => PgOutputMessage::Commit(Commit {
            flags: r.u8("pgoutput commit flags")?,
            commit_lsn: Lsn::new(r.u64("pgoutput commit lsn")?),
            end_lsn: Lsn::new(r.u64("pgoutput commit end lsn")?),
            commit_time: r.i64("pgoutput commit time")?,
        }),
        b'O' => PgOutputMessage::Origin(Origin {
            commit_lsn: Lsn::new(r.u64("pgoutput origin lsn")?),
            name: r.cstr("pgoutput origin name")?,
        }),
        b'R' => {
            let xid = xid(&mut r)?;
            let id = r.u32("pgoutput relation id")?;
            let namespace = r.cstr("pgoutput relation namespace")?;
            let name = r.cstr("pgoutput relation name")?;
            let replica_identity = r.u8("pgoutput relation replica identity")?;
            let count = r.i16("pgoutput relation column count")?;
            let column_count = u16::try_from(count).map_err(|_| DecodeError::Invalid {
                what: "pgoutput relation column count",
                expected: "a count ≥ 0",
                found: i64::from(count),
            })?;
            let columns = r.take_rest();
            let mut check = Buf::new(columns);
            for _ in 0..column_count {
                read_relation_column(&mut check)?;
            }
            check.finish("pgoutput relation")?;
            PgOutputMessage::Relation(Relation {
                xid,
                id,
                namespace,
                name,
                replica_identity,
                column_count,
                columns,
            })
        }
        b'Y' => PgOutputMessage::Type(TypeMessage {
            xid: xid(&mut r)?,
            oid: r.u32("pgoutput type oid")?,
            namespace: r.cstr("pgoutput type namespace")?,
            name: r.cstr("pgoutput type name")?,
        }),
        b'I' => {
            let xid = xid(&mut r)?;
            let relation_id = r.u32("pgoutput insert relation id")?;
            expect_tag(&mut r, b'N', "pgoutput insert tuple marker")?;
            PgOutputMessage::Insert(Insert {
                xid,
                relation_id,
                new: TupleData::parse(&mut r)?,
            })
        }
        b'U' => {
            let xid = xid(&mut r)?;
            let relation_id = r.u32("pgoutput update relation id")?;
            let mut old = None;
            let mut marker = r.u8("pgoutput update tuple marker")?;
            if let Some(kind) = old_kind(marker) {
                old = Some((kind, TupleData::parse(&mut r)?));
                marker = r.u8("pgoutput update tuple marker")?;
            }
            if marker != b'N' {
                return Err(DecodeError::Invalid {
                    what: "pgoutput update tuple marker",
                    expected: "'N' (after an optional 'K' or 'O' tuple)",
                    found: i64::from(marker),
                });
            }
            PgOutputMessage::Update(Update {
                xid,
                relation_id,
                old,
                new: TupleData::parse(&mut r)?,
            })
        }
        b'D' => {
            let xid = xid(&mut r)?;
            let relation_id = r.u32("pgoutput delete relation id")?;
            let marker = r.u8("pgoutput delete tuple marker")?;
            let kind = old_kind(marker).ok_or(DecodeError::Invalid {
                what: "pgoutput delete tuple marker",
                expected: "'K' or 'O'",
                found: i64::from(marker),
            })?;
            PgOutputMessage::Delete(Delete {
                xid,
                relation_id,
                old: (kind, TupleData::parse(&mut r)?),
            })
        }
        b'T' => {
            let xid = xid(&mut r)?;
            let relation_count = r.u32("pgoutput truncate relation count")?;
            let options = r.u8("pgoutput truncate options")?;
            let ids_len = (relation_count as usize)
                .checked_mul(4)
                .ok_or(DecodeError::Invalid {
                    what: "pgoutput truncate relation count",
                    expected: "a count that fits in memory",
                    found: i64::from(relation_count),
                })?;
            let relation_ids = r.take(ids_len, "pgoutput truncate relation ids")?;
            PgOutputMessage::Truncate(Truncate {
                xid,
                options,
                relation_count,
                relation_ids,
            })
        }
        b'M' => {
            let xid = xid(&mut r)?;
            let flags = r.u8("pgoutput message flags")?;
            let lsn = Lsn::new(r.u64("pgoutput message lsn")?);
            let prefix = r.cstr("pgoutput message prefix")?;
            let len = r.u32("pgoutput message content length")?;
            let content = r.take(len as usize, "pgoutput message content")?;
            PgOutputMessage::Message(LogicalMessage {
                xid,
                flags,
                lsn,
                prefix,
                content,
            })
        }
        b'S' => PgOutputMessage::StreamStart(StreamStart {
            xid: r.u32("pgoutput stream start xid")?,
            first_segment: r.u8("pgoutput stream start first segment")? == 1,
        }),
        b'E' => PgOutputMessage::StreamStop,
        b'c' => PgOutputMessage::StreamCommit(StreamCommit {
            xid: r.u32("pgoutput stream commit xid")?,
            flags: r.u8("pgoutput stream commit flags")?,
            commit_lsn: Lsn::new(r.u64("pgoutput stream commit lsn")?),
            end_lsn: Lsn::new(r.u64("pgoutput stream commit end lsn")?),
            commit_time: r.i64("pgoutput stream commit time")?,
        }),
        b'A' => {
            let xid = r.u32("pgoutput stream abort xid")?;
            let subtransaction_xid = r.u32("pgoutput stream abort subxid")?;
            // Protocol 4 appends the abort LSN and time; older versions end here.
            let (abort_lsn, abort_time) = if r.is_empty() {
                (None, None)
            } else {
                (
                    Some(Lsn::new(r.u64("pgoutput stream abort lsn")?)),
                    Some(r.i64("pgoutput stream abort time")?),
                )
            };
            PgOutputMessage::StreamAbort(StreamAbort {
                xid,
                subtransaction_xid,
                abort_lsn,
                abort_time,
            })
        }
        other => return Err(DecodeError::UnknownMessage { tag: other }),
    };
    r.finish("pgoutput message")?;
    Ok(message)
}

fn old_kind(marker: u8) -> Option<OldKind> {
    match marker {
        b'K' => Some(OldKind::Key),
        b'O' => Some(OldKind::Old),
        _ => None,
    }
}

fn expect_tag(r: &mut Buf<'_>, want: u8, what: &'static str) -> Result<(), DecodeError> {
    let got = r.u8(what)?;
    if got == want {
        Ok(())
    } else {
        Err(DecodeError::Invalid {
            what,
            expected: "'N'",
            found: i64::from(got),
        })
    }
}
