//! The response cache in `stats`: lookups, hits, hit rate and dollars saved per feature, version
//! and partition, from the `prompt_config.cache.*` fields of successful `llm.request` lines
//! (a line without `prompt_config.cache.hit` made no lookup and is not counted).

use std::collections::BTreeMap;

use serde::Serialize;

use super::read::Selection;

/// Response cache figures of one feature, version and partition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CacheStats {
    /// The feature (`gen_ai.prompt.name`).
    pub feature: String,
    /// The prompt version.
    pub version: String,
    /// The partition (`sector=tech`), `-` when the feature does not partition.
    pub partition: String,
    /// Requests that looked in the cache.
    pub lookups: u64,
    /// Of those, the ones answered from it.
    pub hits: u64,
    /// `hits / lookups`.
    pub hit_rate: f64,
    /// The original cost of the answers served from the cache, in USD.
    pub saved_usd: f64,
}

/// One [`CacheStats`] per feature, version and partition seen making lookups, sorted.
pub(super) fn summarize(selection: &Selection) -> Vec<CacheStats> {
    let mut groups: BTreeMap<(&str, &str, &str), (u64, u64, f64)> = BTreeMap::new();
    for request in &selection.requests {
        let Some(hit) = request.cache_hit else {
            continue;
        };
        let key = (
            request.feature.as_str(),
            request.version.as_str(),
            request.cache_partition.as_deref().unwrap_or("-"),
        );
        let group = groups.entry(key).or_default();
        group.0 += 1;
        if hit {
            group.1 += 1;
            group.2 += request.cache_saved_usd;
        }
    }
    groups
        .into_iter()
        .map(
            |((feature, version, partition), (lookups, hits, saved_usd))| CacheStats {
                feature: feature.to_string(),
                version: version.to_string(),
                partition: partition.to_string(),
                lookups,
                hits,
                hit_rate: hits as f64 / lookups as f64,
                saved_usd,
            },
        )
        .collect()
}
