//! The response cache in telemetry (issue 11): `prompt_config.cache.*` on `llm.request` lines,
//! the live lookup and savings metrics (and their Prometheus text), and `stats` reporting hit
//! rate and savings per feature, version and partition.

use std::fs;
use std::path::{Path, PathBuf};

use prompt_config::Engine;
use prompt_config::telemetry::stats::{StatsOptions, analyze};
use serde_json::{Value, json};

use crate::support::cache::{CachedFeature, asking_in};

fn requests(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|record| record["event"] == "llm.request")
        .collect()
}

/// A partitioned cache, a log, and one miss then one hit in `tech` plus one miss in `health`.
fn miss_hit_miss() -> (CachedFeature, Engine, PathBuf, f64) {
    let feature = CachedFeature::new(
        json!({"ttl_seconds": 3600, "partition_by": ["sector"]}),
        Some(0.0),
    );
    let path = feature.config.root.join("telemetry.jsonl");
    let engine = Engine::open(feature.options().with_telemetry(&path)).unwrap();
    let first = engine
        .complete("ask", &asking_in("a", "Skills?", "tech"))
        .unwrap();
    engine
        .complete("ask", &asking_in("b", "Skills?", "tech"))
        .unwrap();
    engine
        .complete("ask", &asking_in("c", "Skills?", "health"))
        .unwrap();
    engine.flush_telemetry();
    (feature, engine, path, first.cost_usd)
}

#[test]
fn a_hit_is_marked_on_its_request_line_with_the_saving_and_a_miss_with_false() {
    let (_feature, _engine, path, cost) = miss_hit_miss();
    let lines = requests(&path);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["prompt_config.cache.hit"], false);
    assert!(lines[0].get("prompt_config.cache.saved_usd").is_none());
    assert_eq!(lines[1]["prompt_config.cache.hit"], true);
    assert_eq!(lines[1]["prompt_config.cache.saved_usd"], cost);
    assert_eq!(lines[1]["prompt_config.cost_usd"], 0.0);
    assert_eq!(lines[1]["prompt_config.attempts"], 0);
    assert_eq!(lines[1]["prompt_config.cache.partition"], "sector=tech");
}

#[test]
fn a_feature_without_a_cache_writes_no_cache_fields() {
    let feature = CachedFeature::new(Value::Null, Some(0.0));
    let path = feature.config.root.join("telemetry.jsonl");
    let engine = Engine::open(feature.options().with_telemetry(&path)).unwrap();
    engine
        .complete("ask", &asking_in("a", "Skills?", "tech"))
        .unwrap();
    engine.flush_telemetry();
    let line = &requests(&path)[0];
    assert!(line.get("prompt_config.cache.hit").is_none(), "{line}");
}

#[test]
fn metrics_count_hits_and_misses_per_partition_with_the_dollars_saved() {
    let (_feature, engine, _path, cost) = miss_hit_miss();
    let cache = engine.metrics().cache;
    assert_eq!(cache.len(), 2);
    let tech = cache
        .iter()
        .find(|series| series.partition.as_deref() == Some("sector=tech"))
        .unwrap();
    assert_eq!((tech.hits, tech.misses), (1, 1));
    assert_eq!(tech.hit_ratio, 0.5);
    assert_eq!(tech.saved_usd, cost);
    let text = engine.prometheus_text();
    assert!(
        text.contains(
            "prompt_config_response_cache_lookups_total{gen_ai_prompt_name=\"ask\",\
             gen_ai_prompt_version=\"1.0.0\",prompt_config_cache_partition=\"sector=tech\",\
             result=\"hit\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("# TYPE prompt_config_response_cache_saved_usd_total counter"));
}

#[test]
fn stats_reports_hit_rate_and_savings_per_feature_version_and_partition() {
    let (_feature, _engine, path, cost) = miss_hit_miss();
    let report = analyze(&[path], &StatsOptions::default()).unwrap();
    assert_eq!(report.cache.len(), 2);
    let health = &report.cache[0];
    assert_eq!(
        (health.partition.as_str(), health.lookups, health.hits),
        ("sector=health", 1, 0)
    );
    let tech = &report.cache[1];
    assert_eq!(
        (tech.feature.as_str(), tech.version.as_str()),
        ("ask", "1.0.0")
    );
    assert_eq!((tech.lookups, tech.hits, tech.hit_rate), (2, 1, 0.5));
    assert_eq!(tech.saved_usd, cost);
    let text = report.to_string();
    assert!(text.contains("response cache"), "{text}");
    assert!(text.contains("sector=tech"), "{text}");
    assert!(text.contains("50.0%"), "{text}");
}

#[test]
fn stats_can_cut_requests_by_cache_partition() {
    let (_feature, _engine, path, _cost) = miss_hit_miss();
    let by = vec!["cache_partition".to_string()];
    let report = analyze(&[path], &StatsOptions::default().with_by(by)).unwrap();
    assert_eq!(report.group(&["sector=tech"]).unwrap().requests, 2);
}
