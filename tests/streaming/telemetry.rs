//! What a streamed call writes to telemetry and metrics: `llm.request` and `llm.attempt` with
//! `prompt_config.stream`, `gen_ai.response.time_to_first_chunk` (seconds) and the chunk count;
//! outcomes `stream_incomplete` and `cancelled`; the time-to-first-chunk and time-per-chunk
//! histograms in the snapshot and the Prometheus text.

use std::path::{Path, PathBuf};

use prompt_config::Engine;
use prompt_config::client::{StreamControl, StreamFault};
use serde_json::Value;

use crate::setup::{Setup, context, mock, stream};
use crate::support::prometheus::Exposition;

fn engine_with_log(setup: &Setup) -> (Engine, PathBuf) {
    let path = setup.root.join("telemetry.jsonl");
    (
        Engine::open(setup.options().with_telemetry(&path)).unwrap(),
        path,
    )
}

fn events(path: &Path, name: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|record| record["event"] == name)
        .collect()
}

#[test]
fn a_streamed_request_line_carries_time_to_first_chunk_in_seconds_and_the_chunk_count() {
    let setup = Setup::plain();
    let (engine, path) = engine_with_log(&setup);
    let (seen, completion) = stream(&engine);
    completion.unwrap();
    engine.close();
    let request = &events(&path, "llm.request")[0];
    assert_eq!(request["prompt_config.stream"], true);
    assert_eq!(request["gen_ai.response.time_to_first_chunk"], 0.05);
    assert_eq!(request["prompt_config.stream.chunks"], seen.deltas.len());
    let attempt = &events(&path, "llm.attempt")[0];
    assert_eq!(attempt["prompt_config.stream.chunks"], seen.deltas.len());
    assert_eq!(attempt["gen_ai.response.time_to_first_chunk"], 0.05);
}

#[test]
fn an_incomplete_stream_is_recorded_as_stream_incomplete_with_its_estimated_cost() {
    let setup = Setup::plain();
    let (engine, path) = engine_with_log(&setup);
    mock(&engine, "openai").break_next_stream(StreamFault::Cut, 2);
    assert!(stream(&engine).1.is_err());
    engine.close();
    let request = &events(&path, "llm.request")[0];
    assert_eq!(request["prompt_config.outcome"], "stream_incomplete");
    assert_eq!(request["error.type"], "stream_incomplete");
    assert_eq!(request["prompt_config.stream.chunks"], 2);
    assert!(request["prompt_config.cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(request["prompt_config.cost_estimated"], true);
    let attempt = &events(&path, "llm.attempt")[0];
    assert_eq!(attempt["prompt_config.outcome"], "stream_incomplete");
}

#[test]
fn a_stopped_stream_is_recorded_as_cancelled() {
    let setup = Setup::plain();
    let (engine, path) = engine_with_log(&setup);
    let result = engine.stream("summary", &context(), |_| StreamControl::Stop);
    assert!(result.is_err());
    engine.close();
    let request = &events(&path, "llm.request")[0];
    assert_eq!(request["prompt_config.outcome"], "cancelled");
    assert_eq!(request["error.type"], "cancelled");
}

#[test]
fn streams_appear_in_the_metrics_snapshot_and_the_time_to_first_chunk_histogram() {
    let setup = Setup::plain();
    let engine = setup.engine();
    stream(&engine).1.unwrap();
    let snapshot = engine.metrics();
    let series = &snapshot.requests[0];
    assert_eq!(series.streams, 1);
    assert_eq!(series.mean_time_to_first_chunk_ms, 50.0);
    assert!(series.mean_time_per_output_chunk_ms > 0.0);
    let exposition = Exposition::parse(&engine.prometheus_text()).unwrap();
    for family in [
        "gen_ai_client_operation_time_to_first_chunk_seconds",
        "gen_ai_client_operation_time_per_output_chunk_seconds",
    ] {
        let samples = &exposition.family(family).samples;
        let count = samples
            .iter()
            .find(|sample| sample.name == format!("{family}_count"))
            .unwrap();
        assert_eq!(count.value, 1.0, "{family}");
    }
}

#[test]
fn complete_calls_add_no_stream_histogram_series() {
    let setup = Setup::plain();
    let engine = setup.engine();
    engine.complete("summary", &context()).unwrap();
    let exposition = Exposition::parse(&engine.prometheus_text()).unwrap();
    let family = exposition.family("gen_ai_client_operation_time_to_first_chunk_seconds");
    assert!(family.samples.is_empty());
    assert_eq!(engine.metrics().requests[0].streams, 0);
}

/// The `llm.request` line of an interrupted stream: the token counts it was charged for
/// (estimated, like the cost) and the stream's time to first chunk, as its attempt line has.
fn assert_interrupted_request_line_carries_its_charge(request: &Value, attempt: &Value) {
    let cost = request["prompt_config.cost_usd"].as_f64().unwrap();
    assert!(cost > 0.0, "{request}");
    assert_eq!(request["prompt_config.cost_estimated"], true);
    assert!(request["gen_ai.usage.input_tokens"].as_u64().unwrap() > 0);
    assert!(request["gen_ai.usage.output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(request["prompt_config.stream"], true);
    assert_eq!(
        request["gen_ai.response.time_to_first_chunk"],
        attempt["gen_ai.response.time_to_first_chunk"]
    );
    assert_eq!(
        request["prompt_config.stream.chunks"],
        attempt["prompt_config.stream.chunks"]
    );
}

#[test]
fn an_incomplete_streams_request_line_carries_the_estimated_tokens_charged_and_its_time_to_first_chunk()
 {
    let setup = Setup::plain();
    let (engine, path) = engine_with_log(&setup);
    mock(&engine, "openai").break_next_stream(StreamFault::Cut, 3);
    assert!(stream(&engine).1.is_err());
    engine.close();
    let request = &events(&path, "llm.request")[0];
    let attempt = &events(&path, "llm.attempt")[0];
    assert_interrupted_request_line_carries_its_charge(request, attempt);
    assert_eq!(request["gen_ai.response.time_to_first_chunk"], 0.05);
    assert_eq!(request["prompt_config.stream.chunks"], 3);
}

#[test]
fn a_cancelled_streams_request_line_carries_the_estimated_tokens_charged_and_its_time_to_first_chunk()
 {
    let setup = Setup::plain();
    let (engine, path) = engine_with_log(&setup);
    let mut deltas = 0;
    let result = engine.stream("summary", &context(), |_| {
        deltas += 1;
        if deltas == 2 {
            StreamControl::Stop
        } else {
            StreamControl::Continue
        }
    });
    assert!(result.is_err());
    engine.close();
    let request = &events(&path, "llm.request")[0];
    assert_eq!(request["prompt_config.outcome"], "cancelled");
    let attempt = &events(&path, "llm.attempt")[0];
    assert_interrupted_request_line_carries_its_charge(request, attempt);
    assert_eq!(request["prompt_config.stream.chunks"], 2);
}
