//! Response cache metrics: lookups that hit and missed, and dollars saved, per feature, version
//! and partition. Kept apart from the request series (whose `prompt_config_cache_hits_total`
//! counts the provider's prompt cache) so the two caches are never confused.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// `prompt_config_response_cache_lookups_total{result="hit"|"miss"}`.
pub(super) const LOOKUPS: &str = "prompt_config_response_cache_lookups_total";
/// `prompt_config_response_cache_saved_usd_total`.
pub(super) const SAVED: &str = "prompt_config_response_cache_saved_usd_total";

/// Totals by feature, then version, then partition (empty when the feature does not
/// partition): nested so recording into an existing series looks it up by `&str`, without
/// allocating its key.
type CacheSeries = BTreeMap<String, BTreeMap<String, BTreeMap<String, CacheTotals>>>;

#[derive(Debug, Default, Clone, Copy)]
pub(super) struct CacheTotals {
    hits: u64,
    misses: u64,
    saved_usd: f64,
}

/// The response cache's counters.
#[derive(Debug, Default)]
pub(super) struct CacheCounters(Mutex<CacheSeries>);

impl CacheCounters {
    pub(super) fn record(
        &self,
        feature: &str,
        version: &str,
        partition: Option<&str>,
        hit: bool,
        saved_usd: f64,
    ) {
        let partition = partition.unwrap_or_default();
        let mut series = self.0.lock();
        let existing = series
            .get_mut(feature)
            .and_then(|versions| versions.get_mut(version))
            .and_then(|partitions| partitions.get_mut(partition));
        let totals = match existing {
            Some(totals) => totals,
            None => series
                .entry(feature.to_string())
                .or_default()
                .entry(version.to_string())
                .or_default()
                .entry(partition.to_string())
                .or_default(),
        };
        if hit {
            totals.hits += 1;
            if saved_usd.is_finite() && saved_usd > 0.0 {
                totals.saved_usd += saved_usd;
            }
        } else {
            totals.misses += 1;
        }
    }

    pub(super) fn snapshot(&self) -> Vec<CacheSnapshot> {
        let series = self.0.lock();
        let mut snapshots = Vec::new();
        for (feature, versions) in series.iter() {
            for (version, partitions) in versions {
                for (partition, totals) in partitions {
                    snapshots.push(CacheSnapshot {
                        feature: feature.clone(),
                        version: version.clone(),
                        partition: (!partition.is_empty()).then(|| partition.clone()),
                        hits: totals.hits,
                        misses: totals.misses,
                        hit_ratio: hit_ratio(totals.hits, totals.misses),
                        saved_usd: totals.saved_usd,
                    });
                }
            }
        }
        snapshots
    }

}

/// The two families in Prometheus text, `# HELP`/`# TYPE` always present.
pub(super) fn render(series: &[CacheSnapshot], out: &mut impl Write) -> fmt::Result {
    {
        writeln!(
            out,
            "# HELP {LOOKUPS} Response cache lookups of complete() by result (hit or miss); the \
             hit ratio is hits over both.\n# TYPE {LOOKUPS} counter"
        )?;
        for entry in series {
            for (result, count) in [("hit", entry.hits), ("miss", entry.misses)] {
                writeln!(out, "{LOOKUPS}{{{},result=\"{result}\"}} {count}", labels(entry))?;
            }
        }
        writeln!(
            out,
            "# HELP {SAVED} US dollars the response cache saved: the original cost of every \
             answer served from it.\n# TYPE {SAVED} counter"
        )?;
        for entry in series {
            writeln!(out, "{SAVED}{{{}}} {}", labels(entry), entry.saved_usd)?;
        }
        Ok(())
    }
}

fn labels(entry: &CacheSnapshot) -> String {
    let escape = |value: &str| {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut labels = format!(
        "gen_ai_prompt_name=\"{}\",gen_ai_prompt_version=\"{}\"",
        escape(&entry.feature),
        escape(&entry.version)
    );
    if let Some(partition) = &entry.partition {
        let _ = write!(labels, ",prompt_config_cache_partition=\"{}\"", escape(partition));
    }
    labels
}

fn hit_ratio(hits: u64, misses: u64) -> f64 {
    let total = hits + misses;
    if total == 0 {
        0.0
    } else {
        hits as f64 / total as f64
    }
}

/// Response cache counters of one feature, version and partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheSnapshot {
    /// The feature.
    pub feature: String,
    /// The prompt version.
    pub version: String,
    /// The partition (`sector=tech`), when the feature partitions its cache.
    pub partition: Option<String>,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that went to a provider.
    pub misses: u64,
    /// Hits over lookups, 0 to 1 (0 before any lookup).
    pub hit_ratio: f64,
    /// The original cost of the answers served from the cache, in USD.
    pub saved_usd: f64,
}
