//! Variable-length integers: unsigned LEB128 varints and their zigzag
//! (signed) forms.
//!
//! Kafka uses unsigned varints for compact lengths and tagged fields, and
//! zigzag varints/varlongs inside records. They are written inline here (no
//! dependency) and the size functions let encoders compute exact lengths
//! before writing, which the record batch builder needs to answer "how many
//! bytes will this record take".

/// Maps a signed 32-bit value to unsigned so that small magnitudes of either
/// sign encode short.
pub const fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

/// Inverse of [`zigzag32`].
pub const fn unzigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// Maps a signed 64-bit value to unsigned (see [`zigzag32`]).
pub const fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Inverse of [`zigzag64`].
pub const fn unzigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Bytes taken by `v` as an unsigned varint.
pub const fn unsigned_varint_len(v: u32) -> usize {
    unsigned_varlong_len(v as u64)
}

/// Bytes taken by `v` as an unsigned 64-bit varint.
pub const fn unsigned_varlong_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Bytes taken by `v` as a zigzag varint.
pub const fn varint_len(v: i32) -> usize {
    unsigned_varint_len(zigzag32(v))
}

/// Bytes taken by `v` as a zigzag varlong.
pub const fn varlong_len(v: i64) -> usize {
    unsigned_varlong_len(zigzag64(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_known_values() {
        assert_eq!(zigzag32(0), 0);
        assert_eq!(zigzag32(-1), 1);
        assert_eq!(zigzag32(1), 2);
        assert_eq!(zigzag32(i32::MIN), u32::MAX);
        assert_eq!(zigzag64(i64::MIN), u64::MAX);
        for v in [0, 1, -1, 63, -64, i32::MAX, i32::MIN] {
            assert_eq!(unzigzag32(zigzag32(v)), v);
            assert_eq!(unzigzag64(zigzag64(v.into())), i64::from(v));
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(unsigned_varint_len(0), 1);
        assert_eq!(unsigned_varint_len(127), 1);
        assert_eq!(unsigned_varint_len(128), 2);
        assert_eq!(
            unsigned_varint_len(u32::MAX),
            5,
            "the longest 32-bit varint"
        );
        assert_eq!(
            unsigned_varlong_len(u64::MAX),
            10,
            "the longest 64-bit varint"
        );
        assert_eq!(varint_len(-64), 1);
        assert_eq!(varint_len(64), 2);
        assert_eq!(varlong_len(i64::MIN), 10);
    }
}
