//! Tool-call ids as they are sent back to a provider in history: an assistant turn's tool calls
//! and the tool results answering them carry ids one provider wrote (OpenAI `call_...`,
//! Anthropic `toolu_...`, a gateway's own), and after a failover another provider must accept
//! them. One rule serves both wires, so a conversation is sent with the same ids whichever
//! provider gets it:
//!
//! - an id of 1 to [`MAX_ID_BYTES`] characters, each an ASCII letter, digit, `_` or `-`, is sent
//!   unchanged: every OpenAI and Anthropic id is one;
//! - any other id (empty, too long, or with another character: `functions.Bash:0`) is sent as
//!   `<its first 23 valid characters, others as _>_<16 hex digits of its SHA-256>`, at most 40
//!   characters. The mapping is a pure function of the id, so a tool call and the result
//!   answering it still match; two different ids map alike only if their SHA-256 digests share
//!   64 bits.
//!
//! Why these limits: Anthropic rejects a `tool_use.id` / `tool_result.tool_use_id` not matching
//! `^[a-zA-Z0-9_-]+$` ("String should match pattern", Messages API reference, `tool_use` block),
//! and OpenAI rejects a `messages[].tool_calls[].id` longer than 40 characters
//! (`string_above_max_length`: "Expected a string with maximum length 40"). The ids returned to
//! the caller in a completion are never changed; only what is sent is.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// The longest id sent unchanged, in bytes (OpenAI's limit on `tool_calls[].id`).
pub(crate) const MAX_ID_BYTES: usize = 40;

/// How many characters of a mapped id's original are kept before its digest.
const KEPT_PREFIX: usize = 23;

/// Hex digits of the digest in a mapped id (64 bits).
const DIGEST_HEX: usize = 16;

/// `id` as sent in history to either provider: unchanged when both accept it, else mapped as
/// the module says.
pub(crate) fn portable(id: &str) -> Cow<'_, str> {
    if !id.is_empty() && id.len() <= MAX_ID_BYTES && id.bytes().all(is_id_byte) {
        return Cow::Borrowed(id);
    }
    let mut mapped: String = id
        .chars()
        .take(KEPT_PREFIX)
        .map(|character| {
            if character.is_ascii() && is_id_byte(character as u8) {
                character
            } else {
                '_'
            }
        })
        .collect();
    mapped.push('_');
    let digest = Sha256::digest(id.as_bytes());
    for byte in digest.iter().take(DIGEST_HEX / 2) {
        mapped.push_str(&format!("{byte:02x}"));
    }
    Cow::Owned(mapped)
}

/// Whether `byte` may appear in an id Anthropic accepts (`[a-zA-Z0-9_-]`).
fn is_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_pass_unchanged() {
        for id in ["call_abc123", "toolu_01A09q90qw90lq917835lq9", "a-b_C"] {
            assert_eq!(portable(id), id);
        }
    }

    #[test]
    fn an_id_with_other_characters_keeps_a_readable_prefix_and_a_digest() {
        let mapped = portable("functions.Bash:0");
        assert!(mapped.starts_with("functions_Bash_0_"), "{mapped}");
        assert_eq!(mapped.len(), "functions_Bash_0_".len() + DIGEST_HEX);
        assert_eq!(portable("functions.Bash:0"), mapped, "deterministic");
    }

    #[test]
    fn ids_that_differ_only_in_a_replaced_character_map_apart() {
        assert_ne!(portable("a.b"), portable("a:b"));
        assert_ne!(portable("a.b"), portable("a_b"));
    }

    #[test]
    fn an_empty_id_maps_to_a_digest() {
        let mapped = portable("");
        assert_eq!(mapped.len(), 1 + DIGEST_HEX);
        assert!(mapped.starts_with('_'));
    }

    proptest::proptest! {
        #[test]
        fn every_sent_id_is_accepted_by_both_providers(id in "\\PC{0,80}|[\\x00-\\x7f]{0,60}") {
            let sent = portable(&id);
            proptest::prop_assert!(!sent.is_empty() && sent.len() <= MAX_ID_BYTES);
            proptest::prop_assert!(sent.bytes().all(is_id_byte));
            proptest::prop_assert_eq!(portable(&id), sent);
        }
    }
}
