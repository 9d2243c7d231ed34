//! Rows and keys of the change stream, each packed into one buffer.
//!
//! A row used to be a `Vec<Option<Vec<u8>>>`: one allocation per column value, freed again
//! after the row was sent (with its key cloned into the buffer's maps, more allocations);
//! malloc/free were a quarter of the plugin's CPU while draining a backlog. Here a row's values
//! are appended to one byte buffer, each after a header: one byte holding the length when it
//! is below [`LONG`], [`LONG`] followed by a 4-byte little-endian length, or [`NULL`]. The
//! encoding is canonical (one byte string per sequence of values), so two packed rows or keys
//! are equal exactly when their values are, and hashing the bytes hashes the values.
//!
//! A [`Key`] of up to [`INLINE`] packed bytes (an int4, int8 or uuid key, or a few of them)
//! is stored inline: making, cloning and dropping one never allocates.

use std::hash::{Hash, Hasher};

const LONG: u8 = 0xFE;
const NULL: u8 = 0xFF;

/// One column value in send format; `None` is NULL.
pub type Value = Option<Vec<u8>>;

fn push_value(buf: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => buf.push(NULL),
        Some(b) if b.len() < usize::from(LONG) => {
            buf.push(b.len() as u8);
            buf.extend_from_slice(b);
        }
        Some(b) => {
            buf.push(LONG);
            // Values come from one protocol message, whose length is an i32.
            buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
            buf.extend_from_slice(b);
        }
    }
}

/// The values of a packed buffer, in order.
#[derive(Clone)]
pub struct Iter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Iter<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&h, rest) = self.rest.split_first()?;
        let (len, rest) = match h {
            NULL => {
                self.rest = rest;
                return Some(None);
            }
            LONG => {
                let (n, rest) = rest.split_at_checked(4)?;
                let mut w = [0u8; 4];
                w.copy_from_slice(n);
                (u32::from_le_bytes(w) as usize, rest)
            }
            n => (usize::from(n), rest),
        };
        let (v, rest) = rest.split_at_checked(len)?;
        self.rest = rest;
        Some(Some(v))
    }
}

/// A row: its values in column order, packed.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Row {
    data: Vec<u8>,
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Row {
    /// An empty row with room for `bytes` packed bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        Row {
            data: Vec::with_capacity(bytes),
        }
    }

    pub fn push(&mut self, v: Option<&[u8]>) {
        push_value(&mut self.data, v);
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { rest: &self.data }
    }

    /// The value of column `i` (`None` for NULL and past the end).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.iter().nth(i).flatten()
    }

    /// The values, unpacked (for the rare paths that edit a row).
    pub fn unpack(&self) -> Vec<Value> {
        self.iter().map(|v| v.map(<[u8]>::to_vec)).collect()
    }

    pub fn pack(values: &[Value]) -> Row {
        let mut row = Row::with_capacity(
            values
                .iter()
                .map(|v| v.as_ref().map_or(1, |v| v.len() + 5))
                .sum(),
        );
        for v in values {
            row.push(v.as_deref());
        }
        row
    }
}

/// Packed keys up to this many bytes are stored inline.
pub const INLINE: usize = 22;

/// A key: the key columns' values, packed.
#[derive(Clone)]
pub enum Key {
    Inline(u8, [u8; INLINE]),
    Heap(Box<[u8]>),
}

impl Key {
    /// The key of these values.
    pub fn new<'a>(values: impl IntoIterator<Item = Option<&'a [u8]>>) -> Key {
        let mut buf = [0u8; INLINE];
        let mut len = 0;
        let mut values = values.into_iter();
        let mut spill = None;
        for v in values.by_ref() {
            let need = 1 + v.map_or(0, <[u8]>::len);
            match v {
                Some(b) if need <= INLINE - len && b.len() < usize::from(LONG) => {
                    buf[len] = b.len() as u8;
                    buf[len + 1..len + need].copy_from_slice(b);
                    len += need;
                }
                None if len < INLINE => {
                    buf[len] = NULL;
                    len += 1;
                }
                _ => {
                    spill = Some(v);
                    break;
                }
            }
        }
        let Some(v) = spill else {
            return Key::Inline(len as u8, buf);
        };
        // Too long for inline: everything goes on the heap.
        let mut heap = buf[..len].to_vec();
        push_value(&mut heap, v);
        for v in values {
            push_value(&mut heap, v);
        }
        Key::Heap(heap.into_boxed_slice())
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Key::Inline(len, buf) => &buf[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { rest: self.bytes() }
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.iter().nth(i).flatten()
    }
}

// Inline and heap forms never hold the same bytes (a key is inline exactly when it fits), but
// comparing the bytes makes that irrelevant.
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Key {}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.bytes());
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(v: &[Option<&[u8]>]) -> Vec<Value> {
        v.iter().map(|v| v.map(<[u8]>::to_vec)).collect()
    }

    #[test]
    fn rows_round_trip() {
        let long = vec![7u8; 300];
        let edge = vec![1u8; 253];
        let edge2 = vec![1u8; 254];
        let cases: Vec<Vec<Option<&[u8]>>> = vec![
            vec![],
            vec![None],
            vec![Some(b"")],
            vec![
                Some(b"abc"),
                None,
                Some(&long),
                Some(&edge),
                Some(&edge2),
                Some(b""),
            ],
        ];
        for c in cases {
            let row = Row::pack(&vals(&c));
            assert_eq!(row.iter().collect::<Vec<_>>(), c);
            assert_eq!(row.unpack(), vals(&c));
            for (i, v) in c.iter().enumerate() {
                assert_eq!(row.get(i), *v);
            }
            assert_eq!(row.get(c.len()), None);
            let key = Key::new(c.iter().copied());
            assert_eq!(key.iter().collect::<Vec<_>>(), c);
        }
    }

    #[test]
    fn keys_are_equal_exactly_when_their_values_are() {
        let a = Key::new([Some(&b"ab"[..]), Some(b"c")]);
        let b = Key::new([Some(&b"a"[..]), Some(b"bc")]);
        let c = Key::new([Some(&b"ab"[..]), Some(b"c")]);
        let n = Key::new([None, Some(&b"c"[..])]);
        let e = Key::new([Some(&b""[..]), Some(b"c")]);
        assert_ne!(a, b);
        assert_eq!(a, c);
        assert_ne!(n, e);
        assert!(matches!(a, Key::Inline(..)));
        let big = [7u8; 30];
        let h1 = Key::new([Some(&b"x"[..]), Some(&big[..])]);
        let h2 = Key::new([Some(&b"x"[..]), Some(&big[..])]);
        assert!(matches!(h1, Key::Heap(..)));
        assert_eq!(h1, h2);
        assert_eq!(h1.get(1), Some(&big[..]));
        // Exactly INLINE bytes stay inline; one more goes to the heap.
        let fits = [1u8; INLINE - 1];
        assert!(matches!(Key::new([Some(&fits[..])]), Key::Inline(..)));
        let over = [1u8; INLINE];
        assert!(matches!(Key::new([Some(&over[..])]), Key::Heap(..)));
        let nulls = vec![None; INLINE + 3];
        let k = Key::new(nulls.iter().copied());
        assert_eq!(k.iter().count(), INLINE + 3);
    }
}
