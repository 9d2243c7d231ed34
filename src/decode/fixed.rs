//! The fast path for fixed-width columns: values pushed straight into a `Vec` and a validity
//! bitmap, turned into a `PrimitiveArray` without copying. Each new batch starts with the
//! capacity of the previous one, so a steady stream of batches does not regrow its buffers
//! from zero every time (which Arrow's `PrimitiveBuilder::finish` would).

use std::sync::Arc;

use arrow_array::{ArrayRef, ArrowPrimitiveType, PrimitiveArray};
use arrow_buffer::{NullBufferBuilder, ScalarBuffer};
use arrow_schema::DataType;

use super::error::DecodeError;

#[derive(Debug)]
pub(super) struct Fixed<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    nulls: NullBufferBuilder,
    /// The exact output type (e.g. a timestamp's unit and `UTC` zone).
    data_type: DataType,
}

impl<T: ArrowPrimitiveType> Fixed<T> {
    pub(super) fn new(data_type: DataType) -> Self {
        Fixed {
            values: Vec::new(),
            nulls: NullBufferBuilder::new(0),
            data_type,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.values.len()
    }

    #[inline]
    pub(super) fn push(&mut self, v: T::Native) {
        self.values.push(v);
        self.nulls.append_non_null();
    }

    pub(super) fn append_null(&mut self) {
        self.values.push(T::Native::default());
        self.nulls.append_null();
    }

    pub(super) fn finish(&mut self) -> Result<ArrayRef, DecodeError> {
        let capacity = self.values.len();
        let values = std::mem::replace(&mut self.values, Vec::with_capacity(capacity));
        let nulls = self.nulls.finish();
        let array =
            PrimitiveArray::<T>::try_new(ScalarBuffer::from(values), nulls).map_err(|source| {
                DecodeError::Arrow {
                    what: "column",
                    source,
                }
            })?;
        if !PrimitiveArray::<T>::is_compatible(&self.data_type) {
            return Err(DecodeError::StorageType {
                data_type: self.data_type.clone(),
                storage: T::DATA_TYPE,
            });
        }
        Ok(Arc::new(array.with_data_type(self.data_type.clone())))
    }
}
