//! Deterministic randomness.
//!
//! The sandbox promises "same seed, same data", across releases of its dependencies, so it
//! does not use `rand`'s generators (whose streams may change between versions) for data:
//! a SplitMix64 stream seeded from the sandbox seed and a label is stable forever.

use uuid::Uuid;

/// A small, fast, deterministic generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed ^ 0x9E37_79B9_7F4A_7C15 }
    }

    /// A generator derived from `seed` and a list of labels: independent streams for
    /// independent things (an account's transactions for one day, a user's id...).
    pub fn derive(seed: u64, labels: &[u64]) -> Self {
        let mut h = mix(seed ^ 0xA076_1D64_78BD_642F);
        for &l in labels {
            h = mix(h ^ mix(l.wrapping_add(0xE703_7ED1_A0B4_28DB)));
        }
        Rng::new(h)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// A number in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = (hi - lo) as u64;
        lo + (self.next_u64() % span) as i64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }

    /// A random version-4 UUID.
    pub fn uuid(&mut self) -> Uuid {
        let hi = self.next_u64();
        let lo = self.next_u64();
        let bytes = ((hi as u128) << 64 | lo as u128).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// `n` lowercase hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(n);
        while s.len() < n {
            let mut v = self.next_u64();
            for _ in 0..16 {
                if s.len() == n {
                    break;
                }
                s.push(DIGITS[(v & 15) as usize] as char);
                v >>= 4;
            }
        }
        s
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of a string, for deriving streams from ids.
pub fn label(s: &str) -> u64 {
    // FNV-1a, then mixed: stable across platforms and releases.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let a: Vec<u64> = (0..5).map(|_| Rng::derive(7, &[1, 2]).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::derive(7, &[1, 2]).next_u64(), Rng::derive(7, &[2, 1]).next_u64());
        assert_ne!(Rng::derive(7, &[1]).next_u64(), Rng::derive(8, &[1]).next_u64());
    }

    #[test]
    fn uuids_are_v4_and_hex_has_length() {
        let mut r = Rng::new(1);
        let u = r.uuid();
        assert_eq!(u.get_version_num(), 4);
        assert_eq!(r.hex(24).len(), 24);
        assert!(r.hex(32).chars().all(|c| c.is_ascii_hexdigit()));
        for _ in 0..1000 {
            let v = r.range(-5, 5);
            assert!((-5..5).contains(&v));
        }
        assert_eq!(r.range(3, 3), 3);
    }
}
