//! Breaker knowledge shared by the fleet: each process keeps its own breaker statistics, but when
//! a breaker opens the process publishes until when it stays open (`open_until`, Unix ms), and
//! at half-open exactly one process holds the probe lease. Two keys per breaker under one hash
//! tag (the breaker's name, `provider` or `provider/model`):
//!
//! - `PREFIX:breaker:{NAME}:open`: `"UNTIL:OPEN_FOR"` (ms), written by
//!   `scripts/breaker_publish.lua`, which never shortens a later `open_until` another process
//!   published; it expires by itself (`PX`) a hold after `UNTIL`, so while it exists past `UNTIL`
//!   the fleet's breaker is half-open.
//! - `PREFIX:breaker:{NAME}:lease`: the probe lease, `SET NX PX` with the holder's token; freed by
//!   the holder (`scripts/breaker_close.lua`) or by its expiry when the holder died mid-probe.

use std::sync::LazyLock;
use std::time::Duration;

use super::{RedisState, StateError};

static PUBLISH: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/breaker_publish.lua")));
static CLOSE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/breaker_close.lua")));

/// What the fleet knows about one breaker: open until `until_ms`, after an open time of
/// `open_for_ms` (a lease holder whose probe fails doubles it for the next trip).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetOpen {
    /// Until when the breaker is open, in Unix ms; past it, the fleet's breaker is half-open.
    pub until_ms: i64,
    /// The open time that led to `until_ms`, in ms.
    pub open_for_ms: u64,
}

impl FleetOpen {
    /// Parses the stored `"UNTIL:OPEN_FOR"`; `None` for anything else (a foreign value is
    /// ignored rather than trusted).
    fn parse(value: &str) -> Option<FleetOpen> {
        let (until, open_for) = value.split_once(':')?;
        Some(FleetOpen {
            until_ms: until.parse().ok()?,
            open_for_ms: open_for.parse().ok()?,
        })
    }
}

impl RedisState {
    fn breaker_keys(&self, breaker: &str) -> [String; 2] {
        [
            self.keys().key("breaker", &[breaker], "open"),
            self.keys().key("breaker", &[breaker], "lease"),
        ]
    }

    /// What the fleet published for `breaker`: `None` when no process has it open or
    /// half-open (never published, closed by a probe, or expired).
    pub fn breaker_lookup(&self, breaker: &str) -> Result<Option<FleetOpen>, StateError> {
        let [open, _] = self.breaker_keys(breaker);
        let value: Option<String> =
            self.with_connection(|connection| redis::cmd("GET").arg(&open).query(connection))?;
        Ok(value.as_deref().and_then(FleetOpen::parse))
    }

    /// Publishes that `breaker` is open until `open.until_ms`, kept `ttl` (the rest of the
    /// open time plus the half-open hold) unless a later `open_until` is already published,
    /// which stays. `lease_token` frees the caller's probe lease in the same script. Returns
    /// what is stored afterwards.
    pub fn breaker_publish(
        &self,
        breaker: &str,
        open: FleetOpen,
        ttl: Duration,
        lease_token: Option<&str>,
    ) -> Result<FleetOpen, StateError> {
        let [open_key, lease_key] = self.breaker_keys(breaker);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let (until_ms, open_for_ms): (i64, u64) = self.with_connection(|connection| {
            PUBLISH
                .key(&open_key)
                .key(&lease_key)
                .arg(open.until_ms)
                .arg(open.open_for_ms)
                .arg(ttl_ms)
                .arg(lease_token.unwrap_or(""))
                .invoke(connection)
        })?;
        Ok(FleetOpen {
            until_ms,
            open_for_ms,
        })
    }

    /// Takes the probe lease of `breaker` for `lease` (`SET NX PX`): true when the caller now
    /// holds it, false when another process (or another call of this one) does.
    pub fn breaker_take_lease(
        &self,
        breaker: &str,
        token: &str,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let [_, lease_key] = self.breaker_keys(breaker);
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        let taken: Option<String> = self.with_connection(|connection| {
            redis::cmd("SET")
                .arg(&lease_key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(lease_ms)
                .query(connection)
        })?;
        Ok(taken.is_some())
    }

    /// Ends the caller's probe lease (when `token` still holds it) and, with `close`, deletes
    /// the published `open_until` unless one later than `now_ms` was published meanwhile.
    /// Returns true when nothing is published for the breaker afterwards.
    pub fn breaker_end_lease(
        &self,
        breaker: &str,
        token: &str,
        now_ms: i64,
        close: bool,
    ) -> Result<bool, StateError> {
        let [open_key, lease_key] = self.breaker_keys(breaker);
        let cleared: i64 = self.with_connection(|connection| {
            CLOSE
                .key(&open_key)
                .key(&lease_key)
                .arg(token)
                .arg(now_ms)
                .arg(if close { "1" } else { "0" })
                .invoke(connection)
        })?;
        Ok(cleared == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_value_parses_and_anything_else_is_ignored() {
        assert_eq!(
            FleetOpen::parse("1796040000000:30000"),
            Some(FleetOpen {
                until_ms: 1_796_040_000_000,
                open_for_ms: 30_000
            })
        );
        assert_eq!(FleetOpen::parse("soon"), None);
        assert_eq!(FleetOpen::parse("1:-5"), None);
    }

    proptest::proptest! {
        #[test]
        fn what_the_publish_script_stores_parses_back(until_ms: i64, open_for_ms: u64) {
            let stored = format!("{until_ms}:{open_for_ms}");
            proptest::prop_assert_eq!(
                FleetOpen::parse(&stored),
                Some(FleetOpen { until_ms, open_for_ms })
            );
        }

        #[test]
        fn any_foreign_value_is_parsed_or_ignored_without_panicking(value in ".*") {
            let _ = FleetOpen::parse(&value);
        }
    }

    #[test]
    fn the_keys_of_one_breaker_share_its_hash_tag() {
        let keys = super::super::Keyspace::new("app");
        let open = keys.key("breaker", &["openai/gpt-4o"], "open");
        let lease = keys.key("breaker", &["openai/gpt-4o"], "lease");
        assert_eq!(super::super::keys::hash_tag(&open), "openai/gpt-4o");
        assert_eq!(
            super::super::keys::hash_tag(&open),
            super::super::keys::hash_tag(&lease)
        );
    }
}
