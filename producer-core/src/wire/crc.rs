//! CRC-32C (Castagnoli), the checksum of record batch v2.
//!
//! Implemented by the `crc` crate with a table built at compile time (no runtime
//! initialisation, no allocation), so it is usable on targets without an allocator. The table
//! size is a flash-for-speed trade the firmware makes: by default one 1 KiB table; with the
//! `crc-slice16` feature, sixteen (16 KiB), about eight times faster, for hosts and larger
//! parts where CRC dominates batch encoding.

#[cfg(not(feature = "crc-slice16"))]
type Table = crc::Table<1>;
#[cfg(feature = "crc-slice16")]
type Table = crc::Table<16>;

/// The CRC-32C algorithm (`CRC_32_ISCSI` in the `crc` catalogue).
pub const CRC32C: crc::Crc<u32, Table> = crc::Crc::<u32, Table>::new(&crc::CRC_32_ISCSI);

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
        // Long enough to exercise the sliced path of the 16-table variant.
        let data: [u8; 1000] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        let bitwise = crc::Crc::<u32, crc::NoTable>::new(&crc::CRC_32_ISCSI).checksum(&data);
        assert_eq!(crc32c(&data), bitwise);
    }
}
