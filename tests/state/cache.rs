//! The response cache (issue 11) through `Engine::complete`: in this process's memory store and
//! in Redis shared by several engines and OS processes (one server and a 3-master cluster);
//! TTL expiry, partitions, normalised keys, and the answers never stored.

use std::time::Duration;

use prompt_config::client::{FinishReason, UsageReported};
use prompt_config::{Context, Engine};
use serde_json::json;

use crate::support::cache::{CachedFeature, asking_in, hour, is_hit};
use crate::support::fixture::{Fixture, profile};
use crate::support::redis_server::{RedisCluster, RedisServer};

fn ask(engine: &Engine, question: &str) -> prompt_config::client::Completion {
    engine
        .complete("ask", &asking_in("user-1", question, "tech"))
        .unwrap()
}

#[test]
fn a_second_identical_call_is_served_from_memory_at_no_cost_with_the_saving() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    let engine = feature.engine();
    let first = ask(&engine, "What is Rust?");
    let second = ask(&engine, "What is Rust?");
    assert_eq!(feature.provider.calls(), 1);
    assert!(!is_hit(&first) && is_hit(&second));
    assert_eq!(second.text, first.text);
    assert_eq!(second.usage, first.usage);
    assert_eq!(second.cost_usd, 0.0);
    assert!(second.attempts.is_empty());
    assert_ne!(second.request_id, first.request_id);
    let hit = second.cache.as_ref().unwrap();
    assert!((hit.saved_usd - first.cost_usd).abs() < 1e-12 && hit.saved_usd > 0.0);
}

#[test]
fn a_different_question_misses() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    let engine = feature.engine();
    ask(&engine, "What is Rust?");
    assert!(!is_hit(&ask(&engine, "What is Go?")));
    assert_eq!(feature.provider.calls(), 2);
}

#[test]
fn a_feature_without_cache_settings_never_caches() {
    let feature = CachedFeature::new(serde_json::Value::Null, Some(0.0));
    let engine = feature.engine();
    ask(&engine, "What is Rust?");
    assert!(!is_hit(&ask(&engine, "What is Rust?")));
}

#[test]
fn an_entry_expires_after_its_ttl_in_memory() {
    let feature = CachedFeature::new(json!({"ttl_seconds": 1}), Some(0.0));
    let engine = feature.engine();
    ask(&engine, "What is Rust?");
    assert!(is_hit(&ask(&engine, "What is Rust?")));
    std::thread::sleep(Duration::from_millis(1_200));
    assert!(!is_hit(&ask(&engine, "What is Rust?")));
    assert_eq!(feature.provider.calls(), 2);
}

#[test]
fn partitions_are_kept_apart_and_the_hit_names_its_partition() {
    let feature = CachedFeature::new(
        json!({"ttl_seconds": 3600, "partition_by": ["sector"]}),
        Some(0.0),
    );
    let engine = feature.engine();
    let question = "Which skills matter?";
    engine
        .complete("ask", &asking_in("a", question, "tech"))
        .unwrap();
    let health = engine
        .complete("ask", &asking_in("b", question, "health"))
        .unwrap();
    assert!(
        !is_hit(&health),
        "another sector must not see tech's answer"
    );
    let tech = engine
        .complete("ask", &asking_in("c", question, "tech"))
        .unwrap();
    assert_eq!(
        tech.cache.unwrap().partition.as_deref(),
        Some("sector=tech")
    );
    assert_eq!(feature.provider.calls(), 2);
}

#[test]
fn attributes_outside_the_partition_list_do_not_split_the_cache() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    let engine = feature.engine();
    let question = "Which skills matter?";
    engine
        .complete("ask", &asking_in("a", question, "tech"))
        .unwrap();
    let other = engine
        .complete("ask", &asking_in("b", question, "health"))
        .unwrap();
    assert!(is_hit(&other));
    assert_eq!(other.cache.unwrap().partition, None);
}

/// The example: "Data Analyst " and "data analyst" share an entry once normalised.
#[test]
fn normalised_keys_hit_for_data_analyst_with_a_space_and_in_lower_case() {
    let fixture = Fixture::new();
    fixture.edit_feature(|feature| {
        feature["cache"] = json!({
            "ttl_seconds": 3600,
            "key_variables": ["current_role", "degree", "sector"],
            "normalize": {"trim": true, "case_fold": true, "collapse_whitespace": true},
            "partition_by": ["sector"],
            "allow_temperature_above_zero": true
        });
    });
    let engine = Engine::open(fixture.options().with_mock(true)).unwrap();
    let navigator = |role: &str| {
        let mut variables = profile();
        variables.insert("current_role".into(), role.into());
        let context = Context::new("u")
            .attribute("sector", "technology")
            .with_variables(variables);
        engine.complete("career_path_navigator", &context).unwrap()
    };
    assert!(!is_hit(&navigator("Data Analyst ")));
    assert!(is_hit(&navigator("data analyst")));
    assert!(is_hit(&navigator("  DATA   analyst")));
    assert!(!is_hit(&navigator("Data Scientist")));
}

#[test]
fn a_per_variable_rule_normalises_that_variable() {
    let feature = CachedFeature::new(
        json!({"ttl_seconds": 3600, "normalize": {"variables": {"question": {"case_fold": true}}}}),
        Some(0.0),
    );
    let engine = feature.engine();
    ask(&engine, "What is RUST?");
    assert!(is_hit(&ask(&engine, "what is rust?")));
}

/// A cache on such a chain could never store: a configuration mistake (see tests/config/cache.rs).
#[test]
fn a_chain_with_temperature_above_zero_keeps_the_engine_from_opening_by_default() {
    let feature = CachedFeature::new(hour(), Some(0.7));
    let error = Engine::open(feature.options()).unwrap_err();
    assert_eq!(error.kind().as_str(), "config_invalid");
    assert!(error.to_string().contains("temperature 0.7"), "{error}");
}

#[test]
fn an_unset_temperature_counts_as_above_zero() {
    let feature = CachedFeature::new(hour(), None);
    let error = Engine::open(feature.options()).unwrap_err();
    assert!(error.to_string().contains("temperature unset"), "{error}");
}

#[test]
fn a_chain_with_temperature_above_zero_is_cached_when_allowed() {
    let feature = CachedFeature::new(
        json!({"ttl_seconds": 3600, "allow_temperature_above_zero": true}),
        Some(0.7),
    );
    let engine = feature.engine();
    ask(&engine, "What is Rust?");
    assert!(is_hit(&ask(&engine, "What is Rust?")));
}

#[test]
fn a_refusal_is_not_cached() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    {
        let mut response = feature.provider.response.lock();
        response.finish_reason = Some(FinishReason::Refusal);
        response.refusal = Some("I can't help with that.".into());
    }
    let engine = feature.engine();
    ask(&engine, "Something refused");
    assert!(!is_hit(&ask(&engine, "Something refused")));
}

#[test]
fn a_content_filtered_answer_is_not_cached() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    feature.provider.response.lock().finish_reason = Some(FinishReason::ContentFilter);
    let engine = feature.engine();
    ask(&engine, "Filtered");
    assert!(!is_hit(&ask(&engine, "Filtered")));
}

#[test]
fn a_truncated_answer_is_not_cached() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    feature.provider.response.lock().finish_reason = Some(FinishReason::Length);
    let engine = feature.engine();
    ask(&engine, "A long one");
    assert!(!is_hit(&ask(&engine, "A long one")));
    assert_eq!(feature.provider.calls(), 2);
}

#[test]
fn an_answer_whose_cost_was_estimated_is_not_cached() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    feature.provider.response.lock().usage_reported = UsageReported::default();
    let engine = feature.engine();
    let first = ask(&engine, "No usage");
    assert!(first.cost_estimated);
    assert!(!is_hit(&ask(&engine, "No usage")));
}

#[test]
fn an_error_is_not_cached() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    *feature.provider.failing.lock() = true;
    let engine = feature.engine();
    let context = asking_in("u", "Fails", "tech");
    assert!(engine.complete("ask", &context).is_err());
    *feature.provider.failing.lock() = false;
    assert!(!is_hit(&engine.complete("ask", &context).unwrap()));
}

#[test]
fn a_hit_charges_no_budget() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    let engine = feature.engine();
    ask(&engine, "What is Rust?");
    let spent = |engine: &Engine| -> f64 {
        engine
            .budget_status()
            .iter()
            .map(|status| status.settled_usd + status.reserved_usd)
            .sum()
    };
    let before = spent(&engine);
    assert!(before > 0.0, "the miss was charged");
    ask(&engine, "What is Rust?");
    assert_eq!(spent(&engine), before);
}

#[test]
fn clearing_a_feature_empties_this_process_memory_cache() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    let engine = feature.engine();
    ask(&engine, "What is Rust?");
    ask(&engine, "What is Go?");
    assert_eq!(
        engine.cache_entries("ask").unwrap(),
        vec![("1.0.0".into(), 2)]
    );
    assert_eq!(engine.cache_clear("ask", None).unwrap(), None);
    assert_eq!(
        engine.cache_entries("ask").unwrap(),
        vec![("1.0.0".into(), 0)]
    );
    assert!(!is_hit(&ask(&engine, "What is Rust?")));
}

// --- Redis: shared by the fleet ---------------------------------------------------------------

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn two_engines_on_one_redis_share_answers() {
    let server = RedisServer::start();
    let feature = CachedFeature::new(hour(), Some(0.0));
    let first = feature.engine_on_redis(&server.url());
    let second = feature.engine_on_redis(&server.url());
    assert_eq!(first.cache_backend(), "redis");
    let stored = ask(&first, "What is Rust?");
    let served = ask(&second, "What is Rust?");
    assert!(is_hit(&served));
    assert_eq!(served.text, stored.text);
    assert_eq!(feature.provider.calls(), 1);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn an_entry_expires_after_its_ttl_in_redis() {
    let server = RedisServer::start();
    let feature = CachedFeature::new(json!({"ttl_seconds": 1}), Some(0.0));
    let engine = feature.engine_on_redis(&server.url());
    ask(&engine, "What is Rust?");
    assert!(is_hit(&ask(&engine, "What is Rust?")));
    std::thread::sleep(Duration::from_millis(1_200));
    assert!(!is_hit(&ask(&engine, "What is Rust?")));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn partitions_are_kept_apart_in_redis() {
    let server = RedisServer::start();
    let feature = CachedFeature::new(
        json!({"ttl_seconds": 3600, "partition_by": ["sector"]}),
        Some(0.0),
    );
    let engine = feature.engine_on_redis(&server.url());
    engine
        .complete("ask", &asking_in("a", "Skills?", "tech"))
        .unwrap();
    assert!(!is_hit(
        &engine
            .complete("ask", &asking_in("b", "Skills?", "health"))
            .unwrap()
    ));
    assert!(is_hit(
        &engine
            .complete("ask", &asking_in("c", "Skills?", "tech"))
            .unwrap()
    ));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn entries_live_under_the_prefix_with_a_ttl_and_clear_removes_them_for_every_engine() {
    let server = RedisServer::start();
    let feature = CachedFeature::new(hour(), Some(0.0));
    let engine = feature.engine_on_redis(&server.url());
    let other = feature.engine_on_redis(&server.url());
    ask(&engine, "What is Rust?");
    ask(&engine, "What is Go?");
    let keys = server.cli(&["--raw", "keys", "*cache*"]);
    assert_eq!(keys.lines().count(), 3, "two entries and the index: {keys}");
    assert!(
        keys.lines().all(|key| key.contains(":cache:{ask|1.0.0}:")),
        "{keys}"
    );
    let entry = keys.lines().find(|key| !key.ends_with(":index")).unwrap();
    let ttl: i64 = server.cli(&["pttl", entry]).trim().parse().unwrap();
    assert!(ttl > 3_500_000 && ttl <= 3_600_000, "{ttl}");
    assert_eq!(
        engine.cache_entries("ask").unwrap(),
        vec![("1.0.0".into(), 2)]
    );
    assert_eq!(other.cache_clear("ask", Some("1.0.0")).unwrap(), Some(2));
    assert!(!is_hit(&ask(&engine, "What is Rust?")));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn with_redis_down_a_call_misses_and_succeeds() {
    let mut server = RedisServer::start();
    let feature = CachedFeature::new(hour(), Some(0.0));
    let engine = feature.engine_on_redis(&server.url());
    ask(&engine, "What is Rust?");
    server.kill();
    let answer = ask(&engine, "What is Rust?");
    assert!(!is_hit(&answer));
    assert_eq!(feature.provider.calls(), 2);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_3_master_cluster_shares_answers_and_partitions_like_one_server() {
    let cluster = RedisCluster::start();
    let url = cluster.urls().join(",");
    let feature = CachedFeature::new(
        json!({"ttl_seconds": 3600, "partition_by": ["sector"]}),
        Some(0.0),
    );
    let first = feature.engine_on_redis(&url);
    let second = feature.engine_on_redis(&url);
    first
        .complete("ask", &asking_in("a", "Skills?", "tech"))
        .unwrap();
    assert!(is_hit(
        &second
            .complete("ask", &asking_in("b", "Skills?", "tech"))
            .unwrap()
    ));
    assert!(!is_hit(
        &second
            .complete("ask", &asking_in("c", "Skills?", "health"))
            .unwrap()
    ));
    assert_eq!(
        first.cache_entries("ask").unwrap(),
        vec![("1.0.0".into(), 2)]
    );
    assert_eq!(second.cache_clear("ask", None).unwrap(), Some(2));
    assert!(!is_hit(
        &first
            .complete("ask", &asking_in("a", "Skills?", "tech"))
            .unwrap()
    ));
}

/// Set, to the server's URL, in a re-executed child; the child test does nothing without it.
const CHILD_URL: &str = "PC_CACHE_CHILD_REDIS_URL";

/// The example: a hit across processes. This process stores an answer; a child
/// process, with its own engine and provider, is served it from Redis.
#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn an_answer_stored_by_one_process_is_a_hit_in_another() {
    let server = RedisServer::start();
    let feature = CachedFeature::new(hour(), Some(0.0));
    ask(
        &feature.engine_on_redis(&server.url()),
        "Shared across processes?",
    );
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "cache::child_is_served_from_the_shared_cache",
            "--include-ignored",
            "--nocapture",
        ])
        .env(CHILD_URL, server.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}");
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[test]
#[ignore = "runs as a child process of the cross-process cache test"]
fn child_is_served_from_the_shared_cache() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let feature = CachedFeature::new(hour(), Some(0.0));
    let completion = ask(&feature.engine_on_redis(&url), "Shared across processes?");
    assert!(is_hit(&completion), "{completion:?}");
    assert_eq!(feature.provider.calls(), 0);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_large_answer_is_stored_compressed_in_redis_and_read_back_whole() {
    let server = RedisServer::start();
    let feature = CachedFeature::new(hour(), Some(0.0));
    feature.provider.response.lock().text = "a career path in data ".repeat(400);
    let engine = feature.engine_on_redis(&server.url());
    let stored = ask(&engine, "Tell me everything");
    let served = ask(&engine, "Tell me everything");
    assert!(is_hit(&served));
    assert_eq!(served.text, stored.text);
    let keys = server.cli(&["--raw", "keys", "*cache*"]);
    let entry = keys.lines().find(|key| !key.ends_with(":index")).unwrap();
    let bytes: usize = server.cli(&["strlen", entry]).trim().parse().unwrap();
    assert!(
        bytes < stored.text.len() / 4,
        "{bytes} bytes stored for {}",
        stored.text.len()
    );
}

#[test]
fn the_engine_counts_answers_stored_and_kept_out_by_the_never_cached_rule() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    let engine = feature.engine();
    ask(&engine, "Stored");
    feature.provider.response.lock().finish_reason = Some(FinishReason::Length);
    ask(&engine, "Cut short");
    let counts = engine.cache_store_counts();
    assert_eq!(
        (counts.stored, counts.not_cacheable, counts.store_failed),
        (1, 1, 0)
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn the_engine_counts_answers_a_dead_redis_did_not_store() {
    let mut server = RedisServer::start();
    let feature = CachedFeature::new(hour(), Some(0.0));
    let engine = feature.engine_on_redis(&server.url());
    ask(&engine, "Stored");
    server.kill();
    ask(&engine, "Lost");
    let counts = engine.cache_store_counts();
    assert_eq!((counts.stored, counts.store_failed), (1, 1));
}

#[test]
fn an_answer_of_a_budget_downgrade_chain_is_not_cached() {
    let feature = CachedFeature::new(hour(), Some(0.0));
    let path = feature.config.root.join("config/features/ask.json");
    let mut document: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // A limit below one call's worst case: every call takes the (same, cheaper) downgrade chain.
    document["budget"] = json!({
        "daily_usd": 0.000_000_1,
        "policy": "downgrade",
        "downgrade": {"model": {"provider": "p", "name": "m", "parameters": {"temperature": 0}}}
    });
    std::fs::write(&path, document.to_string()).unwrap();
    let engine = feature.engine();
    let first = ask(&engine, "What is Rust?");
    assert!(first.downgraded, "the budget downgraded the call");
    let second = ask(&engine, "What is Rust?");
    assert!(
        !is_hit(&second),
        "a downgraded answer must not be served from the cache"
    );
    assert_eq!(feature.provider.calls(), 2);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn mock_answers_stay_apart_from_real_ones_on_one_redis() {
    let server = RedisServer::start();
    let feature = CachedFeature::new(hour(), Some(0.0));
    let mock = Engine::open(
        feature
            .options()
            .with_state(crate::support::cache::redis_backend(&server.url()))
            .with_mock(true),
    )
    .unwrap();
    ask(&mock, "What is Rust?");
    assert!(
        is_hit(&ask(&mock, "What is Rust?")),
        "mock runs share their own cache"
    );
    let real = feature.engine_on_redis(&server.url());
    assert!(
        !is_hit(&ask(&real, "What is Rust?")),
        "a real call must never be served a mock answer"
    );
    assert_eq!(
        feature.provider.calls(),
        1,
        "only the real call reached the provider"
    );
    let keys = server.cli(&["--raw", "keys", "*"]);
    let mock_keys: Vec<&str> = keys
        .lines()
        .filter(|key| key.starts_with("prompt_config:mock:"))
        .collect();
    assert!(
        mock_keys.iter().any(|key| key.contains(":cache:")),
        "{keys}"
    );
    assert!(
        mock_keys.iter().any(|key| key.contains(":budget:")),
        "mock spend is counted under the mock prefix: {keys}"
    );
}
