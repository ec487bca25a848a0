//! Choosing a partition for a record, the way the Java client does, so that a key lands on
//! the same partition whichever client wrote it.

/// The partition the Java client's default partitioner picks for `key` among `partitions`:
/// `toPositive(murmur2(key)) % partitions`, with Kafka's murmur2 seed. `None` when the topic
/// has no partitions.
pub fn partition_for_key(key: &[u8], partitions: u32) -> Option<u32> {
    if partitions == 0 {
        return None;
    }
    // Java's `Utils.toPositive` masks the sign bit rather than taking the absolute value.
    let hash = murmur2::murmur2(key, murmur2::KAFKA_SEED) & 0x7fff_ffff;
    Some(hash % partitions)
}

/// Where unkeyed records go: one partition until its open batch is sealed, then the next
/// (KIP-480). Sticking fills batches instead of spreading a trickle of records as many tiny
/// batches across every partition, which matters most on a slow gateway uplink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StickyPartitioner {
    current: Option<u32>,
}

impl StickyPartitioner {
    /// The partition for the next unkeyed record among `partitions` (`None` for none).
    pub fn partition(&mut self, partitions: u32) -> Option<u32> {
        if partitions == 0 {
            return None;
        }
        let p = match self.current {
            Some(p) if p < partitions => p,
            _ => 0,
        };
        self.current = Some(p);
        Some(p)
    }

    /// The batch of `sealed` was sealed: move unkeyed records on to the next partition, so
    /// load spreads across partitions batch by batch.
    pub fn on_batch_sealed(&mut self, sealed: u32, partitions: u32) {
        if self.current == Some(sealed) && partitions > 0 {
            self.current = Some((sealed + 1) % partitions);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hashes the Java client's `UtilsTest.testMurmur2` expects.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, java) in cases {
            assert_eq!(murmur2::murmur2(key, murmur2::KAFKA_SEED) as i32, java);
            let expected = (java & 0x7fff_ffff) as u32 % 12;
            assert_eq!(partition_for_key(key, 12), Some(expected));
        }
        assert_eq!(partition_for_key(b"k", 0), None);
    }

    #[test]
    fn sticky_moves_on_when_its_batch_is_sealed() {
        let mut s = StickyPartitioner::default();
        assert_eq!(s.partition(3), Some(0));
        assert_eq!(s.partition(3), Some(0));
        s.on_batch_sealed(1, 3);
        assert_eq!(
            s.partition(3),
            Some(0),
            "another partition's batch does not move it"
        );
        s.on_batch_sealed(0, 3);
        assert_eq!(s.partition(3), Some(1));
        s.on_batch_sealed(1, 3);
        s.on_batch_sealed(2, 3);
        assert_eq!(s.partition(3), Some(0));
        // The topic shrank under it (metadata changed): start again inside the range.
        s.on_batch_sealed(0, 3);
        assert_eq!(s.partition(1), Some(0));
        assert_eq!(s.partition(0), None);
    }
}
