//! The response cache (issue 11): answers of `complete()` reused for the same feature, version,
//! input, model chain and partition until they expire. Opt-in per feature and version
//! ([`CacheSettings`]). The store is in-process ([`MemoryLimits`], the embedded default) or,
//! with the Redis state backend, Redis, shared by the fleet; a degraded Redis is a miss and
//! stores nothing, never a failed call.
//!
//! Never stored: errors, refusals, truncated answers, answers whose cost was estimated, and
//! answers of a chain whose temperature is above 0 unless the settings allow it.
//!
//! Sits above `client` (it stores `Completion`s) and `state` (Redis), below `telemetry` and the
//! engine.

mod entry;
mod key;
mod memory;
mod redis;
mod replay;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[cfg_attr(not(feature = "test-hooks"), allow(unused_imports))]
pub use self::entry::{CachedAnswer, NotCached, temperature_allows};
#[cfg_attr(not(feature = "test-hooks"), allow(unused_imports))]
pub use self::key::{
    KeyParts, cache_key, normalize_text, normalize_value, partition_label, partition_of,
};
pub use self::memory::MemoryLimits;
#[cfg_attr(not(feature = "test-hooks"), allow(unused_imports))]
pub use self::redis::{COMPRESS_ABOVE, MAX_ENTRY_BYTES};
pub use self::replay::replay;
use self::memory::{MemoryStore, Stored};
use crate::config::CacheSettings;
use crate::resolve::{Context, Resolution};
use crate::state::{SharedState, StateError};

/// Where a feature's cached answers live for one call: the key, the partition and the TTL.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup {
    /// The feature.
    pub feature: String,
    /// The prompt version.
    pub version: String,
    /// SHA-256 of the key material, 64 hex digits.
    pub hash: String,
    /// The partition as people read it (`sector=tech`), `None` when not partitioned.
    pub partition: Option<String>,
    /// How long a stored answer lives.
    pub ttl: Duration,
}

impl Lookup {
    /// The lookup for `resolution` made from `context` under `settings`; `None` when the chain's
    /// temperature keeps it out of the cache.
    pub fn plan(
        settings: &CacheSettings,
        resolution: &Resolution,
        context: &Context,
    ) -> Option<Lookup> {
        if !temperature_allows(
            settings.allow_temperature_above_zero,
            &resolution.model,
            &resolution.fallbacks,
        ) {
            return None;
        }
        let partition = partition_of(settings, context.attributes());
        let hash = cache_key(
            settings,
            &KeyParts {
                feature: &resolution.feature,
                version: &resolution.version,
                messages: &resolution.messages,
                variables: context.variables_value(),
                model: &resolution.model,
                fallbacks: &resolution.fallbacks,
                partition: &partition,
            },
        );
        Some(Lookup {
            feature: resolution.feature.clone(),
            version: resolution.version.clone(),
            hash,
            partition: partition_label(&partition),
            ttl: Duration::from_secs(settings.ttl_seconds),
        })
    }
}

/// How a lookup went, for telemetry and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheOutcome {
    /// True when the answer came from the cache.
    pub hit: bool,
    /// On a hit, the original call's cost in USD; 0 on a miss.
    pub saved_usd: f64,
    /// The partition looked in.
    pub partition: Option<String>,
}

/// What became of the answers a cache was offered since its engine opened: the figures behind
/// `prompt-config cache warm`'s stored / not stored counts. Hits are not counted here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Answers stored (in memory, or in Redis).
    pub stored: u64,
    /// Answers the never-cached rule kept out: refusals, truncated answers, estimated costs,
    /// answers of a budget's downgrade chain, and answers of a chain whose temperature is above
    /// 0 when the settings do not allow it.
    pub not_cacheable: u64,
    /// Cacheable answers the store did not take: Redis failed or was degraded, or the entry
    /// was past the 256 KiB cap per Redis entry (after compression).
    pub store_failed: u64,
}

/// The engine's response cache: one in-process store, or Redis when the state is shared.
pub struct ResponseCache {
    memory: MemoryStore,
    shared: Option<SharedState>,
    stored: AtomicU64,
    not_cacheable: AtomicU64,
    store_failed: AtomicU64,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ResponseCache")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl ResponseCache {
    /// A cache in Redis when `shared` is given, else in this process within `limits`.
    pub fn new(shared: Option<SharedState>, limits: MemoryLimits) -> ResponseCache {
        ResponseCache {
            // Small when unused: moka allocates as entries arrive.
            memory: MemoryStore::new(limits),
            shared,
            stored: AtomicU64::new(0),
            not_cacheable: AtomicU64::new(0),
            store_failed: AtomicU64::new(0),
        }
    }

    /// `redis` or `memory`.
    pub fn backend(&self) -> &'static str {
        if self.shared.is_some() {
            "redis"
        } else {
            "memory"
        }
    }

    /// The stored answer for `lookup`, if any. A Redis that fails or is degraded is a miss.
    pub fn get(&self, lookup: &Lookup) -> Option<CachedAnswer> {
        match &self.shared {
            Some(shared) => {
                let key = self::redis::entry_key(
                    shared.redis().keys(),
                    &lookup.feature,
                    &lookup.version,
                    &lookup.hash,
                );
                self::redis::get(shared, &key).ok().flatten()
            }
            None => self.memory.get(&lookup.hash),
        }
    }

    /// Counts an answer the never-cached rule kept out (see [`StoreCounts::not_cacheable`]).
    pub fn note_not_cacheable(&self) {
        self.not_cacheable.fetch_add(1, Ordering::Relaxed);
    }

    /// What became of the answers offered so far.
    pub fn store_counts(&self) -> StoreCounts {
        StoreCounts {
            stored: self.stored.load(Ordering::Relaxed),
            not_cacheable: self.not_cacheable.load(Ordering::Relaxed),
            store_failed: self.store_failed.load(Ordering::Relaxed),
        }
    }

    /// Stores `answer` for `lookup`; skipped (returns false) when Redis is degraded or the
    /// value is past [`MAX_ENTRY_BYTES`]. Counted in [`StoreCounts`] either way.
    pub fn put(&self, lookup: &Lookup, answer: CachedAnswer) -> bool {
        let stored = self.store(lookup, answer);
        let counter = if stored {
            &self.stored
        } else {
            &self.store_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        stored
    }

    fn store(&self, lookup: &Lookup, answer: CachedAnswer) -> bool {
        match &self.shared {
            Some(shared) => {
                let Some(value) = self::redis::encode(&answer) else {
                    return false;
                };
                let key = self::redis::entry_key(
                    shared.redis().keys(),
                    &lookup.feature,
                    &lookup.version,
                    &lookup.hash,
                );
                let ttl_ms = u64::try_from(lookup.ttl.as_millis()).unwrap_or(u64::MAX);
                self::redis::put(
                    shared,
                    &lookup.feature,
                    &lookup.version,
                    &key,
                    &value,
                    ttl_ms,
                )
                .is_ok()
            }
            None => {
                // The hash covers feature and version; they are kept beside it for `clear`.
                self.memory.put(
                    lookup.hash.clone(),
                    Stored {
                        feature: lookup.feature.clone(),
                        version: lookup.version.clone(),
                        ttl: lookup.ttl,
                        answer,
                    },
                );
                true
            }
        }
    }

    /// Removes the stored answers of `feature`, of each of `versions`. In Redis this clears
    /// them for the whole fleet and returns how many were deleted; the memory store only
    /// clears this process's entries (`None`: it cannot count them).
    pub fn clear(&self, feature: &str, versions: &[&str]) -> Result<Option<u64>, StateError> {
        match &self.shared {
            Some(shared) => {
                let mut deleted = 0;
                for version in versions {
                    deleted += self::redis::clear(shared, feature, version)?;
                }
                Ok(Some(deleted))
            }
            None => {
                for version in versions {
                    self.memory.clear(feature, Some(version));
                }
                Ok(None)
            }
        }
    }

    /// Live entries of `feature`/`version`: in Redis (the fleet's), or in this process.
    pub fn entries(&self, feature: &str, version: &str) -> Result<u64, StateError> {
        match &self.shared {
            Some(shared) => self::redis::count(shared, feature, version),
            None => Ok(self.memory.entry_count(feature, version)),
        }
    }
}

/// The outcome of a lookup that missed in `partition`.
pub fn miss(partition: Option<String>) -> CacheOutcome {
    CacheOutcome {
        hit: false,
        saved_usd: 0.0,
        partition,
    }
}
