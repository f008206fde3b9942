//! Metrics through a real engine and the exporter (helper H2): after one call, closing the
//! engine sends `/v1/metrics` with the GenAI names, units and bucket boundaries, cumulative
//! since the engine opened, under the resource and the pinned `schema_url`.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumberValue;
use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Metric};
use prompt_config::telemetry::otlp::SCHEMA_URL;
use prompt_config::telemetry::{DURATION_BUCKETS_SECONDS, TOKEN_BUCKETS};

use super::exporting::{WAIT, engine};
use crate::support::engine_faults::{
    ANTHROPIC, Setup, anthropic_success, complete, providers, set_keys,
};
use crate::support::http_server::TestServer;
use crate::support::otlp_collector::OtlpCollector;

/// The last metrics request the collector accepted, after one successful call to anthropic.
fn metrics_after_one_call() -> ExportMetricsServiceRequest {
    set_keys();
    let collector = OtlpCollector::start();
    let anthropic = TestServer::start(vec![anthropic_success()]);
    let setup = Setup::new(providers(None, Some(&anthropic)), &[ANTHROPIC]);
    let engine = engine(&setup, &collector);
    complete(&engine).expect("an answer");
    engine.close();
    assert!(
        collector.wait_for("/v1/metrics", 1, WAIT),
        "metrics at close"
    );
    collector
        .requests_to("/v1/metrics")
        .iter()
        .rev()
        .find(|request| request.accepted())
        .expect("an accepted metrics request")
        .metrics()
}

fn metric<'a>(request: &'a ExportMetricsServiceRequest, name: &str) -> &'a Metric {
    request.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .find(|metric| metric.name == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[test]
fn one_call_gives_the_genai_histograms_with_their_units_and_buckets() {
    let request = metrics_after_one_call();
    let resource_metrics = &request.resource_metrics[0];
    assert_eq!(resource_metrics.schema_url, SCHEMA_URL);
    let resource = resource_metrics.resource.as_ref().expect("a resource");
    assert!(
        resource
            .attributes
            .iter()
            .any(|pair| pair.key == "service.name"
                && pair.value.as_ref().and_then(|value| value.value.as_ref())
                    == Some(&AnyValueKind::StringValue("otlp-e2e".to_string())))
    );

    let duration = metric(&request, "gen_ai.client.operation.duration");
    assert_eq!(duration.unit, "s");
    let Some(Data::Histogram(histogram)) = &duration.data else {
        panic!("a histogram");
    };
    assert_eq!(
        histogram.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    let point = &histogram.data_points[0];
    assert_eq!(point.count, 1);
    assert_eq!(point.explicit_bounds, DURATION_BUCKETS_SECONDS);
    assert!(point.start_time_unix_nano > 0 && point.start_time_unix_nano <= point.time_unix_nano);

    let usage = metric(&request, "gen_ai.client.token.usage");
    assert_eq!(usage.unit, "{token}");
    let Some(Data::Histogram(histogram)) = &usage.data else {
        panic!("a histogram");
    };
    let input = histogram
        .data_points
        .iter()
        .find(|point| {
            point.attributes.iter().any(|pair| {
                pair.key == "gen_ai.token.type"
                    && pair.value.as_ref().and_then(|value| value.value.as_ref())
                        == Some(&AnyValueKind::StringValue("input".to_string()))
            })
        })
        .expect("an input series");
    assert_eq!((input.count, input.sum), (1, Some(20.0)));
    assert_eq!(input.explicit_bounds, TOKEN_BUCKETS);
}

#[test]
fn one_call_gives_its_cost_in_usd_and_the_call_count() {
    let request = metrics_after_one_call();
    let cost = metric(&request, "prompt_config.cost");
    assert_eq!(cost.unit, "USD");
    let Some(Data::Sum(sum)) = &cost.data else {
        panic!("a sum");
    };
    assert!(sum.is_monotonic);
    assert!(matches!(sum.data_points[0].value, Some(NumberValue::AsDouble(usd)) if usd >= 0.0));
    let calls = metric(&request, "prompt_config.requests");
    let Some(Data::Sum(calls)) = &calls.data else {
        panic!("a sum");
    };
    assert_eq!(calls.data_points[0].value, Some(NumberValue::AsInt(1)));
}
