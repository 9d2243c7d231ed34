//! Arrays (array_send) → Arrow lists, wrapping the reader of the element type.
//!
//! Wire form: i32 ndim (0..=6), i32 has-null flag (0/1), u32 element oid, per dimension i32
//! length + i32 lower bound, then each element as i32 length (-1 = NULL) + bytes. Elements are
//! flattened row-major into one list; ndim 0 is the empty list; lower bounds are dropped.
//! Dimensions are checked against the bytes present before anything is appended, so an absurd
//! header costs nothing.

use std::sync::Arc;

use arrow_array::{ArrayRef, ListArray};
use arrow_buffer::{NullBufferBuilder, OffsetBuffer, ScalarBuffer};
use arrow_schema::FieldRef;

use super::buf::Buf;
use super::error::DecodeError;
use super::readers::ColumnReader;
use super::rules::ValueOptions;
use super::types::{list_item_field, PgType};

/// PostgreSQL's MAXDIM: array_recv rejects more dimensions.
pub(crate) const MAX_ARRAY_DIMS: i32 = 6;

/// A list column: offsets + validity of its own, the flattened elements in the child reader.
#[derive(Debug)]
pub(super) struct ListReader {
    item: FieldRef,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
    child: ColumnReader,
    poisoned: bool,
}

impl ListReader {
    pub(super) fn new(elem: &PgType, rules: &ValueOptions) -> ListReader {
        ListReader {
            item: list_item_field(elem),
            offsets: vec![0],
            nulls: NullBufferBuilder::new(0),
            child: ColumnReader::with_options(elem, rules),
            poisoned: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub(super) fn take_adjusted(&mut self) -> u64 {
        self.child.take_adjusted()
    }

    pub(super) fn append_null(&mut self) {
        let end = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(end);
        self.nulls.append_null();
    }

    pub(super) fn append_value(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let before = self.child.len();
        let result = self.append_elements(bytes);
        if result.is_err() && self.child.len() != before {
            self.poisoned = true;
        }
        result
    }

    fn append_elements(&mut self, bytes: &[u8]) -> Result<(), DecodeError> {
        let mut r = Buf::new(bytes);
        let ndim = r.i32("array ndim")?;
        if !(0..=MAX_ARRAY_DIMS).contains(&ndim) {
            return Err(DecodeError::Invalid {
                what: "array ndim",
                expected: "0..=6 dimensions",
                found: i64::from(ndim),
            });
        }
        let flags = r.i32("array flags")?;
        if flags != 0 && flags != 1 {
            return Err(DecodeError::Invalid {
                what: "array flags",
                expected: "0 or 1",
                found: i64::from(flags),
            });
        }
        let _element_oid = r.u32("array element type")?;
        let mut count: usize = if ndim == 0 { 0 } else { 1 };
        for _ in 0..ndim {
            let len = r.i32("array dimension length")?;
            let _lower_bound = r.i32("array lower bound")?;
            let len = usize::try_from(len).map_err(|_| DecodeError::Invalid {
                what: "array dimension length",
                expected: "a length ≥ 0",
                found: i64::from(len),
            })?;
            count = count.checked_mul(len).ok_or(DecodeError::Invalid {
                what: "array element count",
                expected: "a product of dimensions that fits in memory",
                found: i64::MAX,
            })?;
        }
        // Every element takes at least its 4-byte length: reject absurd counts before looping.
        if count > r.remaining() / 4 {
            return Err(DecodeError::Invalid {
                what: "array element count",
                expected: "at most one element per 4 remaining bytes",
                found: i64::try_from(count).unwrap_or(i64::MAX),
            });
        }
        for _ in 0..count {
            let len = r.i32("array element length")?;
            if len == -1 {
                self.child.append_null();
                continue;
            }
            let len = usize::try_from(len).map_err(|_| DecodeError::Invalid {
                what: "array element length",
                expected: "-1 (NULL) or a length ≥ 0",
                found: i64::from(len),
            })?;
            self.child.append_value(r.take(len, "array element")?)?;
        }
        r.finish("array")?;
        let end = i32::try_from(self.child.len()).map_err(|_| DecodeError::Invalid {
            what: "array elements in one batch",
            expected: "at most 2^31-1",
            found: i64::try_from(self.child.len()).unwrap_or(i64::MAX),
        })?;
        self.offsets.push(end);
        self.nulls.append_non_null();
        Ok(())
    }

    pub(super) fn finish(&mut self) -> Result<ArrayRef, DecodeError> {
        let values = self.child.finish()?;
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let nulls = self.nulls.finish();
        if std::mem::take(&mut self.poisoned) {
            return Err(DecodeError::Poisoned);
        }
        // Offsets start at 0 and only ever grow (each row ends at the child's length), so they
        // are valid; try_new checks them against the values again anyway.
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        let list =
            ListArray::try_new(self.item.clone(), offsets, values, nulls).map_err(|source| {
                DecodeError::Arrow {
                    what: "list column",
                    source,
                }
            })?;
        Ok(Arc::new(list))
    }
}
