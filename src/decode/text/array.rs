//! Array literals as array_out prints them, re-encoded as array_send writes them.

use super::{convert, err};
use crate::decode::array::MAX_ARRAY_DIMS;
use crate::decode::error::DecodeError;
use crate::decode::types::PgType;

/// PostgreSQL's MAXDIM as a count (the constant is positive).
const MAX_DIMS: usize = MAX_ARRAY_DIMS as usize;

/// The OID array_send writes for elements of `ty` (see the module docs for the canonical
/// choices where one PgType stands for several PostgreSQL types).
fn element_oid(ty: &PgType) -> u32 {
    match ty {
        PgType::Bool => 16,
        PgType::Bytea => 17,
        PgType::Char => 18,
        PgType::Int8 => 20,
        PgType::Int2 => 21,
        PgType::Int4 => 23,
        PgType::Text | PgType::ServerText => 25,
        PgType::Oid => 26,
        PgType::Xid => 28,
        PgType::Json => 114,
        PgType::Float4 => 700,
        PgType::Float8 => 701,
        PgType::MacAddr8 => 774,
        PgType::MacAddr => 829,
        PgType::Inet => 869,
        PgType::Date => 1082,
        PgType::Time { .. } => 1083,
        PgType::Timestamp { .. } => 1114,
        PgType::TimestampTz { .. } => 1184,
        PgType::Numeric | PgType::Decimal { .. } => 1700,
        PgType::Interval => 1186,
        PgType::Uuid => 2950,
        PgType::Jsonb => 3802,
        PgType::Xid8 => 5069,
        // Not a valid element type; parse_array rejects it before this matters.
        PgType::Array(_) => 0,
    }
}

/// Array literal (array_out) → array_send: i32 ndim, i32 has-null flag, u32 element OID, per
/// dimension i32 length + i32 lower bound, then every element (row-major) as i32 length (-1 for
/// NULL) + its own send format.
pub(super) fn parse_array(
    elem: &PgType,
    text: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    const WHAT: &str = "array text";
    if matches!(elem, PgType::Array(_)) {
        return Err(err(WHAT, "an element type that is not itself an array", 0));
    }
    let mut p = ArrayParser {
        text,
        pos: 0,
        elem,
        scratch: Vec::new(),
        has_null: false,
    };
    // Optional dimension decoration `[lb:ub][lb:ub]=` (array_out writes it when a lower bound
    // is not 1).
    let mut decorated: Vec<(i32, i32)> = Vec::new();
    p.skip_ws();
    while p.peek() == Some(b'[') {
        p.pos += 1;
        let lb = p.int()?;
        p.expect(b':', "':' in a dimension decoration")?;
        let ub = p.int()?;
        p.expect(b']', "']' closing a dimension decoration")?;
        decorated.push((lb, ub));
        if decorated.len() > MAX_DIMS {
            return Err(err(WHAT, "at most 6 dimensions", p.pos));
        }
    }
    if !decorated.is_empty() {
        p.expect(b'=', "'=' after the dimension decoration")?;
        p.skip_ws();
    }
    // The number of leading braces is the number of dimensions (`{}` alone is the empty array).
    let ndim = text[p.pos..]
        .iter()
        .take_while(|&&b| b == b'{' || b.is_ascii_whitespace())
        .filter(|&&b| b == b'{')
        .count();
    if ndim == 0 {
        return Err(err(WHAT, "'{'", p.pos));
    }
    if ndim > MAX_DIMS {
        return Err(err(WHAT, "at most 6 dimensions", p.pos));
    }
    let start = out.len();
    let header_len = 12 + 8 * ndim;
    out.resize(start + header_len, 0);
    let mut dims: Vec<Option<i32>> = vec![None; ndim];
    let empty = p.level(0, ndim, &mut dims, out)?;
    p.skip_ws();
    if p.pos != text.len() {
        return Err(err(WHAT, "nothing after the closing '}'", p.pos));
    }
    if empty {
        // `{}`: array_send writes ndim 0 and no dimensions.
        if !decorated.is_empty() {
            return Err(err(WHAT, "no dimension decoration on an empty array", 0));
        }
        out.truncate(start);
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&element_oid(elem).to_be_bytes());
        return Ok(());
    }
    if !decorated.is_empty() && decorated.len() != ndim {
        return Err(err(
            WHAT,
            "as many decorated dimensions as nested braces",
            0,
        ));
    }
    let mut header = Vec::with_capacity(header_len);
    header.extend_from_slice(&i32::try_from(ndim).unwrap_or(0).to_be_bytes());
    header.extend_from_slice(&i32::from(p.has_null).to_be_bytes());
    header.extend_from_slice(&element_oid(elem).to_be_bytes());
    for (d, len) in dims.iter().enumerate() {
        let len = len.unwrap_or(0);
        let lb = match decorated.get(d) {
            Some(&(lb, ub)) => {
                if i64::from(ub) - i64::from(lb) + 1 != i64::from(len) {
                    return Err(err(WHAT, "decorated bounds matching the element count", 0));
                }
                lb
            }
            None => 1,
        };
        header.extend_from_slice(&len.to_be_bytes());
        header.extend_from_slice(&lb.to_be_bytes());
    }
    out[start..start + header_len].copy_from_slice(&header);
    Ok(())
}

struct ArrayParser<'a> {
    text: &'a [u8],
    pos: usize,
    elem: &'a PgType,
    /// One element's unescaped text, reused.
    scratch: Vec<u8>,
    has_null: bool,
}

impl ArrayParser<'_> {
    const WHAT: &'static str = "array text";

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    /// The character after the `\` at the current position.
    fn escaped(&self) -> Result<u8, DecodeError> {
        self.text.get(self.pos + 1).copied().ok_or(err(
            Self::WHAT,
            "a character after '\\'",
            self.pos,
        ))
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8, expected: &'static str) -> Result<(), DecodeError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(err(Self::WHAT, expected, self.pos))
        }
    }

    fn int(&mut self) -> Result<i32, DecodeError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        std::str::from_utf8(&self.text[start..self.pos])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(err(Self::WHAT, "an integer bound", start))
    }

    /// One `{…}` at nesting `depth`; returns true for `{}` at depth 0 (the empty array).
    fn level(
        &mut self,
        depth: usize,
        ndim: usize,
        dims: &mut [Option<i32>],
        out: &mut Vec<u8>,
    ) -> Result<bool, DecodeError> {
        self.skip_ws();
        self.expect(b'{', "'{'")?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            if depth == 0 && ndim == 1 {
                self.pos += 1;
                return Ok(true);
            }
            return Err(err(Self::WHAT, "no empty sub-array", self.pos));
        }
        let mut count: i32 = 0;
        loop {
            if depth + 1 < ndim {
                self.level(depth + 1, ndim, dims, out)?;
            } else {
                self.element(out)?;
            }
            count = count
                .checked_add(1)
                .ok_or(err(Self::WHAT, "fewer elements", self.pos))?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(err(Self::WHAT, "',' or '}'", self.pos)),
            }
        }
        let slot = dims
            .get_mut(depth)
            .ok_or(err(Self::WHAT, "consistent nesting", self.pos))?;
        match slot {
            None => *slot = Some(count),
            Some(n) if *n == count => {}
            Some(_) => {
                return Err(err(
                    Self::WHAT,
                    "sub-arrays of matching dimensions",
                    self.pos,
                ))
            }
        }
        Ok(false)
    }

    /// One element, quoted or not, converted and written with its length prefix.
    fn element(&mut self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        self.skip_ws();
        self.scratch.clear();
        let start = self.pos;
        let mut quoted = false;
        let mut escaped = false;
        if self.peek() == Some(b'"') {
            quoted = true;
            self.pos += 1;
            loop {
                match self.peek() {
                    None => return Err(err(Self::WHAT, "a closing '\"'", start)),
                    Some(b'"') => {
                        self.pos += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let c = self.escaped()?;
                        self.scratch.push(c);
                        self.pos += 2;
                    }
                    Some(c) => {
                        self.scratch.push(c);
                        self.pos += 1;
                    }
                }
            }
        } else {
            // Unquoted: up to the next unescaped ',' or '}', trailing whitespace dropped.
            let mut keep = 0;
            loop {
                match self.peek() {
                    None => return Err(err(Self::WHAT, "',' or '}'", self.pos)),
                    Some(b',' | b'}') => break,
                    Some(b'{' | b'"') => {
                        return Err(err(Self::WHAT, "'{' or '\"' only where allowed", self.pos))
                    }
                    Some(b'\\') => {
                        let c = self.escaped()?;
                        self.scratch.push(c);
                        escaped = true;
                        self.pos += 2;
                        keep = self.scratch.len();
                    }
                    Some(c) => {
                        self.scratch.push(c);
                        self.pos += 1;
                        if !c.is_ascii_whitespace() {
                            keep = self.scratch.len();
                        }
                    }
                }
            }
            self.scratch.truncate(keep);
            if self.scratch.is_empty() {
                return Err(err(Self::WHAT, "an element", start));
            }
        }
        if !quoted && !escaped && self.scratch.eq_ignore_ascii_case(b"NULL") {
            self.has_null = true;
            out.extend_from_slice(&(-1i32).to_be_bytes());
            return Ok(());
        }
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        // Element errors are reported as they are (their offset is within the element).
        convert(self.elem, &self.scratch, out)?;
        let len = i32::try_from(out.len() - len_at - 4)
            .map_err(|_| err(Self::WHAT, "elements under 2 GiB", start))?;
        out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}
