//! Arrays of protocol structures without allocating.
//!
//! A [`List`] is either a slice the caller built (for encoding) or a span of
//! already-validated wire bytes (after decoding), and iterates the same way in
//! both cases. This lets one struct type serve as both the encoder input and
//! the decoder output, so round trips and comparisons need no conversion, and
//! a decoded message can be re-encoded (a model broker echoing data back)
//! without copying it into collections.

use super::error::{DecodeError, EncodeError};
use super::reader::Reader;
use super::writer::Writer;

/// An element of a protocol array: encodable and decodable at a given
/// message version.
///
/// Elements are `Copy` because they are small views (integers and borrowed
/// slices); iteration hands them out by value.
pub trait Item<'a>: Copy {
    /// Writes the element as it appears at `version`.
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError>;
    /// Reads one element as it appears at `version`.
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError>;
}

impl<'a> Item<'a> for i32 {
    fn encode(&self, w: &mut Writer<'_>, _version: i16) -> Result<(), EncodeError> {
        w.put_i32(*self)
    }
    fn decode(r: &mut Reader<'a>, _version: i16) -> Result<Self, DecodeError> {
        r.get_i32()
    }
}

/// A protocol array: a borrowed slice or validated wire bytes.
pub struct List<'a, T> {
    repr: Repr<'a, T>,
}

/// Elements a caller computes as they are encoded, from tables of its own: a request whose
/// element count is known only at run time needs no array of elements built first (a
/// producer's Produce request names as many partitions as its tables hold batches for).
pub trait Source<'a, T> {
    /// Element `index` of list `key` (one source may serve several lists, such as one per
    /// topic); `None` ends the list early.
    fn item(&'a self, key: usize, index: usize) -> Option<T>;
}

enum Repr<'a, T> {
    Slice(&'a [T]),
    Source {
        source: &'a dyn Source<'a, T>,
        key: usize,
        count: usize,
    },
    Wire {
        bytes: &'a [u8],
        count: usize,
        version: i16,
    },
}

impl<T> Clone for Repr<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Repr<'_, T> {}
impl<T> Clone for List<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for List<'_, T> {}

impl<T> Default for List<'_, T> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<'a, T> List<'a, T> {
    /// The empty list.
    pub const EMPTY: Self = List {
        repr: Repr::Slice(&[]),
    };

    /// A list over elements the caller owns, for encoding.
    pub const fn from_slice(items: &'a [T]) -> Self {
        List {
            repr: Repr::Slice(items),
        }
    }

    /// A list of `count` elements `source` computes for `key`, for encoding.
    pub fn from_source(source: &'a dyn Source<'a, T>, key: usize, count: usize) -> Self {
        List {
            repr: Repr::Source { source, key, count },
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self.repr {
            Repr::Slice(s) => s.len(),
            Repr::Source { count, .. } | Repr::Wire { count, .. } => count,
        }
    }

    /// Whether the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<'a, T: Item<'a>> List<'a, T> {
    /// Iterates over the elements.
    pub fn iter(&self) -> ListIter<'a, T> {
        ListIter {
            repr: self.repr,
            pos: 0,
        }
    }

    /// Reads a non-null array (classic `int32` or compact varint count).
    pub fn decode(r: &mut Reader<'a>, version: i16, compact: bool) -> Result<Self, DecodeError> {
        Self::decode_nullable(r, version, compact)?.ok_or(DecodeError::UnexpectedNull)
    }

    /// Reads a nullable array. Every element is decoded once here, so that
    /// errors surface now and later iteration cannot fail.
    pub fn decode_nullable(
        r: &mut Reader<'a>,
        version: i16,
        compact: bool,
    ) -> Result<Option<Self>, DecodeError> {
        let Some(count) = r.get_array_len(compact)? else {
            return Ok(None);
        };
        Self::decode_counted(r, count, version).map(Some)
    }

    /// Reads `count` elements whose count prefix the caller already read
    /// (record batches and records count in their own formats). A count
    /// above the remaining bytes is rejected up front, since every element
    /// takes at least one byte.
    pub fn decode_counted(
        r: &mut Reader<'a>,
        count: usize,
        version: i16,
    ) -> Result<Self, DecodeError> {
        if count > r.remaining() {
            return Err(DecodeError::LengthOutOfRange);
        }
        let start = r.position();
        for _ in 0..count {
            T::decode(r, version)?;
        }
        Ok(List {
            repr: Repr::Wire {
                bytes: r.since(start),
                count,
                version,
            },
        })
    }

    /// Writes the array with its count prefix.
    pub fn encode(
        &self,
        w: &mut Writer<'_>,
        version: i16,
        compact: bool,
    ) -> Result<(), EncodeError> {
        w.put_array_len(Some(self.len()), compact)?;
        self.encode_items(w, version)
    }

    /// Writes an optional array (`None` = null).
    pub fn encode_nullable(
        list: Option<&Self>,
        w: &mut Writer<'_>,
        version: i16,
        compact: bool,
    ) -> Result<(), EncodeError> {
        match list {
            None => w.put_array_len(None, compact),
            Some(l) => l.encode(w, version, compact),
        }
    }

    /// Writes the elements without a count prefix.
    pub fn encode_items(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        match self.repr {
            Repr::Slice(items) => {
                for item in items {
                    item.encode(w, version)?;
                }
                Ok(())
            }
            // Re-encoding at the version it was decoded with is a plain copy;
            // at another version each element goes through its encoder.
            Repr::Wire {
                bytes, version: v, ..
            } if v == version => w.put_slice(bytes),
            Repr::Wire { .. } | Repr::Source { .. } => {
                let mut written = 0;
                for item in self.iter() {
                    item.encode(w, version)?;
                    written += 1;
                }
                // A source that ended early would leave the count prefix wrong.
                if written == self.len() {
                    Ok(())
                } else {
                    Err(EncodeError::CountMismatch)
                }
            }
        }
    }
}

impl<'a, T: Item<'a>> IntoIterator for List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T: Item<'a>> IntoIterator for &List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, T: Item<'a> + PartialEq> PartialEq for List<'a, T> {
    /// Element-wise: a slice list equals a wire list with the same elements.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a, T: Item<'a> + core::fmt::Debug> core::fmt::Debug for List<'a, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a [`List`].
pub struct ListIter<'a, T> {
    repr: Repr<'a, T>,
    pos: usize,
}

impl<'a, T: Item<'a>> Iterator for ListIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match &mut self.repr {
            Repr::Slice(items) => {
                let item = items.get(self.pos).copied();
                self.pos = self.pos.saturating_add(1);
                item
            }
            Repr::Source { source, key, count } => {
                if self.pos >= *count {
                    return None;
                }
                let item = source.item(*key, self.pos);
                self.pos += 1;
                item
            }
            Repr::Wire {
                bytes,
                count,
                version,
            } => {
                if *count == 0 {
                    return None;
                }
                let mut r = Reader::new(bytes.get(self.pos..).unwrap_or(&[]));
                // Validated when the list was decoded, so this cannot fail;
                // if it somehow did, ending the iteration is the safe answer.
                let item = T::decode(&mut r, *version).ok()?;
                self.pos = self.pos.saturating_add(r.position());
                *count -= 1;
                Some(item)
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self.repr {
            Repr::Slice(s) => s.len().saturating_sub(self.pos),
            Repr::Source { count, .. } => count.saturating_sub(self.pos),
            Repr::Wire { count, .. } => count,
        };
        (n, Some(n))
    }
}
