//! Query flows on an idle connection: simple query (text rows), extended query (binary
//! parameters and results), and the start of a COPY. Every flow reads to ReadyForQuery, so an
//! error leaves the connection usable; a malformed message marks it broken.

use bytes::Bytes;
use postgres_protocol::message::frontend;

use super::codec::{self, tag, BindParam, FieldDescription};
use super::connection::{Connection, State};
use super::error::Error;
use crate::logging::Level;
use crate::wire_log;

/// One result of a simple query: text values, `None` for NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimpleResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// The command tag, e.g. `SELECT 3`.
    pub tag: String,
}

/// A parameter of an extended query. Integers and booleans travel in binary with their type;
/// text lets the server infer the type; bytes are bytea.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    Null,
    Text(&'a str),
    Bytes(&'a [u8]),
    I32(i32),
    I64(i64),
    Bool(bool),
}

/// One row of an extended query: binary values.
#[derive(Debug, Clone)]
pub struct Row {
    body: Bytes,
    values: Vec<Option<std::ops::Range<usize>>>,
}

impl Row {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The raw (binary) value of column `i`; `None` for NULL or out of range.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let range = self.values.get(i)?.clone()?;
        self.body.get(range)
    }

    pub fn is_null(&self, i: usize) -> bool {
        matches!(self.values.get(i), Some(None))
    }

    pub fn get_str(&self, i: usize) -> Result<Option<&str>, Error> {
        self.get(i)
            .map(|b| {
                std::str::from_utf8(b).map_err(|_| Error::ResultValue {
                    column: i,
                    expected: "UTF-8 text",
                    len: b.len(),
                })
            })
            .transpose()
    }

    fn fixed<const N: usize>(&self, i: usize, ty: &'static str) -> Result<Option<[u8; N]>, Error> {
        self.get(i)
            .map(|b| {
                <[u8; N]>::try_from(b).map_err(|_| Error::ResultValue {
                    column: i,
                    expected: ty,
                    len: b.len(),
                })
            })
            .transpose()
    }

    pub fn get_i16(&self, i: usize) -> Result<Option<i16>, Error> {
        Ok(self.fixed::<2>(i, "int2")?.map(i16::from_be_bytes))
    }
    pub fn get_i32(&self, i: usize) -> Result<Option<i32>, Error> {
        Ok(self.fixed::<4>(i, "int4")?.map(i32::from_be_bytes))
    }
    pub fn get_u32(&self, i: usize) -> Result<Option<u32>, Error> {
        Ok(self.fixed::<4>(i, "oid")?.map(u32::from_be_bytes))
    }
    pub fn get_i64(&self, i: usize) -> Result<Option<i64>, Error> {
        Ok(self.fixed::<8>(i, "int8")?.map(i64::from_be_bytes))
    }
    pub fn get_bool(&self, i: usize) -> Result<Option<bool>, Error> {
        Ok(self.fixed::<1>(i, "bool")?.map(|b| b[0] != 0))
    }
}

/// Result of an extended query.
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub columns: Vec<FieldDescription>,
    pub rows: Vec<Row>,
    pub tag: String,
}

impl Connection {
    /// Runs one or more statements with the simple protocol; text results.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleResult>, Error> {
        let r = self.simple_query_inner(sql).await;
        self.poison(r)
    }

    async fn simple_query_inner(&mut self, sql: &str) -> Result<Vec<SimpleResult>, Error> {
        self.ensure_idle().await?;
        frontend::query(sql, &mut self.write_buf)
            .map_err(|e| Error::protocol(format!("encoding Query: {e}")))?;
        self.flush().await?;
        let mut results = Vec::new();
        let mut current: Option<SimpleResult> = None;
        let mut error: Option<Error> = None;
        loop {
            let f = self.next_message().await?;
            match f.tag {
                tag::ROW_DESCRIPTION => {
                    let fields =
                        codec::parse_row_description(self.body(&f)).map_err(|e| self.proto(e))?;
                    current = Some(SimpleResult {
                        columns: fields.into_iter().map(|c| c.name).collect(),
                        ..SimpleResult::default()
                    });
                }
                tag::DATA_ROW => {
                    let body = self.body(&f);
                    let ranges = codec::parse_data_row(body).map_err(|e| self.proto(e))?;
                    let body = self.body(&f);
                    let mut row = Vec::with_capacity(ranges.len());
                    for r in ranges {
                        // The session is UTF8; a SQL_ASCII database can still hold other bytes,
                        // which are replaced rather than failing a catalog query.
                        row.push(
                            r.and_then(|r| body.get(r))
                                .map(|b| String::from_utf8_lossy(b).into_owned()),
                        );
                    }
                    if let Some(c) = current.as_mut() {
                        c.rows.push(row);
                    }
                }
                tag::COMMAND_COMPLETE => {
                    let t = codec::parse_command_complete(self.body(&f))
                        .map_err(|e| self.proto(e))?
                        .to_string();
                    let mut r = current.take().unwrap_or_default();
                    r.tag = t;
                    results.push(r);
                }
                tag::EMPTY_QUERY_RESPONSE => {}
                tag::ERROR_RESPONSE => {
                    let e = self.server_error(&f, "running a simple query");
                    error.get_or_insert(e);
                }
                tag::COPY_IN_RESPONSE => {
                    frontend::copy_fail(
                        "COPY FROM STDIN is not supported by this client",
                        &mut self.write_buf,
                    )
                    .map_err(|e| Error::protocol(e.to_string()))?;
                    self.flush().await?;
                }
                tag::COPY_OUT_RESPONSE | tag::COPY_BOTH_RESPONSE => {
                    if f.tag == tag::COPY_BOTH_RESPONSE {
                        frontend::copy_done(&mut self.write_buf);
                        self.flush().await?;
                    }
                    error.get_or_insert(Error::Usage(
                        "simple_query started a COPY; use copy_out or copy_both".into(),
                    ));
                }
                tag::COPY_DATA | tag::COPY_DONE => {}
                tag::READY_FOR_QUERY => break,
                other => {
                    wire_log!(
                        Level::Debug,
                        "unexpected message in simple query",
                        tag = (other as char).to_string()
                    );
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(results),
        }
    }

    /// Runs statements, discarding their results.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        self.simple_query(sql).await.map(|_| ())
    }

    /// Extended query: Parse/Bind/Describe/Execute/Sync, binary parameters and results.
    pub async fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<QueryResult, Error> {
        let r = self.query_inner(sql, params).await;
        self.poison(r)
    }

    async fn query_inner(&mut self, sql: &str, params: &[Param<'_>]) -> Result<QueryResult, Error> {
        self.ensure_idle().await?;
        let mut types = Vec::with_capacity(params.len());
        let mut encoded: Vec<Option<Vec<u8>>> = Vec::with_capacity(params.len());
        let mut formats = Vec::with_capacity(params.len());
        for p in params {
            let (oid, format, value) = match p {
                Param::Null => (0, 0, None),
                Param::Text(s) => (0, 0, Some(s.as_bytes().to_vec())),
                Param::Bytes(b) => (17, 1, Some(b.to_vec())),
                Param::I32(v) => (23, 1, Some(v.to_be_bytes().to_vec())),
                Param::I64(v) => (20, 1, Some(v.to_be_bytes().to_vec())),
                Param::Bool(v) => (16, 1, Some(vec![*v as u8])),
            };
            types.push(oid);
            formats.push(format);
            encoded.push(value);
        }
        let binds: Vec<BindParam<'_>> = encoded
            .iter()
            .zip(&formats)
            .map(|(v, f)| BindParam {
                format: *f,
                value: v.as_deref(),
            })
            .collect();
        let enc = |e: codec::CodecError| Error::protocol(format!("encoding the query: {e}"));
        codec::encode_parse(&mut self.write_buf, sql, &types).map_err(enc)?;
        codec::encode_bind(&mut self.write_buf, &binds, 1).map_err(enc)?;
        frontend::describe(b'P', "", &mut self.write_buf)
            .map_err(|e| Error::protocol(e.to_string()))?;
        frontend::execute("", 0, &mut self.write_buf)
            .map_err(|e| Error::protocol(e.to_string()))?;
        frontend::sync(&mut self.write_buf);
        self.flush().await?;

        let mut result = QueryResult::default();
        let mut error: Option<Error> = None;
        loop {
            let f = self.next_message().await?;
            match f.tag {
                tag::PARSE_COMPLETE | tag::BIND_COMPLETE | tag::NO_DATA => {}
                tag::ROW_DESCRIPTION => {
                    result.columns =
                        codec::parse_row_description(self.body(&f)).map_err(|e| self.proto(e))?;
                }
                tag::DATA_ROW => {
                    let body = Bytes::copy_from_slice(self.body(&f));
                    let values = codec::parse_data_row(&body).map_err(|e| self.proto(e))?;
                    result.rows.push(Row { body, values });
                }
                tag::COMMAND_COMPLETE => {
                    result.tag = codec::parse_command_complete(self.body(&f))
                        .map_err(|e| self.proto(e))?
                        .to_string();
                }
                tag::EMPTY_QUERY_RESPONSE | tag::PORTAL_SUSPENDED => {}
                tag::ERROR_RESPONSE => {
                    let e = self.server_error(&f, "running an extended query");
                    error.get_or_insert(e);
                }
                tag::READY_FOR_QUERY => break,
                tag::COPY_IN_RESPONSE | tag::COPY_OUT_RESPONSE | tag::COPY_BOTH_RESPONSE => {
                    self.state = State::Broken;
                    return Err(Error::protocol(
                        "an extended query started a COPY; use copy_out or copy_both",
                    ));
                }
                other => {
                    wire_log!(
                        Level::Debug,
                        "unexpected message in extended query",
                        tag = (other as char).to_string()
                    );
                }
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(result),
        }
    }

    /// Sends `sql` with the simple protocol and waits for the given Copy*Response.
    pub(crate) async fn start_copy(&mut self, sql: &str, expected: u8) -> Result<(), Error> {
        let r = self.start_copy_inner(sql, expected).await;
        self.poison(r)
    }

    async fn start_copy_inner(&mut self, sql: &str, expected: u8) -> Result<(), Error> {
        self.ensure_idle().await?;
        frontend::query(sql, &mut self.write_buf)
            .map_err(|e| Error::protocol(format!("encoding Query: {e}")))?;
        self.flush().await?;
        let mut error: Option<Error> = None;
        loop {
            let f = self.next_message().await?;
            match f.tag {
                t if t == expected => {
                    codec::parse_copy_response(self.body(&f)).map_err(|e| self.proto(e))?;
                    self.state = if expected == tag::COPY_BOTH_RESPONSE {
                        State::CopyBoth { client_done: false }
                    } else {
                        State::CopyOut
                    };
                    return Ok(());
                }
                tag::ERROR_RESPONSE => {
                    let e = self.server_error(&f, "starting COPY");
                    error.get_or_insert(e);
                }
                tag::READY_FOR_QUERY => {
                    return Err(error.unwrap_or_else(|| {
                        Error::Usage(format!(
                            "the statement did not start a {}",
                            if expected == tag::COPY_BOTH_RESPONSE {
                                "CopyBoth stream"
                            } else {
                                "COPY TO STDOUT"
                            }
                        ))
                    }));
                }
                tag::COPY_IN_RESPONSE => {
                    frontend::copy_fail(
                        "COPY FROM STDIN is not supported by this client",
                        &mut self.write_buf,
                    )
                    .map_err(|e| Error::protocol(e.to_string()))?;
                    self.flush().await?;
                }
                tag::COPY_OUT_RESPONSE | tag::COPY_BOTH_RESPONSE => {
                    // The other kind of COPY: finish it, then report.
                    self.state = if f.tag == tag::COPY_BOTH_RESPONSE {
                        State::CopyBoth { client_done: false }
                    } else {
                        State::CopyOut
                    };
                    self.ensure_idle().await?;
                    return Err(Error::protocol(
                        "the statement started another kind of COPY",
                    ));
                }
                _ => {}
            }
        }
    }
}
