//! A fast hasher for the hot path's small maps.

/// FxHash (one multiply per word) for maps on the hot path keyed by what we choose —
/// key ids, minutes, outcomes, route patterns — where SipHash's flood resistance buys
/// nothing and costs hundreds of instructions a lookup.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FxBuild = std::hash::BuildHasherDefault<FxHasher>;

/// Hashes a key digest (32 bytes of blake3 or SHA output) for the key cache: its first
/// 16 bytes, each half mixed with a secret drawn at start, folded by one 128-bit
/// multiply. The digest is already uniform, so this spreads as well as SipHash at a
/// tenth of the cost; the secret keeps someone grinding keys offline from knowing
/// which digests share a bucket.
#[derive(Clone, Copy)]
pub struct DigestBuild {
    seeds: [u64; 2],
}

impl DigestBuild {
    pub fn random() -> Self {
        DigestBuild {
            seeds: [rand::random(), rand::random()],
        }
    }
}

impl std::hash::BuildHasher for DigestBuild {
    type Hasher = DigestHasher;

    fn build_hasher(&self) -> DigestHasher {
        DigestHasher {
            seeds: self.seeds,
            state: 0,
        }
    }
}

pub struct DigestHasher {
    seeds: [u64; 2],
    state: u64,
}

impl DigestHasher {
    fn fold(&mut self, a: u64, b: u64) {
        let product =
            u128::from(a ^ self.seeds[0] ^ self.state).wrapping_mul(u128::from(b ^ self.seeds[1]));
        self.state = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        let word = |at: usize| {
            let mut w = [0u8; 8];
            if let Some(b) = bytes.get(at..) {
                let n = b.len().min(8);
                w[..n].copy_from_slice(&b[..n]);
            }
            u64::from_le_bytes(w)
        };
        self.fold(word(0), word(8));
    }

    /// The length prefix a slice or array writes first: the same for every digest.
    fn write_usize(&mut self, _: usize) {}

    fn finish(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// Equal digests hash equal; digests that differ in their first 16 bytes spread
    /// over a small table's buckets about evenly; two builds (two processes) disagree.
    #[test]
    fn digests_spread_and_depend_on_the_secret() {
        let build = DigestBuild::random();
        let digest = |i: u32| *blake3::hash(&i.to_le_bytes()).as_bytes();
        assert_eq!(build.hash_one(digest(7)), build.hash_one(digest(7)));
        let mut buckets = [0u32; 64];
        for i in 0..64_000 {
            buckets[(build.hash_one(digest(i)) & 63) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|n| (800..1200).contains(n)),
            "{buckets:?}"
        );
        let other = DigestBuild::random();
        let same = (0..64).filter(|i| build.hash_one(digest(*i)) == other.hash_one(digest(*i)));
        assert_eq!(same.count(), 0);
    }
}
