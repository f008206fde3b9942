//! The live metrics through their public API: counts and sums per series, errors by type,
//! nearest-rank latency percentiles over a bounded window, histogram buckets, breaker gauges,
//! label escaping, and exact totals under eight recording threads. `prometheus_text()` is read
//! back by the strict parser of `tests/support/prometheus.rs`, which enforces every rule a
//! scraper or `promtool check metrics` applies (one test here checks that it refuses each).

use std::collections::BTreeMap;
use std::thread;
use std::time::Duration;

use prompt_config::client::{BreakerState, Usage};
use prompt_config::telemetry::metrics::{
    DURATION_BUCKETS_SECONDS, Metrics, MetricsSnapshot, OutputLabels, RECENT_DURATIONS,
    RequestLabels, TOKEN_BUCKETS,
};

use crate::support::prometheus::Exposition;

const SUMMARIZE: RequestLabels<'static> = RequestLabels {
    feature: "summarize",
    version: "v2",
    variant: Some("treatment"),
    provider: "openai",
    model: "gpt-4o-mini",
};

const SUMMARIZE_ON_ANTHROPIC: RequestLabels<'static> = RequestLabels {
    provider: "anthropic",
    model: "claude-haiku",
    ..SUMMARIZE
};

/// The Prometheus labels of `SUMMARIZE`, in the order they are written.
const SUMMARIZE_SERIES: [(&str, &str); 5] = [
    ("gen_ai_prompt_name", "summarize"),
    ("gen_ai_prompt_version", "v2"),
    ("prompt_config_variant", "treatment"),
    ("gen_ai_provider_name", "openai"),
    ("gen_ai_request_model", "gpt-4o-mini"),
];

const EVERY_FAMILY: [(&str, &str); 23] = [
    ("gen_ai_client_operation_duration_seconds", "histogram"),
    (
        "gen_ai_client_operation_time_per_output_chunk_seconds",
        "histogram",
    ),
    (
        "gen_ai_client_operation_time_to_first_chunk_seconds",
        "histogram",
    ),
    ("gen_ai_client_token_usage", "histogram"),
    ("prompt_config_cache_hits_total", "counter"),
    ("prompt_config_circuit_breaker_state", "gauge"),
    ("prompt_config_cost_estimated_usd_total", "counter"),
    ("prompt_config_cost_usd_total", "counter"),
    ("prompt_config_errors_total", "counter"),
    ("prompt_config_feedback", "summary"),
    ("prompt_config_otlp_dropped_total", "counter"),
    ("prompt_config_otlp_exported_total", "counter"),
    ("prompt_config_otlp_retries_total", "counter"),
    ("prompt_config_output_answers_total", "counter"),
    ("prompt_config_output_invalid_total", "counter"),
    ("prompt_config_output_repairs_total", "counter"),
    ("prompt_config_requests_total", "counter"),
    ("prompt_config_resolves_total", "counter"),
    ("prompt_config_response_cache_lookups_total", "counter"),
    ("prompt_config_response_cache_saved_usd_total", "counter"),
    ("prompt_config_state_degradations_total", "counter"),
    ("prompt_config_state_degraded", "gauge"),
    ("prompt_config_telemetry_dropped_events_total", "counter"),
];

/// Usage of `input_tokens` in all, of which `cache_read_input_tokens` were read from the cache.
fn usage(input_tokens: u64, output_tokens: u64, cache_read_input_tokens: u64) -> Usage {
    Usage {
        input_tokens,
        output_tokens,
        cache_read_input_tokens,
        cache_creation_input_tokens: 0,
    }
}

fn milliseconds(value: u64) -> Duration {
    Duration::from_millis(value)
}

fn succeed(metrics: &Metrics, labels: &RequestLabels<'_>, duration: Duration, tokens: Usage) {
    metrics.record_request(labels, None, duration, &tokens, 0.0);
}

fn fail(metrics: &Metrics, labels: &RequestLabels<'_>, error_type: &str) {
    let nothing = Usage::default();
    metrics.record_request(labels, Some(error_type), milliseconds(1), &nothing, 0.0);
}

/// `labels` plus extra ones, as the parser returns them.
fn series(labels: &[(&str, &str)], extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    labels
        .iter()
        .chain(extra)
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn parse(metrics: &Metrics) -> Exposition {
    let text = metrics.prometheus_text();
    Exposition::parse(&text).unwrap_or_else(|problem| panic!("{problem}\n{text}"))
}

#[test]
fn metrics_can_be_shared_between_threads_and_start_empty() {
    fn shareable<T: Send + Sync + Default>() {}
    shareable::<Metrics>();
    assert_eq!(Metrics::new().snapshot(), MetricsSnapshot::default());
}

#[test]
fn counts_tokens_cost_and_cache_hits_are_summed_per_series() {
    let metrics = Metrics::new();
    metrics.record_request(&SUMMARIZE, None, milliseconds(100), &usage(100, 20, 0), 0.5);
    metrics.record_request(
        &SUMMARIZE,
        None,
        milliseconds(200),
        &usage(450, 10, 400),
        0.25,
    );
    fail(&metrics, &SUMMARIZE, "timeout");
    let other = usage(10, 1, 0);
    metrics.record_request(
        &SUMMARIZE_ON_ANTHROPIC,
        None,
        milliseconds(50),
        &other,
        0.125,
    );

    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.requests.len(), 2);
    let summarize = snapshot.request(&SUMMARIZE).expect("the openai series");
    assert_eq!(
        (summarize.requests, summarize.successes, summarize.errors),
        (3, 2, 1)
    );
    assert_eq!(summarize.input_tokens, 550);
    assert_eq!(summarize.output_tokens, 30);
    assert_eq!(summarize.cache_read_input_tokens, 400);
    assert_eq!(summarize.cost_usd, 0.75);
    assert_eq!(summarize.cache_hits, 1);
    let anthropic = snapshot
        .request(&SUMMARIZE_ON_ANTHROPIC)
        .expect("the anthropic series");
    assert_eq!((anthropic.requests, anthropic.input_tokens), (1, 10));
    assert_eq!(anthropic.cost_usd, 0.125);

    let exposition = parse(&metrics);
    let requests = "prompt_config_requests_total";
    let success = series(&SUMMARIZE_SERIES, &[("outcome", "success")]);
    let error = series(&SUMMARIZE_SERIES, &[("outcome", "error")]);
    assert_eq!(exposition.value(requests, &success), Some(2.0));
    assert_eq!(exposition.value(requests, &error), Some(1.0));
    let plain = series(&SUMMARIZE_SERIES, &[]);
    assert_eq!(
        exposition.value("prompt_config_cost_usd_total", &plain),
        Some(0.75)
    );
    assert_eq!(
        exposition.value("prompt_config_cache_hits_total", &plain),
        Some(1.0)
    );
}

#[test]
fn errors_are_counted_by_error_type() {
    let metrics = Metrics::new();
    fail(&metrics, &SUMMARIZE, "timeout");
    fail(&metrics, &SUMMARIZE, "rate_limited");
    fail(&metrics, &SUMMARIZE, "timeout");
    succeed(&metrics, &SUMMARIZE, milliseconds(10), usage(1, 1, 0));

    let snapshot = metrics.snapshot();
    let summarize = snapshot.request(&SUMMARIZE).expect("the series");
    let expected = BTreeMap::from([("rate_limited".to_string(), 1), ("timeout".to_string(), 2)]);
    assert_eq!(summarize.errors_by_type, expected);
    assert_eq!((summarize.errors, summarize.successes), (3, 1));

    let exposition = parse(&metrics);
    let errors = "prompt_config_errors_total";
    let timeout = series(&SUMMARIZE_SERIES, &[("error_type", "timeout")]);
    let rate_limited = series(&SUMMARIZE_SERIES, &[("error_type", "rate_limited")]);
    assert_eq!(exposition.value(errors, &timeout), Some(2.0));
    assert_eq!(exposition.value(errors, &rate_limited), Some(1.0));
    assert_eq!(exposition.family(errors).samples.len(), 2);
}

#[test]
fn latency_percentiles_are_the_nearest_rank_of_the_recorded_durations() {
    let metrics = Metrics::new();
    // 1 to 100 ms in a scrambled order (37 is coprime with 100), so sorting is exercised.
    for step in 0..100 {
        succeed(
            &metrics,
            &SUMMARIZE,
            milliseconds(step * 37 % 100 + 1),
            usage(1, 1, 0),
        );
    }
    for value in [40, 15, 50, 20, 35] {
        succeed(
            &metrics,
            &SUMMARIZE_ON_ANTHROPIC,
            milliseconds(value),
            usage(1, 1, 0),
        );
    }

    let snapshot = metrics.snapshot();
    let latency = snapshot.request(&SUMMARIZE).expect("the series").latency;
    assert_eq!(latency.samples, 100);
    assert_eq!(
        (latency.p50_ms, latency.p95_ms, latency.p99_ms),
        (50.0, 95.0, 99.0)
    );
    // Five values: ranks ceil(2.5) = 3, ceil(4.75) = 5 and ceil(4.95) = 5.
    let latency = snapshot
        .request(&SUMMARIZE_ON_ANTHROPIC)
        .expect("the series")
        .latency;
    assert_eq!(
        (latency.p50_ms, latency.p95_ms, latency.p99_ms),
        (35.0, 50.0, 50.0)
    );
}

#[test]
fn latency_percentiles_cover_only_the_most_recent_durations() {
    let metrics = Metrics::new();
    for _ in 0..1_000 {
        succeed(
            &metrics,
            &SUMMARIZE,
            Duration::from_secs(60),
            usage(1, 1, 0),
        );
    }
    for value in 1..=RECENT_DURATIONS as u64 {
        succeed(&metrics, &SUMMARIZE, milliseconds(value), usage(1, 1, 0));
    }

    let snapshot = metrics.snapshot();
    let latency = snapshot.request(&SUMMARIZE).expect("the series").latency;
    assert_eq!(latency.samples, RECENT_DURATIONS);
    // Of 1,024 values: ranks ceil(512) = 512, ceil(972.8) = 973 and ceil(1013.76) = 1014.
    assert_eq!(
        (latency.p50_ms, latency.p95_ms, latency.p99_ms),
        (512.0, 973.0, 1014.0)
    );
    // The histogram, unlike the window, counts every call ever made.
    let exposition = parse(&metrics);
    let count = exposition.value(
        "gen_ai_client_operation_duration_seconds_count",
        &series(&SUMMARIZE_SERIES, &[]),
    );
    assert_eq!(count, Some(1_000.0 + RECENT_DURATIONS as f64));
}

#[test]
fn duration_buckets_are_cumulative_and_end_with_inf_equal_to_the_count() {
    let metrics = Metrics::new();
    for value in [5, 10, 15, 100, 90_000] {
        succeed(&metrics, &SUMMARIZE, milliseconds(value), usage(1, 1, 0));
    }

    let exposition = parse(&metrics);
    let name = "gen_ai_client_operation_duration_seconds";
    let buckets = exposition.buckets(name, &series(&SUMMARIZE_SERIES, &[]));
    let bounds: Vec<String> = DURATION_BUCKETS_SECONDS
        .iter()
        .map(|bound| bound.to_string())
        .chain(["+Inf".to_string()])
        .collect();
    let expected_counts = [
        2.0, 3.0, 3.0, 3.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0,
    ];
    let expected: Vec<(String, f64)> = bounds
        .into_iter()
        .zip(expected_counts.into_iter().chain([5.0]))
        .collect();
    assert_eq!(buckets, expected);
    let plain = series(&SUMMARIZE_SERIES, &[]);
    let sum = exposition
        .value(&format!("{name}_sum"), &plain)
        .expect("a sum");
    assert!((sum - 90.13).abs() < 1e-9, "sum {sum}");
    assert_eq!(
        exposition.value(&format!("{name}_count"), &plain),
        Some(5.0)
    );
}

#[test]
fn token_usage_is_a_histogram_per_token_type_of_successful_calls() {
    let metrics = Metrics::new();
    succeed(&metrics, &SUMMARIZE, milliseconds(10), usage(110, 5, 100));
    succeed(&metrics, &SUMMARIZE, milliseconds(10), usage(3_000, 300, 0));
    fail(&metrics, &SUMMARIZE, "timeout");

    let exposition = parse(&metrics);
    let name = "gen_ai_client_token_usage";
    let input = series(&SUMMARIZE_SERIES, &[("gen_ai_token_type", "input")]);
    let output = series(&SUMMARIZE_SERIES, &[("gen_ai_token_type", "output")]);
    let cumulative = |labels| -> Vec<f64> {
        let buckets = exposition.buckets(name, labels);
        assert_eq!(buckets.len(), TOKEN_BUCKETS.len() + 1);
        buckets.into_iter().map(|(_, count)| count).collect()
    };
    // Input counts cached tokens too, as OpenTelemetry defines it and Usage does: 110 and 3,000.
    let input_counts = cumulative(&input);
    assert_eq!(&input_counts[..7], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0]);
    let output_counts = cumulative(&output);
    assert_eq!(&output_counts[..6], &[0.0, 0.0, 1.0, 1.0, 1.0, 2.0]);
    assert_eq!(
        exposition.value(&format!("{name}_sum"), &input),
        Some(3_110.0)
    );
    assert_eq!(
        exposition.value(&format!("{name}_sum"), &output),
        Some(305.0)
    );
    assert_eq!(
        exposition.value(&format!("{name}_count"), &input),
        Some(2.0)
    );
}

#[test]
fn breaker_states_are_gauges_of_0_closed_1_half_open_and_2_open() {
    let metrics = Metrics::new();
    metrics.set_breaker_state("openai", BreakerState::Closed);
    metrics.set_breaker_state("anthropic", BreakerState::HalfOpen);
    metrics.set_breaker_state("openai/gpt-4o", BreakerState::Open);
    metrics.set_breaker_state("openai", BreakerState::Open);
    metrics.set_breaker_state("mock", BreakerState::Closed);

    let snapshot = metrics.snapshot();
    let states: Vec<(&str, &str, u8)> = snapshot
        .breakers
        .iter()
        .map(|breaker| {
            (
                breaker.breaker.as_str(),
                breaker.state.as_str(),
                breaker.gauge,
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("anthropic", "half_open", 1),
            ("mock", "closed", 0),
            ("openai", "open", 2),
            ("openai/gpt-4o", "open", 2),
        ]
    );
    let exposition = parse(&metrics);
    let gauge = |breaker| {
        let labels = series(&[("prompt_config_breaker", breaker)], &[]);
        exposition.value("prompt_config_circuit_breaker_state", &labels)
    };
    assert_eq!(gauge("mock"), Some(0.0));
    assert_eq!(gauge("anthropic"), Some(1.0));
    assert_eq!(gauge("openai"), Some(2.0));
    assert_eq!(gauge("openai/gpt-4o"), Some(2.0));
}

#[test]
fn label_values_with_backslashes_quotes_and_newlines_are_escaped_and_read_back_intact() {
    let metrics = Metrics::new();
    let awkward = "say \"hi\"\\then\nleave";
    let labels = RequestLabels {
        feature: awkward,
        model: "C:\\models\\tiny",
        ..SUMMARIZE
    };
    succeed(&metrics, &labels, milliseconds(10), usage(1, 1, 0));
    metrics.set_breaker_state("quote\"breaker", BreakerState::Open);

    let text = metrics.prometheus_text();
    assert!(
        text.contains(r#"gen_ai_prompt_name="say \"hi\"\\then\nleave""#),
        "{text}"
    );
    assert!(
        text.contains(r#"gen_ai_request_model="C:\\models\\tiny""#),
        "{text}"
    );
    let exposition = parse(&metrics);
    let requests = exposition.family("prompt_config_requests_total");
    assert!(requests.samples.iter().all(|sample| {
        sample.labels["gen_ai_prompt_name"] == awkward
            && sample.labels["gen_ai_request_model"] == "C:\\models\\tiny"
    }));
    let breaker = series(&[("prompt_config_breaker", "quote\"breaker")], &[]);
    assert_eq!(
        exposition.value("prompt_config_circuit_breaker_state", &breaker),
        Some(2.0)
    );
}

#[test]
fn resolves_are_counted_per_feature_version_and_variant() {
    let metrics = Metrics::new();
    metrics.record_resolve("summarize", "v2", Some("treatment"));
    metrics.record_resolve("summarize", "v2", Some("treatment"));
    metrics.record_resolve("summarize", "v1", None);

    let resolves: Vec<_> = metrics
        .snapshot()
        .resolves
        .into_iter()
        .map(|series| (series.version, series.variant, series.resolves))
        .collect();
    assert_eq!(
        resolves,
        [
            ("v1".to_string(), None, 1),
            ("v2".to_string(), Some("treatment".to_string()), 2),
        ]
    );
    let exposition = parse(&metrics);
    let unvaried = series(
        &[
            ("gen_ai_prompt_name", "summarize"),
            ("gen_ai_prompt_version", "v1"),
        ],
        &[],
    );
    assert_eq!(
        exposition.value("prompt_config_resolves_total", &unvaried),
        Some(1.0)
    );
}

#[test]
fn feedback_is_counted_summed_and_averaged_per_metric_and_request() {
    let metrics = Metrics::new();
    let request = (Some("summarize"), Some("v2"), Some("treatment"));
    for thumbs_up in [true, true, false] {
        let value = if thumbs_up { 1.0 } else { 0.0 };
        metrics.record_feedback(request.0, request.1, request.2, "thumbs_up", value);
    }
    metrics.record_feedback(None, None, None, "rating", 4.0);
    metrics.record_feedback(None, None, None, "rating", 5.0);

    let snapshot = metrics.snapshot();
    let rating = &snapshot.feedback[0];
    assert_eq!(
        (rating.feature.as_deref(), rating.metric.as_str()),
        (None, "rating")
    );
    assert_eq!((rating.count, rating.sum, rating.mean), (2, 9.0, 4.5));
    let thumbs_up = &snapshot.feedback[1];
    assert_eq!(thumbs_up.variant.as_deref(), Some("treatment"));
    assert_eq!((thumbs_up.count, thumbs_up.sum), (3, 2.0));
    assert!((thumbs_up.mean - 2.0 / 3.0).abs() < 1e-12);

    let exposition = parse(&metrics);
    let rating = series(&[("prompt_config_feedback_metric", "rating")], &[]);
    assert_eq!(
        exposition.value("prompt_config_feedback_sum", &rating),
        Some(9.0)
    );
    assert_eq!(
        exposition.value("prompt_config_feedback_count", &rating),
        Some(2.0)
    );
    let thumbs_up = series(
        &SUMMARIZE_SERIES[..3],
        &[("prompt_config_feedback_metric", "thumbs_up")],
    );
    assert_eq!(
        exposition.value("prompt_config_feedback_sum", &thumbs_up),
        Some(2.0)
    );
}

#[test]
fn dropped_events_are_exposed_as_a_counter_that_never_goes_back() {
    let metrics = Metrics::new();
    metrics.set_dropped_events(12);
    metrics.set_dropped_events(5);
    assert_eq!(metrics.snapshot().dropped_events, 12);
    let exposition = parse(&metrics);
    let name = "prompt_config_telemetry_dropped_events_total";
    assert_eq!(exposition.value(name, &BTreeMap::new()), Some(12.0));
}

#[test]
fn an_empty_registry_declares_every_family_and_no_dropped_events() {
    let exposition = parse(&Metrics::new());
    let declared: Vec<(&str, &str)> = exposition
        .families
        .iter()
        .map(|(name, family)| (name.as_str(), family.kind.as_str()))
        .collect();
    assert_eq!(declared, EVERY_FAMILY);
    let name = "prompt_config_telemetry_dropped_events_total";
    assert_eq!(exposition.value(name, &BTreeMap::new()), Some(0.0));
}

#[test]
fn a_busy_exposition_parses_back_and_follows_every_rule() {
    let metrics = Metrics::new();
    let no_variant = RequestLabels {
        variant: None,
        ..SUMMARIZE
    };
    for (step, labels) in [SUMMARIZE, SUMMARIZE_ON_ANTHROPIC, no_variant]
        .iter()
        .enumerate()
    {
        let step = step as u64;
        let tokens = usage(100 * step, 10 * step, step);
        metrics.record_request(labels, None, milliseconds(30 * step), &tokens, 0.1);
        metrics.record_stream(labels, milliseconds(10 * step), Some(milliseconds(step)));
        fail(&metrics, labels, "all_providers_failed");
        metrics.record_resolve(labels.feature, labels.version, labels.variant);
    }
    metrics.record_feedback(Some("summarize"), Some("v2"), None, "rating", -2.5);
    metrics.set_breaker_state("openai", BreakerState::HalfOpen);
    metrics.set_dropped_events(3);
    metrics.record_cache("summarize", "v2", Some("sector=\"tech\""), true, 0.25);
    metrics.record_cache("summarize", "v2", None, false, 0.0);
    let answered = OutputLabels {
        feature: "summarize",
        version: "v2",
        provider: "openai",
        model: "gpt-4o-mini",
    };
    metrics.record_output(&answered, true, false);
    metrics.record_output(&answered, false, true);

    // `parse` enforces the rules; here also that every family came out with samples.
    let exposition = parse(&metrics);
    let declared: Vec<(&str, &str)> = exposition
        .families
        .iter()
        .map(|(name, family)| (name.as_str(), family.kind.as_str()))
        .collect();
    assert_eq!(declared, EVERY_FAMILY);
    for (name, family) in &exposition.families {
        assert!(!family.samples.is_empty(), "{name} has no samples");
        assert!(!family.help.is_empty(), "{name} has no help");
    }
    let no_variant_series = series(&SUMMARIZE_SERIES, &[("outcome", "success")])
        .into_iter()
        .filter(|(name, _)| name != "prompt_config_variant")
        .collect();
    assert_eq!(
        exposition.value("prompt_config_requests_total", &no_variant_series),
        Some(1.0)
    );
    assert_eq!(
        exposition.value(
            "prompt_config_feedback_sum",
            &series(
                &SUMMARIZE_SERIES[..2],
                &[("prompt_config_feedback_metric", "rating")]
            )
        ),
        Some(-2.5)
    );
}

#[test]
fn the_exposition_does_not_depend_on_the_order_series_were_recorded_in() {
    let forward = Metrics::new();
    let backward = Metrics::new();
    let no_variant = RequestLabels {
        variant: None,
        ..SUMMARIZE
    };
    let all = [SUMMARIZE, SUMMARIZE_ON_ANTHROPIC, no_variant];
    for labels in &all {
        succeed(&forward, labels, milliseconds(20), usage(5, 5, 0));
        forward.set_breaker_state(labels.provider, BreakerState::Closed);
        forward.record_feedback(None, None, labels.variant, labels.model, 1.0);
    }
    for labels in all.iter().rev() {
        succeed(&backward, labels, milliseconds(20), usage(5, 5, 0));
        backward.set_breaker_state(labels.provider, BreakerState::Closed);
        backward.record_feedback(None, None, labels.variant, labels.model, 1.0);
    }
    assert_eq!(forward.prometheus_text(), backward.prometheus_text());
    assert_eq!(forward.snapshot(), backward.snapshot());
}

#[test]
fn a_snapshot_survives_a_round_trip_through_json() {
    let metrics = Metrics::new();
    succeed(&metrics, &SUMMARIZE, milliseconds(12), usage(7, 3, 1));
    fail(&metrics, &SUMMARIZE, "timeout");
    metrics.record_resolve("summarize", "v2", None);
    metrics.record_feedback(None, None, None, "rating", 3.0);
    metrics.set_breaker_state("openai", BreakerState::HalfOpen);
    metrics.set_dropped_events(1);

    let snapshot = metrics.snapshot();
    let json = serde_json::to_string(&snapshot).expect("serializable");
    let back: MetricsSnapshot = serde_json::from_str(&json).expect("deserializable");
    assert_eq!(back, snapshot);
}

#[test]
fn eight_threads_recording_at_once_lose_nothing() {
    const THREADS: u64 = 8;
    const CALLS: u64 = 2_000;
    let metrics = Metrics::new();
    thread::scope(|scope| {
        for thread_number in 0..THREADS {
            let metrics = &metrics;
            scope.spawn(move || {
                let labels = if thread_number % 2 == 0 {
                    SUMMARIZE
                } else {
                    SUMMARIZE_ON_ANTHROPIC
                };
                for call in 0..CALLS {
                    if call % 4 == 0 {
                        fail(metrics, &labels, "timeout");
                    } else {
                        let tokens = usage(3, 2, call % 2);
                        metrics.record_request(&labels, None, milliseconds(1), &tokens, 0.25);
                    }
                    metrics.record_resolve(labels.feature, labels.version, labels.variant);
                    let value = if call % 2 == 0 { 1.0 } else { 0.0 };
                    metrics.record_feedback(None, None, None, "thumbs_up", value);
                }
            });
        }
    });

    let snapshot = metrics.snapshot();
    let per_series_calls = THREADS / 2 * CALLS;
    for labels in [SUMMARIZE, SUMMARIZE_ON_ANTHROPIC] {
        let totals = snapshot.request(&labels).expect("the series");
        assert_eq!(totals.requests, per_series_calls);
        assert_eq!(totals.errors, per_series_calls / 4);
        assert_eq!(totals.successes, per_series_calls * 3 / 4);
        assert_eq!(totals.input_tokens, 3 * totals.successes);
        assert_eq!(totals.output_tokens, 2 * totals.successes);
        // Every odd-numbered call succeeds and reads the cache: half of all calls.
        assert_eq!(totals.cache_hits, per_series_calls / 2);
        assert_eq!(totals.cost_usd, 0.25 * totals.successes as f64);
    }
    assert_eq!(snapshot.resolves.len(), 1);
    assert_eq!(snapshot.resolves[0].resolves, THREADS * CALLS);
    assert_eq!(snapshot.feedback[0].count, THREADS * CALLS);
    assert_eq!(snapshot.feedback[0].sum, (THREADS * CALLS / 2) as f64);
    let exposition = parse(&metrics);
    let count = exposition.value(
        "gen_ai_client_operation_duration_seconds_count",
        &series(&SUMMARIZE_SERIES, &[]),
    );
    assert_eq!(count, Some(per_series_calls as f64));
}

#[test]
fn the_checker_rejects_expositions_that_break_a_rule() {
    let broken = [
        ("no TYPE", "# HELP a_total A.\na_total 1\n"),
        ("no HELP", "# TYPE a_total counter\na_total 1\n"),
        (
            "TYPE twice",
            "# HELP a_total A.\n# TYPE a_total counter\n# TYPE a_total counter\na_total 1\n",
        ),
        (
            "TYPE after samples",
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# TYPE a_total counter\n",
        ),
        (
            "counter without _total",
            "# HELP a A.\n# TYPE a counter\na 1\n",
        ),
        ("undeclared sample", "# HELP a A.\n# TYPE a gauge\nb 1\n"),
        ("bad metric name", "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n"),
        (
            "bad label name",
            "# HELP a A.\n# TYPE a gauge\na{1x=\"v\"} 1\n",
        ),
        (
            "unescaped quote",
            "# HELP a A.\n# TYPE a gauge\na{x=\"a\"b\"} 1\n",
        ),
        (
            "bad escape",
            "# HELP a A.\n# TYPE a gauge\na{x=\"\\t\"} 1\n",
        ),
        ("bad value", "# HELP a A.\n# TYPE a gauge\na 1,5\n"),
        (
            "duplicate series",
            "# HELP a A.\n# TYPE a gauge\na 1\na 2\n",
        ),
        (
            "split family",
            "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\nb 1\na{x=\"y\"} 1\n",
        ),
        (
            "unsorted families",
            "# HELP b B.\n# TYPE b gauge\nb 1\n# HELP a A.\n# TYPE a gauge\na 1\n",
        ),
        (
            "decreasing buckets",
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n\
             h_sum 1\nh_count 1\n",
        ),
        (
            "no +Inf bucket",
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        ),
        (
            "+Inf is not the count",
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n",
        ),
        (
            "no sum",
            "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        ),
        ("no final newline", "# HELP a A.\n# TYPE a gauge\na 1"),
        (
            "colliding families",
            "# HELP a A.\n# TYPE a summary\na_sum 1\na_count 1\n\
             # HELP a_total A.\n# TYPE a_total counter\na_total 1\n",
        ),
    ];
    for (rule, text) in broken {
        assert!(Exposition::parse(text).is_err(), "accepted: {rule}");
    }
    let valid = "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n\
                 h_sum 3.5\nh_count 2\n";
    assert!(Exposition::parse(valid).is_ok());
}
