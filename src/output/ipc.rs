//! Arrow IPC streams as the plugin protocol carries them: every `insert` record is a whole
//! stream (schema message, one record batch message, end-of-stream marker).
//!
//! Encoding the schema message is not free: each field's CloudQuery metadata and extension type
//! go through a flatbuffer builder, and for `mixed9` (9 columns, 500-row records) that was 6 % of
//! the plugin's instructions (callgrind), repeated for every record of a table whose schema never
//! changes. [`IpcEncoder`] encodes a schema once and reuses its bytes; the output is byte for byte
//! what `arrow_ipc::writer::StreamWriter` writes (tested below).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use arrow_ipc::writer::{StreamEncoder, StreamWriter};
use arrow_schema::{ArrowError, Schema, SchemaRef};

/// The end-of-stream marker of the IPC stream format (continuation, then a zero length).
const EOS: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];

/// Distinct schemas kept; a CDC run whose tables change shape often starts over past this.
const MAX_CACHED_SCHEMAS: usize = 4096;

/// An Arrow IPC stream holding only `schema` (GetTables, `migrate_table`).
pub fn encode_schema(schema: &Schema) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.finish()?;
    writer.into_inner()
}

/// An Arrow IPC stream holding the batch's schema and exactly that one batch, without a cache.
pub fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(
        Vec::with_capacity(batch.get_array_memory_size() + 1024),
        &batch.schema(),
    )?;
    writer.write(batch)?;
    writer.finish()?;
    writer.into_inner()
}

/// Encodes record batches as one-batch IPC streams, encoding each distinct schema once. Cheap
/// to clone; clones share the cache.
///
/// Per schema it keeps a small pool of `StreamEncoder`s that have already written their schema
/// message: such an encoder returns only the record batch message, whose body buffers share the
/// batch's own Arrow buffers, so the values are copied once, into the output. (Workers reading
/// ctid ranges of one table each take an encoder from the pool, so they never wait on each other.)
#[derive(Clone, Default)]
pub struct IpcEncoder {
    /// Keyed by the schema's `Arc` address; the entry keeps the `SchemaRef`, so the address
    /// cannot be reused by another schema while the entry lives.
    schemas: Arc<Mutex<HashMap<usize, Arc<SchemaEntry>>>>,
}

struct SchemaEntry {
    _schema: SchemaRef,
    /// The schema message alone (no end-of-stream marker).
    message: Vec<u8>,
    /// Encoders whose schema message is already written.
    primed: Mutex<Vec<StreamEncoder>>,
}

impl IpcEncoder {
    /// The same bytes as [`encode_batch`].
    pub fn encode(&self, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
        let schema = batch.schema();
        let Some(entry) = self.entry(&schema)? else {
            return encode_batch(batch);
        };
        let pooled = lock(&entry.primed).pop();
        let primed = pooled.is_some();
        let mut encoder = match pooled {
            Some(e) => e,
            None => StreamEncoder::try_new(&schema)?,
        };
        // A fresh encoder writes the schema message itself, before the batch.
        let buffers = encoder.encode(batch)?;
        let body: usize = buffers.iter().map(|b| b.len()).sum();
        let prefix = if primed { entry.message.len() } else { 0 };
        let mut out = Vec::with_capacity(prefix + body + EOS.len());
        if primed {
            out.extend_from_slice(&entry.message);
        }
        for b in &buffers {
            out.extend_from_slice(b.as_slice());
        }
        out.extend_from_slice(&EOS);
        drop(buffers);
        lock(&entry.primed).push(encoder);
        Ok(out)
    }

    /// The cache entry of `schema`, made on first use; `None` when the writer's output does not
    /// have the expected shape (the caller then takes the uncached path).
    fn entry(&self, schema: &SchemaRef) -> Result<Option<Arc<SchemaEntry>>, ArrowError> {
        let key = Arc::as_ptr(schema) as usize;
        let mut cache = lock(&self.schemas);
        if let Some(entry) = cache.get(&key) {
            return Ok(Some(entry.clone()));
        }
        let stream = encode_schema(schema)?;
        let Some(message) = stream.strip_suffix(&EOS) else {
            return Ok(None);
        };
        if cache.len() >= MAX_CACHED_SCHEMAS {
            cache.clear();
        }
        let entry = Arc::new(SchemaEntry {
            _schema: schema.clone(),
            message: message.to_vec(),
            primed: Mutex::new(Vec::new()),
        });
        cache.insert(key, entry.clone());
        Ok(Some(entry))
    }
}

/// A poisoned lock only means another thread panicked while holding it; every critical section
/// here is a single insert, pop or push, so the data are still consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, ListArray, StringArray};
    use arrow_schema::{DataType, Field};
    use std::collections::HashMap as Map;

    fn batch(schema: &SchemaRef, rows: i64) -> RecordBatch {
        let ids: ArrayRef = Arc::new(Int64Array::from_iter(
            (0..rows).map(|i| (i % 3 != 0).then_some(i)),
        ));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("row {i}")),
        ));
        let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<
            arrow_array::types::Int32Type,
            _,
            _,
        >(
            (0..rows).map(|i| Some(vec![Some(i as i32), None]))
        ));
        RecordBatch::try_new(schema.clone(), vec![ids, names, lists]).expect("batch")
    }

    fn schema(table: &str) -> SchemaRef {
        let meta = Map::from([("cq:extension:primary_key".to_string(), "true".to_string())]);
        Arc::new(
            Schema::new(vec![
                Field::new("id", DataType::Int64, true).with_metadata(meta),
                Field::new("name", DataType::Utf8, false),
                Field::new(
                    "tags",
                    DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                    true,
                ),
            ])
            .with_metadata(Map::from([(
                "cq:table_name".to_string(),
                table.to_string(),
            )])),
        )
    }

    #[test]
    fn cached_encoding_matches_the_stream_writer_byte_for_byte() {
        let encoder = IpcEncoder::default();
        let (a, b) = (schema("a"), schema("b"));
        for (s, rows) in [(&a, 1), (&a, 500), (&b, 0), (&a, 7), (&b, 1000)] {
            let batch = batch(s, rows);
            assert_eq!(
                encoder.encode(&batch).expect("cached"),
                encode_batch(&batch).expect("writer")
            );
        }
        assert_eq!(lock(&encoder.schemas).len(), 2);
    }

    #[test]
    fn cached_stream_reads_back() {
        let encoder = IpcEncoder::default();
        let s = schema("t");
        let original = batch(&s, 42);
        let _ = encoder.encode(&original).expect("first");
        let bytes = encoder.encode(&original).expect("second, from the cache");
        let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .expect("stream");
        let read: Vec<_> = reader.collect::<Result<_, _>>().expect("batches");
        assert_eq!(read, vec![original]);
    }
}
