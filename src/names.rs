//! Hashing for the short names a run asks for thousands of times: profile property names
//! (`role_arn`, `mfa_serial`) and environment variable names (`AWS_REGION`). `list` asks some
//! thirty of each for every profile, most of them absent; SipHash, or FNV over every byte,
//! was a large part of its cost.

use std::hash::{BuildHasherDefault, Hasher};

/// The hash of a name from its length and its first and last eight bytes, each byte with bit
/// 5 set: that makes `A` and `a` (every ASCII letter and its other case) the same byte, as
/// lowercasing does, so a name hashes as its lowercase form would (the SDK's parser keys
/// property names ASCII-lowercased). Other bytes it folds together: names that share length,
/// head and tail, or differ in case only, collide, and a map then compares them whole.
pub(crate) fn name_hash(name: &str) -> u64 {
    hash_bytes(name.as_bytes())
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    const FOLD: u64 = 0x2020_2020_2020_2020;
    const MIX: u64 = 0x9E37_79B9_7F4A_7C15;
    fn word(bytes: &[u8]) -> u64 {
        // Eight bytes are one load; a shorter name is padded with zeros.
        let w = <[u8; 8]>::try_from(bytes).unwrap_or_else(|_| {
            let mut w = [0u8; 8];
            w[..bytes.len()].copy_from_slice(bytes);
            w
        });
        u64::from_le_bytes(w) | FOLD
    }
    let n = bytes.len();
    let head = word(&bytes[..n.min(8)]);
    let tail = word(&bytes[n.saturating_sub(8)..]);
    let x = (head ^ tail.rotate_left(29) ^ (n as u64).wrapping_mul(MIX)).wrapping_mul(MIX);
    x ^ (x >> 29)
}

/// A set of [`name_hash`]es, which need no hashing again.
pub(crate) type NameSet = std::collections::HashSet<u64, BuildHasherDefault<AlreadyHashed>>;

/// The hasher of a [`NameSet`]: its keys are hashes already.
#[derive(Default)]
pub(crate) struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64s are hashed with it; this keeps any other use correct, if slow.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by names, hashed with [`name_hash`].
pub(crate) type NameMap<V> = std::collections::HashMap<String, V, BuildHasherDefault<NameHasher>>;

/// The hasher of a [`NameMap`]: a `str` key is written as its bytes and then one `0xff` byte,
/// which only marks the end.
#[derive(Default)]
pub(crate) struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 ^= hash_bytes(bytes);
    }
    fn write_u8(&mut self, _end: u8) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A prefilter by hash may only ever say "maybe" for a name the parse has: a name
        /// hashes as its ASCII-lowercase form does, whatever its bytes and length.
        #[test]
        fn a_name_hashes_as_its_lowercase_form(name in "\\PC{0,40}") {
            proptest::prop_assert_eq!(name_hash(&name), name_hash(&name.to_ascii_lowercase()));
            proptest::prop_assert_eq!(name_hash(&name), name_hash(&name.to_ascii_uppercase()));
        }

        /// Names that differ only in case are different keys of a map all the same.
        #[test]
        fn a_name_map_tells_names_apart_that_hash_alike(name in "[A-Za-z_]{1,30}") {
            let mut map = NameMap::default();
            map.insert(name.to_ascii_uppercase(), 1);
            map.insert(name.to_ascii_lowercase(), 2);
            let both = name.to_ascii_uppercase() != name.to_ascii_lowercase();
            proptest::prop_assert_eq!(map.len(), if both { 2 } else { 1 });
            proptest::prop_assert_eq!(map.get(&name.to_ascii_lowercase()), Some(&2));
        }
    }
}
