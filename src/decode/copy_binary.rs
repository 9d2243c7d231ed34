//! The COPY BINARY stream (`COPY … TO STDOUT (FORMAT binary)`), one CopyData payload at a time.
//!
//! Stream layout: the 11-byte signature `PGCOPY\n\xff\r\n\0`, an i32 flags word (bit 16 = OIDs
//! included, bits 17–31 reserved and fatal when set), an i32 header-extension length and that
//! many bytes; then tuples: i16 field count, then per field an i32 length (-1 = NULL) and the
//! value's binary send format; finally the trailer, a field count of -1.
//!
//! PostgreSQL sends the header prefixed to the first payload (together with the first tuple, or
//! with the trailer for an empty result) and then one tuple per payload. The decoder accepts any
//! number of whole tuples per payload, but a tuple must not be split across payloads.

use arrow_array::{RecordBatch, RecordBatchOptions};
use arrow_schema::SchemaRef;

use super::buf::Buf;
use super::error::DecodeError;
use super::readers::ColumnReader;
use super::rules::ValueOptions;
use super::types::PgType;

/// `PGCOPY\n\xff\r\n\0`.
pub(crate) const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// Header flag: each tuple carries an OID field (never asked for by this plugin).
const FLAG_OIDS: i32 = 1 << 16;
/// Header flags bits 17–31: reserved; readers must abort when one is set.
const FLAGS_CRITICAL_RESERVED: i32 = !((1 << 17) - 1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the signature and header.
    Header,
    /// Reading tuples.
    Tuples,
    /// The trailer has been read.
    Done,
    /// An error left a partial row behind.
    Failed,
}

/// Decodes one table's COPY BINARY stream into Arrow, one column reader per column.
#[derive(Debug)]
pub struct CopyBinaryDecoder {
    readers: Vec<ColumnReader>,
    state: State,
    rows: usize,
    total_rows: u64,
    bytes: u64,
}

impl CopyBinaryDecoder {
    /// A decoder for rows whose columns have these types, in order (default value rules).
    pub fn new(types: &[PgType]) -> CopyBinaryDecoder {
        CopyBinaryDecoder::with_options(types, &ValueOptions::default())
    }

    /// A decoder for rows whose columns have these types, under the spec's value rules.
    pub fn with_options(types: &[PgType], rules: &ValueOptions) -> CopyBinaryDecoder {
        CopyBinaryDecoder {
            readers: types
                .iter()
                .map(|t| ColumnReader::with_options(t, rules))
                .collect(),
            state: State::Header,
            rows: 0,
            total_rows: 0,
            bytes: 0,
        }
    }

    /// Decode one CopyData payload. `Ok(true)`: more may follow; `Ok(false)`: the trailer was
    /// read and the stream is complete. After an error the decoder is unusable (a row may be
    /// half appended): every later call fails with [`DecodeError::Poisoned`].
    pub fn decode_frame(&mut self, frame: &[u8]) -> Result<bool, DecodeError> {
        let result = self.decode(frame);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn decode(&mut self, frame: &[u8]) -> Result<bool, DecodeError> {
        self.bytes += frame.len() as u64;
        let mut r = Buf::new(frame);
        match self.state {
            State::Failed => return Err(DecodeError::Poisoned),
            State::Done => return Err(DecodeError::AfterTrailer { count: frame.len() }),
            State::Header => {
                read_header(&mut r)?;
                self.state = State::Tuples;
            }
            State::Tuples => {}
        }
        while !r.is_empty() {
            let fields = r.i16("COPY tuple field count")?;
            if fields == -1 {
                self.state = State::Done;
                r.finish("COPY binary trailer")?;
                return Ok(false);
            }
            if usize::try_from(fields).ok() != Some(self.readers.len()) {
                return Err(DecodeError::FieldCount {
                    expected: self.readers.len(),
                    found: i64::from(fields),
                });
            }
            for (column, reader) in self.readers.iter_mut().enumerate() {
                read_field(&mut r, reader).map_err(|e| e.in_column(column))?;
            }
            self.rows += 1;
            self.total_rows += 1;
        }
        Ok(true)
    }

    /// Rows decoded since the last [`finish`](Self::finish) (the size of the next batch).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Rows decoded since the decoder was made.
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// Payload bytes fed in so far (header and trailer included), for progress logs.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Per column, the values changed since the last call because the column's Arrow type
    /// cannot hold them (see [`ColumnReader::take_adjusted`]).
    pub(crate) fn take_adjusted(&mut self) -> Vec<u64> {
        self.readers
            .iter_mut()
            .map(ColumnReader::take_adjusted)
            .collect()
    }

    /// True once the trailer has been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// One RecordBatch of the rows decoded since the last call, with `schema` (which must match
    /// the column types, e.g. built with `types::cq_field`); the readers start afresh.
    pub fn finish(&mut self, schema: SchemaRef) -> Result<RecordBatch, DecodeError> {
        if self.state == State::Failed {
            return Err(DecodeError::Poisoned);
        }
        let rows = std::mem::take(&mut self.rows);
        let columns = self
            .readers
            .iter_mut()
            .enumerate()
            .map(|(i, r)| r.finish().map_err(|e| e.in_column(i)))
            .collect::<Result<Vec<_>, _>>();
        let columns = match columns {
            Ok(c) => c,
            Err(e) => {
                // Readers after the failing one still hold their rows: the batch is lost.
                self.state = State::Failed;
                return Err(e);
            }
        };
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(schema, columns, &options).map_err(|source| {
            DecodeError::Arrow {
                what: "record batch",
                source,
            }
        })
    }
}

fn read_header(r: &mut Buf<'_>) -> Result<(), DecodeError> {
    if r.take(SIGNATURE.len(), "COPY binary signature")? != SIGNATURE {
        return Err(DecodeError::BadSignature);
    }
    let flags = r.i32("COPY binary header flags")?;
    if flags & FLAG_OIDS != 0 {
        return Err(DecodeError::Invalid {
            what: "COPY binary header flags",
            expected: "no OID column (bit 16 clear)",
            found: i64::from(flags),
        });
    }
    if flags & FLAGS_CRITICAL_RESERVED != 0 {
        return Err(DecodeError::Invalid {
            what: "COPY binary header flags",
            expected: "reserved bits 17-31 clear",
            found: i64::from(flags),
        });
    }
    let ext_len = r.u32("COPY binary header extension length")?;
    // Extensions are skipped: none are defined, and readers are told to ignore unknown ones.
    r.take(ext_len as usize, "COPY binary header extension")?;
    Ok(())
}

fn read_field(r: &mut Buf<'_>, reader: &mut ColumnReader) -> Result<(), DecodeError> {
    let len = r.i32("COPY field length")?;
    if len == -1 {
        reader.append_null();
        return Ok(());
    }
    let len = usize::try_from(len).map_err(|_| DecodeError::Invalid {
        what: "COPY field length",
        expected: "-1 (NULL) or a length ≥ 0",
        found: i64::from(len),
    })?;
    reader.append_value(r.take(len, "COPY field value")?)
}
