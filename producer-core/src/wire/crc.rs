//! CRC-32C (Castagnoli), the checksum of record batch v2.
//!
//! Implemented by the `crc` crate with a table built at compile time (no
//! runtime initialisation, no allocation), so it is usable on targets
//! without an allocator.

/// The CRC-32C algorithm (`CRC_32_ISCSI` in the `crc` catalogue).
pub const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    CRC32C.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }
}
