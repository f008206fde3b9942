//! The fleet's store: answers in Redis under `PREFIX:cache:{FEATURE|VERSION}:HASH`, written with
//! `SET ... PX ttl`, gzip-compressed above [`COMPRESS_ABOVE`] bytes and refused above
//! [`MAX_ENTRY_BYTES`]. Every entry of one feature version shares a hash tag, and a set
//! (`...:index`, same tag) lists them, so `clear` finds them in one slot on a single server and
//! on a cluster alike (a `SCAN` would have to visit every master of a cluster).

use std::io::{Read, Write};
use std::sync::LazyLock;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::CachedAnswer;
use crate::state::{Degraded, Keyspace, SharedState, StateError};

/// Values larger than this (JSON bytes) are stored gzip-compressed.
pub const COMPRESS_ABOVE: usize = 1024;

/// The largest value stored, after compression; a larger answer is not cached.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// The first byte of a stored value: how the rest is encoded.
const PLAIN: u8 = b'j';
const GZIP: u8 = b'z';

/// Writes the entry and adds it to its version's index, extending the index's lifetime to the
/// entry's so the index never outlives what it lists for long.
static STORE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
",
    )
});

/// The key of entry `hash` of `feature`/`version`.
pub(super) fn entry_key(keys: &Keyspace, feature: &str, version: &str, hash: &str) -> String {
    keys.key("cache", &[feature, version], hash)
}

fn index_key(keys: &Keyspace, feature: &str, version: &str) -> String {
    keys.key("cache", &[feature, version], "index")
}

/// Encodes `answer` for Redis; `None` when it is larger than [`MAX_ENTRY_BYTES`].
pub(super) fn encode(answer: &CachedAnswer) -> Option<Vec<u8>> {
    let json = serde_json::to_vec(answer).ok()?;
    let mut value = Vec::with_capacity(json.len().min(COMPRESS_ABOVE) + 1);
    if json.len() > COMPRESS_ABOVE {
        value.push(GZIP);
        let mut encoder = GzEncoder::new(value, Compression::fast());
        encoder.write_all(&json).ok()?;
        value = encoder.finish().ok()?;
    } else {
        value.push(PLAIN);
        value.extend_from_slice(&json);
    }
    (value.len() <= MAX_ENTRY_BYTES).then_some(value)
}

/// Decodes a stored value; `None` for one this version cannot read (treated as a miss).
pub(super) fn decode(value: &[u8]) -> Option<CachedAnswer> {
    match value.split_first()? {
        (&PLAIN, json) => serde_json::from_slice(json).ok(),
        (&GZIP, compressed) => {
            let mut json = Vec::new();
            GzDecoder::new(compressed)
                // A decompression bomb stops at the cap.
                .take(MAX_ENTRY_BYTES as u64 * 64)
                .read_to_end(&mut json)
                .ok()?;
            serde_json::from_slice(&json).ok()
        }
        _ => None,
    }
}

/// Reads entry `key`; a degraded state is a miss.
pub(super) fn get(shared: &SharedState, key: &str) -> Result<Option<CachedAnswer>, Degraded> {
    let value: Option<Vec<u8>> = shared.run(|redis| {
        redis.with_connection(|connection| redis::cmd("GET").arg(key).query(connection))
    })?;
    Ok(value.as_deref().and_then(decode))
}

/// Stores `value` under `key` for `ttl_ms`; a degraded state skips it.
pub(super) fn put(
    shared: &SharedState,
    feature: &str,
    version: &str,
    key: &str,
    value: &[u8],
    ttl_ms: u64,
) -> Result<(), Degraded> {
    let index = index_key(shared.redis().keys(), feature, version);
    shared.run(|redis| {
        redis.with_connection(|connection| {
            STORE
                .key(key)
                .key(&index)
                .arg(value)
                .arg(ttl_ms)
                .invoke::<i64>(connection)
        })
    })?;
    Ok(())
}

/// Deletes every entry of `feature`/`version` listed in its index, and the index; returns how
/// many entries were deleted (those already expired are not counted).
pub(super) fn clear(shared: &SharedState, feature: &str, version: &str) -> Result<u64, StateError> {
    let index = index_key(shared.redis().keys(), feature, version);
    let redis = shared.redis();
    let members: Vec<String> = redis
        .with_connection(|connection| redis::cmd("SMEMBERS").arg(&index).query(connection))?;
    let mut deleted = 0u64;
    // All of one version's keys share a slot, so a multi-key DEL is valid on a cluster.
    for chunk in members.chunks(500) {
        deleted += redis.with_connection(|connection| {
            redis::cmd("DEL").arg(chunk).query::<u64>(connection)
        })?;
    }
    redis.with_connection(|connection| redis::cmd("DEL").arg(&index).query::<u64>(connection))?;
    Ok(deleted)
}

/// How many entries of `feature`/`version` are alive now (listed and not expired); prunes
/// expired ones from the index on the way.
pub(super) fn count(shared: &SharedState, feature: &str, version: &str) -> Result<u64, StateError> {
    let index = index_key(shared.redis().keys(), feature, version);
    let redis = shared.redis();
    let members: Vec<String> = redis
        .with_connection(|connection| redis::cmd("SMEMBERS").arg(&index).query(connection))?;
    let mut alive = 0u64;
    // One EXISTS per entry: the cluster client sends no pipelines, and a multi-key EXISTS only
    // counts. A report's cost, not a call's.
    for member in &members {
        let exists: bool = redis
            .with_connection(|connection| redis::cmd("EXISTS").arg(member).query(connection))?;
        if exists {
            alive += 1;
        } else {
            redis.with_connection(|connection| {
                redis::cmd("SREM").arg(&index).arg(member).query::<u64>(connection)
            })?;
        }
    }
    Ok(alive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Usage;

    fn answer(text: &str) -> CachedAnswer {
        CachedAnswer {
            text: text.into(),
            provider: "mock".into(),
            model: "m".into(),
            response_model: None,
            response_id: None,
            finish_reason: Some("stop".into()),
            raw_finish_reason: Some("stop".into()),
            usage: Usage::default(),
            cost_usd: 0.001,
            downgraded: false,
            tool_calls: Vec::new(),
        }
    }

    #[test]
    fn a_small_answer_is_stored_plain_and_reads_back() {
        let value = encode(&answer("short")).unwrap_or_default();
        assert_eq!(value.first(), Some(&PLAIN));
        assert_eq!(decode(&value), Some(answer("short")));
    }

    #[test]
    fn a_large_answer_is_gzipped_and_reads_back() {
        let text = "career path ".repeat(500);
        let value = encode(&answer(&text)).unwrap_or_default();
        assert_eq!(value.first(), Some(&GZIP));
        assert!(value.len() < text.len() / 4, "{} bytes", value.len());
        assert_eq!(decode(&value), Some(answer(&text)));
    }

    #[test]
    fn an_answer_past_the_size_cap_is_not_stored() {
        // Pseudo-random text (xorshift) does not compress below the cap.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let text: String = (0..MAX_ENTRY_BYTES * 2)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'!' + (state % 90) as u8)
            })
            .collect();
        assert_eq!(encode(&answer(&text)), None);
    }

    #[test]
    fn keys_of_one_version_share_a_hash_tag_under_the_prefix() {
        let keys = Keyspace::new("app");
        assert_eq!(
            entry_key(&keys, "career", "1.0.0", "ab12"),
            "app:cache:{career|1.0.0}:ab12"
        );
        assert_eq!(index_key(&keys, "career", "1.0.0"), "app:cache:{career|1.0.0}:index");
    }
}
