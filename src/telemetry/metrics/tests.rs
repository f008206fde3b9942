//! Unit tests of the metrics internals: nearest-rank percentiles, `le` bucket placement, the
//! ring of recent durations, borrowed-label lookup of series, normalisation of empty labels and
//! odd values, and the exposition's number formatting and label escaping.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::BuildHasher;

use super::prometheus::render;
use super::series::nearest_rank_milliseconds;
use super::*;

const LABELS: RequestLabels<'static> = RequestLabels {
    feature: "summarize",
    version: "v2",
    variant: Some("treatment"),
    provider: "openai",
    model: "gpt-4o-mini",
};

fn milliseconds(values: impl IntoIterator<Item = u64>) -> Vec<u64> {
    values.into_iter().map(|value| value * 1_000_000).collect()
}

fn success(metrics: &Metrics, labels: &RequestLabels<'_>, usage: Usage) {
    metrics.record_request(labels, None, Duration::from_millis(100), &usage, 0.0);
}

#[test]
fn nearest_rank_of_one_to_one_hundred_is_the_value_at_that_rank() {
    let sorted = milliseconds(1..=100);
    assert_eq!(nearest_rank_milliseconds(&sorted, 50), 50.0);
    assert_eq!(nearest_rank_milliseconds(&sorted, 95), 95.0);
    assert_eq!(nearest_rank_milliseconds(&sorted, 99), 99.0);
}

#[test]
fn nearest_rank_rounds_the_rank_up_and_never_interpolates() {
    let sorted = milliseconds([15, 20, 35, 40, 50]);
    // Ranks: ceil(0.50 * 5) = 3, ceil(0.95 * 5) = 5, ceil(0.99 * 5) = 5.
    assert_eq!(nearest_rank_milliseconds(&sorted, 50), 35.0);
    assert_eq!(nearest_rank_milliseconds(&sorted, 95), 50.0);
    assert_eq!(nearest_rank_milliseconds(&sorted, 99), 50.0);
    assert_eq!(nearest_rank_milliseconds(&milliseconds([7]), 50), 7.0);
}

#[test]
fn nearest_rank_of_no_values_is_zero() {
    assert_eq!(nearest_rank_milliseconds(&[], 99), 0.0);
}

#[test]
fn a_value_on_a_bucket_bound_falls_in_that_bound_and_a_larger_one_in_overflow() {
    let mut histogram = Histogram::default();
    histogram.observe(&DURATION_BUCKETS_SECONDS, 0.01);
    histogram.observe(&DURATION_BUCKETS_SECONDS, 0.010_000_1);
    histogram.observe(&DURATION_BUCKETS_SECONDS, 0.0);
    histogram.observe(&DURATION_BUCKETS_SECONDS, 81.92);
    histogram.observe(&DURATION_BUCKETS_SECONDS, 1_000.0);
    let mut expected = [0; BUCKET_COUNT + 1];
    expected[0] = 2;
    expected[1] = 1;
    expected[BUCKET_COUNT - 1] = 1;
    expected[BUCKET_COUNT] = 1;
    assert_eq!(histogram.bucket_counts, expected);
    assert_eq!(histogram.count, 5);
}

#[test]
fn recent_durations_keep_the_newest_and_overwrite_the_oldest_first() {
    let mut recent = RecentDurations::new();
    for value in 0..(RECENT_DURATIONS as u64 + 3) {
        recent.push(value);
    }
    assert_eq!(recent.values.len(), RECENT_DURATIONS);
    assert_eq!(&recent.values[..4], &[1024, 1025, 1026, 3]);
    assert_eq!(recent.values.last(), Some(&(RECENT_DURATIONS as u64 - 1)));
}

#[test]
fn recent_durations_are_allocated_once_and_never_grow() {
    let mut recent = RecentDurations::new();
    let capacity = recent.values.capacity();
    for value in 0..3 * RECENT_DURATIONS as u64 {
        recent.push(value);
    }
    assert_eq!(recent.values.capacity(), capacity);
    assert_eq!(recent.values.len(), RECENT_DURATIONS);
}

#[test]
fn a_key_and_the_borrowed_labels_it_was_made_from_hash_alike() {
    let labels = [Some("summarize"), None, Some("")];
    let key = SeriesKey::new(labels);
    let hasher = std::collections::hash_map::RandomState::new();
    let borrowed: &dyn LabelView<3> = &labels;
    assert_eq!(hasher.hash_one(&key), hasher.hash_one(borrowed));
    assert!(borrowed == Borrow::<dyn LabelView<3>>::borrow(&key));
}

#[test]
fn recording_again_finds_the_existing_series_through_borrowed_labels() {
    let mut series: HashMap<SeriesKey<2>, u64> = HashMap::new();
    for _ in 0..3 {
        update_series(&mut series, [Some("a"), None], || 0, |count| *count += 1);
    }
    update_series(
        &mut series,
        [Some("a"), Some("b")],
        || 0,
        |count| *count += 1,
    );
    assert_eq!(series.len(), 2);
    assert_eq!(series.get(&SeriesKey::new([Some("a"), None])), Some(&3));
}

#[test]
fn an_empty_variant_is_the_same_series_as_no_variant() {
    let metrics = Metrics::new();
    let without = RequestLabels {
        variant: None,
        ..LABELS
    };
    let empty = RequestLabels {
        variant: Some(""),
        ..LABELS
    };
    success(&metrics, &without, Usage::default());
    success(&metrics, &empty, Usage::default());
    metrics.record_resolve("summarize", "v2", Some(""));
    metrics.record_resolve("summarize", "v2", None);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.requests.len(), 1);
    assert_eq!(snapshot.requests[0].requests, 2);
    assert_eq!(snapshot.requests[0].variant, None);
    assert_eq!(snapshot.resolves.len(), 1);
    assert_eq!(snapshot.resolves[0].resolves, 2);
}

#[test]
fn an_empty_error_type_is_reported_as_other() {
    let metrics = Metrics::new();
    let usage = Usage::default();
    metrics.record_request(&LABELS, Some(""), Duration::ZERO, &usage, 0.0);
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.requests[0].errors_by_type.get("_OTHER"), Some(&1));
}

#[test]
fn a_negative_or_non_finite_cost_counts_as_zero() {
    let metrics = Metrics::new();
    let usage = Usage::default();
    for cost in [0.5, -1.0, f64::NAN, f64::INFINITY, 0.25] {
        metrics.record_request(&LABELS, None, Duration::ZERO, &usage, cost);
    }
    assert_eq!(metrics.snapshot().requests[0].cost_usd, 0.75);
}

#[test]
fn non_finite_feedback_is_ignored() {
    let metrics = Metrics::new();
    metrics.record_feedback(None, None, None, "rating", 4.0);
    metrics.record_feedback(None, None, None, "rating", f64::NAN);
    metrics.record_feedback(None, None, None, "rating", f64::NEG_INFINITY);
    let feedback = &metrics.snapshot().feedback[0];
    assert_eq!((feedback.count, feedback.sum, feedback.mean), (1, 4.0, 4.0));
}

#[test]
fn the_dropped_events_total_never_decreases() {
    let metrics = Metrics::new();
    metrics.set_dropped_events(7);
    metrics.set_dropped_events(3);
    assert_eq!(metrics.snapshot().dropped_events, 7);
}

#[test]
fn token_histograms_see_successes_only_and_input_includes_cached_tokens() {
    let metrics = Metrics::new();
    // Usage's input_tokens already counts the cache reads and writes among its 111.
    let usage = Usage {
        input_tokens: 111,
        output_tokens: 5,
        cache_read_input_tokens: 100,
        cache_creation_input_tokens: 1,
    };
    success(&metrics, &LABELS, usage);
    metrics.record_request(
        &LABELS,
        Some("timeout"),
        Duration::ZERO,
        &Usage::default(),
        0.0,
    );
    let collected = metrics.collect(false);
    let totals = &collected.requests[0].totals;
    assert_eq!(totals.input_token_usage.count, 1);
    assert_eq!(totals.input_token_usage.sum, 111.0);
    assert_eq!(totals.output_token_usage.sum, 5.0);
    assert_eq!(totals.duration.count, 2);
}

#[test]
fn estimated_costs_count_in_the_total_and_in_their_own_counter() {
    let metrics = Metrics::new();
    let usage = Usage::default();
    metrics.record_call(&LABELS, None, Duration::ZERO, &usage, 0.5, false);
    metrics.record_call(&LABELS, None, Duration::ZERO, &usage, 0.25, true);
    let snapshot = metrics.snapshot();
    let series = &snapshot.requests[0];
    assert_eq!(series.cost_usd, 0.75);
    assert_eq!(series.estimated_cost_usd, 0.25);
    assert_eq!(series.cost_estimated_requests, 1);
    let text = metrics.prometheus_text();
    assert!(
        text.contains("# TYPE prompt_config_cost_estimated_usd_total counter\n"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|line| line.starts_with("prompt_config_cost_estimated_usd_total{"))
        .expect("an estimated cost sample");
    assert!(line.ends_with("} 0.25"), "{line}");
}

#[test]
fn floats_are_written_the_way_prometheus_parses_them() {
    let metrics = Metrics::new();
    let usage = Usage::default();
    metrics.record_request(&LABELS, None, Duration::ZERO, &usage, 0.1);
    metrics.record_request(&LABELS, None, Duration::ZERO, &usage, 0.2);
    metrics.record_feedback(None, None, None, "tiny", 1e-7);
    metrics.record_feedback(None, None, None, "huge", 1e21);
    let text = metrics.prometheus_text();
    assert!(text.contains("} 0.30000000000000004\n"), "{text}");
    assert!(text.contains("le=\"0.01\"}"), "{text}");
    assert!(text.contains("le=\"1\"}"), "{text}");
    assert!(text.contains("le=\"67108864\"}"), "{text}");
    assert!(text.contains("le=\"+Inf\"}"), "{text}");
    assert!(text.contains("} 0.0000001\n"), "{text}");
    assert!(text.contains("} 1000000000000000000000\n"), "{text}");
    assert!(!text.contains("e-") && !text.contains("e+"), "{text}");
}

#[test]
fn label_values_escape_backslash_double_quote_and_newline() {
    let metrics = Metrics::new();
    metrics.record_resolve("say \"hi\"\\now", "line\nbreak", None);
    let collected = metrics.collect(false);
    let text = render(&collected);
    assert!(
        text.contains(
            "prompt_config_resolves_total{gen_ai_prompt_name=\"say \\\"hi\\\"\\\\now\",\
             gen_ai_prompt_version=\"line\\nbreak\"} 1\n"
        ),
        "{text}"
    );
}

#[test]
fn the_state_gauge_follows_degradation_and_the_counter_counts_each_one() {
    let metrics = Metrics::new();
    assert_eq!(metrics.snapshot().state_degraded, 0);
    metrics.set_state_degraded(true);
    metrics.set_state_degraded(false);
    metrics.set_state_degraded(true);
    let snapshot = metrics.snapshot();
    assert_eq!((snapshot.state_degraded, snapshot.state_degradations), (1, 2));
    let text = metrics.prometheus_text();
    assert!(text.contains("\nprompt_config_state_degraded 1\n"), "{text}");
    assert!(text.contains("\nprompt_config_state_degradations_total 2\n"), "{text}");
}
