//! The metrics request: names, units, buckets, temporality and the budgets' spend ratio.

use super::*;

fn sent_metrics(snapshot_of: &Metrics, budgets: &[BudgetStatus]) -> Vec<Metric> {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_547_200);
    let now = start + Duration::from_secs(60);
    let request = converter().metrics(&snapshot_of.snapshot(), budgets, start, now);
    let decoded = ExportMetricsServiceRequest::decode(request.encode_to_vec().as_slice())
        .expect("our encoding decodes");
    assert_eq!(decoded.resource_metrics[0].schema_url, SCHEMA_URL);
    decoded.resource_metrics[0].scope_metrics[0].metrics.clone()
}

fn metric<'a>(metrics: &'a [Metric], name: &str) -> &'a Metric {
    metrics
        .iter()
        .find(|metric| metric.name == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

fn recorded() -> Metrics {
    let metrics = Metrics::new();
    let labels = RequestLabels {
        feature: "summarize",
        version: "v2",
        variant: None,
        provider: "openai",
        model: "gpt-4o",
    };
    let usage = Usage {
        input_tokens: 100,
        output_tokens: 20,
        ..Usage::default()
    };
    metrics.record_request(&labels, None, Duration::from_millis(300), &usage, 0.5);
    metrics.record_request(
        &labels,
        Some("timeout"),
        Duration::from_secs(30),
        &Usage::default(),
        0.0,
    );
    metrics.set_breaker_state("openai", BreakerState::Open);
    metrics
}

#[test]
fn operation_duration_is_a_cumulative_histogram_in_seconds_on_the_genai_buckets() {
    let metrics = sent_metrics(&recorded(), &[]);
    let duration = metric(&metrics, "gen_ai.client.operation.duration");
    assert_eq!(duration.unit, "s");
    let Some(Data::Histogram(histogram)) = &duration.data else {
        panic!("a histogram");
    };
    assert_eq!(
        histogram.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    let [point] = histogram.data_points.as_slice() else {
        panic!("one series");
    };
    assert_eq!(point.explicit_bounds, DURATION_BUCKETS_SECONDS);
    assert_eq!(point.count, 2);
    assert_eq!(
        point.bucket_counts.len(),
        DURATION_BUCKETS_SECONDS.len() + 1
    );
    assert_eq!(
        point.bucket_counts[5], 1,
        "0.3 s in the (0.16, 0.32] bucket"
    );
    assert_eq!(
        point.bucket_counts[12], 1,
        "30 s in the (20.48, 40.96] bucket"
    );
    assert_eq!(point.start_time_unix_nano, 1_764_547_200 * 1_000_000_000);
    assert_eq!(point.time_unix_nano, 1_764_547_260 * 1_000_000_000);
    assert_eq!(
        value(&point.attributes, "gen_ai.operation.name"),
        string("chat").as_ref()
    );
    assert_eq!(
        value(&point.attributes, "gen_ai.provider.name"),
        string("openai").as_ref()
    );
    assert_eq!(
        value(&point.attributes, "gen_ai.request.model"),
        string("gpt-4o").as_ref()
    );
}

#[test]
fn token_usage_is_a_histogram_of_tokens_per_token_type() {
    let metrics = sent_metrics(&recorded(), &[]);
    let usage = metric(&metrics, "gen_ai.client.token.usage");
    assert_eq!(usage.unit, "{token}");
    let Some(Data::Histogram(histogram)) = &usage.data else {
        panic!("a histogram");
    };
    let by_type: Vec<(Option<&AnyValueKind>, u64, Option<f64>)> = histogram
        .data_points
        .iter()
        .map(|point| {
            (
                value(&point.attributes, "gen_ai.token.type"),
                point.count,
                point.sum,
            )
        })
        .collect();
    assert_eq!(
        by_type,
        [
            (string("input").as_ref(), 1, Some(100.0)),
            (string("output").as_ref(), 1, Some(20.0)),
        ]
    );
    assert!(
        histogram
            .data_points
            .iter()
            .all(|point| point.explicit_bounds == TOKEN_BUCKETS)
    );
}

#[test]
fn cost_errors_and_breaker_state_are_sums_and_gauges_with_their_units() {
    let metrics = sent_metrics(&recorded(), &[]);
    let cost = metric(&metrics, "prompt_config.cost");
    assert_eq!(cost.unit, "USD");
    let Some(Data::Sum(sum)) = &cost.data else {
        panic!("a sum");
    };
    assert!(sum.is_monotonic);
    assert_eq!(sum.data_points[0].value, Some(NumberValue::AsDouble(0.5)));

    let Some(Data::Sum(errors)) = &metric(&metrics, "prompt_config.errors").data else {
        panic!("a sum");
    };
    assert_eq!(
        value(&errors.data_points[0].attributes, "error.type"),
        string("timeout").as_ref()
    );

    let Some(Data::Gauge(breakers)) = &metric(&metrics, "prompt_config.circuit_breaker.state").data
    else {
        panic!("a gauge");
    };
    assert_eq!(breakers.data_points[0].value, Some(NumberValue::AsInt(2)));
    assert_eq!(
        value(&breakers.data_points[0].attributes, "prompt_config.breaker"),
        string("openai").as_ref()
    );
}

#[test]
fn the_exporters_own_drops_are_a_sum_by_reason() {
    let metrics = sent_metrics(&Metrics::new(), &[]);
    let Some(Data::Sum(dropped)) = &metric(&metrics, "prompt_config.otlp.dropped").data else {
        panic!("a sum");
    };
    let reasons: Vec<Option<&AnyValueKind>> = dropped
        .data_points
        .iter()
        .map(|point| value(&point.attributes, "prompt_config.otlp.reason"))
        .collect();
    assert_eq!(
        reasons,
        [
            string("queue_full").as_ref(),
            string("rejected").as_ref(),
            string("failed").as_ref()
        ]
    );
}

#[test]
fn budget_spend_ratio_counts_reserved_spend_against_the_limit() {
    let budget = BudgetStatus {
        scope: "feature:summarize".to_string(),
        period: "day".to_string(),
        period_start: "2025-12-01".to_string(),
        limit_usd: 10.0,
        settled_usd: 7.0,
        reserved_usd: 1.0,
        alerts_sent: Vec::new(),
    };
    let metrics = sent_metrics(&Metrics::new(), &[budget]);
    let ratio = metric(&metrics, "prompt_config.budget.spend_ratio");
    let Some(Data::Gauge(gauge)) = &ratio.data else {
        panic!("a gauge");
    };
    let [point] = gauge.data_points.as_slice() else {
        panic!("one budget");
    };
    assert_eq!(point.value, Some(NumberValue::AsDouble(0.8)));
    assert_eq!(
        value(&point.attributes, "prompt_config.budget.scope"),
        string("feature:summarize").as_ref()
    );
    assert_eq!(
        value(&point.attributes, "prompt_config.budget.period"),
        string("day").as_ref()
    );
}

#[test]
fn time_to_first_chunk_is_sent_only_for_series_that_streamed() {
    let metrics = sent_metrics(&recorded(), &[]);
    assert!(
        metrics
            .iter()
            .all(|metric| metric.name != "gen_ai.client.operation.time_to_first_chunk")
    );
    let streamed = recorded();
    let labels = RequestLabels {
        feature: "summarize",
        version: "v2",
        variant: None,
        provider: "openai",
        model: "gpt-4o",
    };
    streamed.record_stream(&labels, Duration::from_millis(150), None);
    let metrics = sent_metrics(&streamed, &[]);
    let first_chunk = metric(&metrics, "gen_ai.client.operation.time_to_first_chunk");
    assert_eq!(first_chunk.unit, "s");
    let Some(Data::Histogram(histogram)) = &first_chunk.data else {
        panic!("a histogram");
    };
    assert_eq!(histogram.data_points[0].count, 1);
}
