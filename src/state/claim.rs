//! Once-per-fleet claims: the first process to claim a name wins it for a while, every other
//! process asking for the same name in that time loses. Used by alerts (one delivery of an alert
//! however many processes saw its condition). One `SET key 1 NX PX ttl`: atomic on one server,
//! and on a cluster (one key, its slot chosen by the Keyspace's hash tag).

use std::time::Duration;

use super::{RedisState, StateError};

/// Claims `key` (a full key name from [`Keyspace::key`](super::Keyspace::key)) for `ttl`:
/// `Ok(true)` when this call won it (no live claim existed), `Ok(false)` when another claim
/// holds it. The claim lapses by itself after `ttl` (at least 1 ms).
pub fn claim(redis: &RedisState, key: &str, ttl: Duration) -> Result<bool, StateError> {
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    redis.with_connection(|connection| {
        // SET NX answers OK when it set the key, nil when the key already existed.
        let answer: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(std::process::id())
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query(connection)?;
        Ok(answer.is_some())
    })
}
