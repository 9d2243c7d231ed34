//! Row counting on Arrow IPC streams without decoding any column: only the flatbuffer message
//! headers are read, the bodies are skipped by their declared length.

/// Rows and record batches in one Arrow IPC stream (the bytes of a `MessageInsert.record`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct IpcCount {
    pub rows: u64,
    pub batches: u64,
}

/// Counts the rows of every record batch in an IPC stream. Errors describe the malformed part.
pub fn count_rows(buf: &[u8]) -> Result<IpcCount, String> {
    let mut count = IpcCount::default();
    let mut pos = 0usize;
    loop {
        let Some(word) = read_u32(buf, pos) else {
            // A stream may end without the end-of-stream marker.
            return Ok(count);
        };
        pos += 4;
        let meta_len = if word == 0xFFFF_FFFF {
            let Some(len) = read_u32(buf, pos) else {
                return Err(format!("truncated message length at byte {pos}"));
            };
            pos += 4;
            len
        } else {
            // Legacy framing: no continuation marker.
            word
        } as usize;
        if meta_len == 0 {
            return Ok(count);
        }
        let meta = buf
            .get(pos..pos + meta_len)
            .ok_or_else(|| format!("metadata of {meta_len} bytes at {pos} runs past the end"))?;
        pos += meta_len;
        let message = arrow_ipc::root_as_message(meta)
            .map_err(|e| format!("invalid IPC message header at byte {}: {e}", pos - meta_len))?;
        if let Some(rb) = message.header_as_record_batch() {
            count.rows += u64::try_from(rb.length())
                .map_err(|_| format!("negative row count {}", rb.length()))?;
            count.batches += 1;
        }
        let body = usize::try_from(message.bodyLength())
            .map_err(|_| format!("negative body length {}", message.bodyLength()))?;
        pos = pos
            .checked_add(body)
            .filter(|&p| p <= buf.len())
            .ok_or_else(|| format!("body of {body} bytes runs past the end"))?;
    }
}

fn read_u32(buf: &[u8], pos: usize) -> Option<u32> {
    let b = buf.get(pos..pos + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A self-check of [`count_rows`] on a stream written by arrow-ipc (run by `sync_bench selftest`).
pub fn selftest() -> Result<(), String> {
    use arrow_array::{Int64Array, RecordBatch};
    use std::sync::Arc;
    let batch =
        RecordBatch::try_from_iter([("a", Arc::new(Int64Array::from_iter_values(0..7)) as _)])
            .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    {
        let mut w = arrow_ipc::writer::StreamWriter::try_new(&mut out, &batch.schema())
            .map_err(|e| e.to_string())?;
        w.write(&batch).map_err(|e| e.to_string())?;
        w.write(&batch).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
    }
    let want = IpcCount {
        rows: 14,
        batches: 2,
    };
    let got = count_rows(&out)?;
    if got != want {
        return Err(format!("count_rows: {got:?}, expected {want:?}"));
    }
    if count_rows(&out[..out.len() / 2]).is_ok() {
        return Err("count_rows accepted a truncated stream".into());
    }
    Ok(())
}
