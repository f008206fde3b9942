//! The embedded store: a bounded in-process cache (`moka`), one per engine, with a TTL per entry.
//! It is bounded by bytes and by entries at once: each entry weighs at least
//! `max_bytes / max_entries`, so the byte bound alone also keeps the count under `max_entries`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

use super::CachedAnswer;

/// Bounds of the in-process store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// Most entries held (10,000).
    pub max_entries: u64,
    /// Most bytes of answers held, roughly (64 MiB).
    pub max_bytes: u64,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        MemoryLimits {
            max_entries: 10_000,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

/// One stored answer with what identifies it for `clear` and its own lifetime.
pub(super) struct Stored {
    pub feature: String,
    pub version: String,
    pub ttl: Duration,
    pub answer: CachedAnswer,
}

struct PerEntryTtl;

impl Expiry<String, Arc<Stored>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Arc<Stored>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    /// A newer answer stored under the same key (two concurrent misses) lives its own TTL.
    fn expire_after_update(
        &self,
        _key: &String,
        value: &Arc<Stored>,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The in-process store.
pub(super) struct MemoryStore {
    cache: Cache<String, Arc<Stored>>,
}

impl MemoryStore {
    pub(super) fn new(limits: MemoryLimits) -> MemoryStore {
        let floor = (limits.max_bytes / limits.max_entries.max(1)).max(1);
        let cache = Cache::builder()
            .max_capacity(limits.max_bytes)
            .weigher(move |_key: &String, value: &Arc<Stored>| -> u32 {
                let size = value.answer.approximate_size() as u64;
                u32::try_from(size.max(floor)).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .support_invalidation_closures()
            .build();
        MemoryStore { cache }
    }

    pub(super) fn get(&self, key: &str) -> Option<CachedAnswer> {
        self.cache.get(key).map(|stored| stored.answer.clone())
    }

    pub(super) fn put(&self, key: String, stored: Stored) {
        self.cache.insert(key, Arc::new(stored));
    }

    /// Drops the entries of `feature` (of `version` only, when given).
    pub(super) fn clear(&self, feature: &str, version: Option<&str>) {
        let feature = feature.to_string();
        let version = version.map(str::to_string);
        // Refused only when the builder did not enable closures, which `new` does.
        let _ = self.cache.invalidate_entries_if(move |_key, stored| {
            stored.feature == feature && version.as_ref().is_none_or(|v| *v == stored.version)
        });
    }

    /// Live entries of `feature`/`version` (a walk over the whole store: for reports only).
    pub(super) fn entry_count(&self, feature: &str, version: &str) -> u64 {
        self.cache
            .iter()
            .filter(|(_, stored)| stored.feature == feature && stored.version == version)
            .count() as u64
    }
}
