//! FNV-1a hashing exactly as the GrowthBook JS SDK computes it, so a subject
//! lands in the same bucket here as in every other GrowthBook SDK.

const FNV_OFFSET_BASIS: u32 = 0x811C_9DC5;
const FNV_PRIME: u32 = 0x0100_0193;

/// Streaming FNV-1a state, so concatenations are hashed without building them.
#[derive(Clone, Copy)]
struct Fnv1a32(u32);

impl Fnv1a32 {
    const fn new() -> Self {
        Self(FNV_OFFSET_BASIS)
    }

    #[inline]
    fn unit(self, unit: u32) -> Self {
        Self((self.0 ^ unit).wrapping_mul(FNV_PRIME))
    }

    /// Feeds UTF-16 code units, because the JS SDK hashes `charCodeAt` values.
    #[inline]
    fn write_str(self, s: &str) -> Self {
        if s.is_ascii() {
            // ASCII bytes are their own UTF-16 code units; skip the transcoder.
            self.write_ascii(s.as_bytes())
        } else {
            s.encode_utf16()
                .fold(self, |state, unit| state.unit(u32::from(unit)))
        }
    }

    #[inline]
    fn write_ascii(self, bytes: &[u8]) -> Self {
        bytes
            .iter()
            .fold(self, |state, &byte| state.unit(u32::from(byte)))
    }

    const fn finish(self) -> u32 {
        self.0
    }
}

/// 32-bit FNV-1a over the UTF-16 code units of `input`, matching the JS SDK.
pub fn fnv1a_32(input: &str) -> u32 {
    Fnv1a32::new().write_str(input).finish()
}

/// FNV-1a of the concatenation of `parts`, without allocating the concatenation.
pub(super) fn fnv1a_32_concat(parts: &[&str]) -> u32 {
    parts
        .iter()
        .fold(Fnv1a32::new(), |state, part| state.write_str(part))
        .finish()
}

/// GrowthBook's bucketing hash in [0, 1); `None` for hash versions other than 1 and 2.
pub fn hash(seed: &str, value: &str, version: u32) -> Option<f64> {
    match version {
        1 => {
            // v1 deliberately puts the value first; changing it would move users.
            let h = Fnv1a32::new().write_str(value).write_str(seed).finish();
            Some(f64::from(h % 1000) / 1000.0)
        }
        2 => {
            let first = Fnv1a32::new().write_str(seed).write_str(value).finish();
            let mut digits = [0u8; 10];
            let second = Fnv1a32::new()
                .write_ascii(decimal_digits(first, &mut digits))
                .finish();
            // Remainder first, then divide: this keeps the result bit-identical to JS.
            Some(f64::from(second % 10_000) / 10_000.0)
        }
        _ => None,
    }
}

/// Writes `n` in decimal into a stack buffer (u32 has at most 10 digits).
fn decimal_digits(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        // `n % 10` is below 10, so the cast cannot truncate.
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain textbook FNV-1a over explicit code units, as a reference.
    fn reference(units: &[u32]) -> u32 {
        let mut h: u32 = 2_166_136_261;
        for &u in units {
            h ^= u;
            h = h.wrapping_mul(16_777_619);
        }
        h
    }

    #[test]
    fn check_value_from_the_spec() {
        assert_eq!(fnv1a_32("a"), 3_826_002_220);
        assert_eq!(fnv1a_32("a"), 0xE40C_292C);
    }

    #[test]
    fn non_ascii_ids_hash_by_utf16_code_units_not_utf8_bytes() {
        // "é" is one UTF-16 unit (0xE9) but two UTF-8 bytes (0xC3 0xA9).
        assert_eq!(fnv1a_32("é"), reference(&[0xE9]));
        assert_ne!(fnv1a_32("é"), reference(&[0xC3, 0xA9]));
        // U+1F600 is the surrogate pair D83D DE00 in UTF-16.
        assert_eq!(
            fnv1a_32("u😀1"),
            reference(&[u32::from(b'u'), 0xD83D, 0xDE00, u32::from(b'1')])
        );
        // Hand computation for "é": (0x811C9DC5 ^ 0xE9) * 0x01000193 mod 2^32.
        let by_hand = ((0x811C_9DC5u64 ^ 0xE9) * 0x0100_0193) % (1u64 << 32);
        assert_eq!(u64::from(fnv1a_32("é")), by_hand);
    }

    #[test]
    fn streaming_concatenation_equals_hashing_the_built_string() {
        let pairs = [("", ""), ("seed", "a"), ("sé", "ü😀"), ("𝔘", "x")];
        for (seed, value) in pairs {
            let first = fnv1a_32(&format!("{seed}{value}"));
            let second = fnv1a_32(&first.to_string());
            let expected = f64::from(second % 10_000) / 10_000.0;
            assert_eq!(hash(seed, value, 2), Some(expected), "{seed:?} {value:?}");
            let v1 = f64::from(fnv1a_32(&format!("{value}{seed}")) % 1000) / 1000.0;
            assert_eq!(hash(seed, value, 1), Some(v1), "{seed:?} {value:?}");
        }
        assert_eq!(
            fnv1a_32_concat(&["1", "__", "namespace1"]),
            fnv1a_32("1__namespace1")
        );
    }

    #[test]
    fn decimal_digits_cover_the_extremes() {
        let mut buf = [0u8; 10];
        assert_eq!(decimal_digits(0, &mut buf), b"0");
        assert_eq!(decimal_digits(u32::MAX, &mut buf), b"4294967295");
        assert_eq!(decimal_digits(717_764_279, &mut buf), b"717764279");
    }

    #[test]
    fn unknown_versions_have_no_hash() {
        assert_eq!(hash("abc", "def", 0), None);
        assert_eq!(hash("abc", "def", 3), None);
    }
}
