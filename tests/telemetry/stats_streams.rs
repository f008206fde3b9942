//! `stats` on streamed requests: per group, the streams counted, time to first chunk (median and
//! p95, nearest rank, from `gen_ai.response.time_to_first_chunk` in seconds), chunks, and the
//! share of streams that ended `stream_incomplete` or `cancelled`, in text and JSON. Each log
//! is a few hand-written `llm.request` lines shaped like the engine writes them.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use prompt_config::telemetry::stats::{StatsOptions, StatsReport, analyze};
use serde_json::{Value, json};

/// An `llm.request` line of `summary` 1.0.0 on `model`; `stream` is `(outcome, time to first
/// chunk in seconds, chunks)`, `None` for a `complete()`.
fn line(id: &str, model: &str, stream: Option<(&str, Option<f64>, u64)>) -> String {
    let mut line = json!({
        "schema_version": 1, "timestamp": "2026-11-30T10:00:00.000Z", "event": "llm.request",
        "request_id": id, "gen_ai.prompt.name": "summary", "gen_ai.prompt.version": "1.0.0",
        "gen_ai.provider.name": "mock", "gen_ai.request.model": model,
        "prompt_config.outcome": "success", "prompt_config.latency_ms": 100.0,
        "prompt_config.cost_usd": 0.001,
    });
    if let Some((outcome, time_to_first_chunk, chunks)) = stream {
        line["prompt_config.outcome"] = json!(outcome);
        if outcome != "success" {
            line["error.type"] = json!(outcome);
        }
        line["prompt_config.stream"] = json!(true);
        if let Some(seconds) = time_to_first_chunk {
            line["gen_ai.response.time_to_first_chunk"] = json!(seconds);
        }
        line["prompt_config.stream.chunks"] = json!(chunks);
    }
    format!("{line}\n")
}

/// Writes `lines` to a fresh log named after `name` and returns its path.
fn write_log(name: &str, lines: &[String]) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("telemetry-stats-{name}-{}", std::process::id()));
    fs::create_dir_all(&directory).unwrap();
    let path = directory.join("telemetry.jsonl");
    fs::write(&path, lines.concat()).unwrap();
    path
}

fn analyze_log(name: &str, lines: &[String], by: &[&str]) -> StatsReport {
    let path = write_log(name, lines);
    let options = StatsOptions::default().with_by(by.iter().map(|name| name.to_string()).collect());
    let report = analyze(std::slice::from_ref(&path), &options).unwrap();
    fs::remove_dir_all(path.parent().unwrap()).unwrap();
    report
}

/// Five streams and one `complete()` of model `fast`: completed streams with first chunks after
/// 40, 20, 30 and 200 ms (12, 8, 10 and 30 chunks), one cut after 5 chunks, one cancelled
/// after 3, with no time to first chunk on the interrupted ones (the engine writes none).
fn mixed_log() -> Vec<String> {
    vec![
        line("s1", "fast", Some(("success", Some(0.040), 12))),
        line("s2", "fast", Some(("success", Some(0.020), 8))),
        line("s3", "fast", Some(("success", Some(0.030), 10))),
        line("s4", "fast", Some(("success", Some(0.200), 30))),
        line("s5", "fast", Some(("stream_incomplete", None, 5))),
        line("s6", "fast", Some(("cancelled", None, 3))),
        line("c1", "fast", None),
    ]
}

#[test]
fn a_group_reports_its_streams_time_to_first_chunk_chunks_and_how_streams_ended() {
    let report = analyze_log("mixed", &mixed_log(), &["feature", "version"]);
    let group = report.group(&["summary", "1.0.0"]).unwrap();
    assert_eq!(group.requests, 7);
    let stream = group.stream.as_ref().expect("stream figures");
    // The `complete()` line c1 is no stream.
    assert_eq!(stream.streams, 6);
    // 20 30 40 200 ms: nearest rank of n = 4, p50 → 2nd = 30, p95 → ceil(3.8) = 4th = 200.
    let ttft = stream.time_to_first_chunk_ms.unwrap();
    assert!((ttft.p50 - 30.0).abs() < 1e-9, "{ttft:?}");
    assert!((ttft.p95 - 200.0).abs() < 1e-9, "{ttft:?}");
    // 12 + 8 + 10 + 30 + 5 + 3 = 68 chunks over 6 streams.
    assert_eq!(stream.chunks, 68);
    assert!((stream.mean_chunks - 68.0 / 6.0).abs() < 1e-12);
    assert_eq!((stream.incomplete, stream.cancelled), (1, 1));
    assert!((stream.incomplete_rate - 1.0 / 6.0).abs() < 1e-12);
    assert!((stream.cancelled_rate - 1.0 / 6.0).abs() < 1e-12);
}

#[test]
fn stream_figures_are_cut_by_model_like_every_other_figure() {
    let mut log = mixed_log();
    log.push(line("m1", "slow", Some(("success", Some(1.5), 40))));
    log.push(line("m2", "slow", Some(("stream_incomplete", None, 2))));
    let report = analyze_log("by-model", &log, &["model"]);
    let slow = report.group(&["slow"]).unwrap();
    let stream = slow.stream.as_ref().unwrap();
    assert_eq!(stream.streams, 2);
    let ttft = stream.time_to_first_chunk_ms.unwrap();
    assert_eq!((ttft.p50, ttft.p95), (1500.0, 1500.0));
    assert_eq!(stream.incomplete_rate, 0.5);
    assert_eq!(stream.cancelled_rate, 0.0);
    assert_eq!(
        report
            .group(&["fast"])
            .unwrap()
            .stream
            .as_ref()
            .unwrap()
            .streams,
        6
    );
}

#[test]
fn streams_that_all_broke_have_no_time_to_first_chunk() {
    let log = [
        line("a", "fast", Some(("stream_incomplete", None, 4))),
        line("b", "fast", Some(("cancelled", None, 1))),
    ];
    let report = analyze_log("all-broke", &log, &["model"]);
    let stream = report.groups[0].stream.as_ref().unwrap();
    assert_eq!(stream.time_to_first_chunk_ms, None);
    assert_eq!((stream.incomplete_rate, stream.cancelled_rate), (0.5, 0.5));
    let text = report.to_string();
    // A dash for each missing percentile.
    assert!(
        text.lines()
            .any(|row| row.trim_start().starts_with("fast") && row.contains(" -  ")),
        "{text}"
    );
}

#[test]
fn a_group_without_streams_has_no_stream_figures_in_json_or_text() {
    let log = [line("c1", "fast", None), line("c2", "fast", None)];
    let report = analyze_log("no-streams", &log, &["model"]);
    assert_eq!(report.groups[0].stream, None);
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["groups"][0].get("stream").is_none(), "{json}");
    assert!(!report.to_string().contains("streams"));
}

#[test]
fn the_text_report_prints_a_stream_table_per_group() {
    let mut log = mixed_log();
    log.push(line("m1", "slow", Some(("success", Some(1.5), 40))));
    log.push(line("n1", "plain", None));
    let text = analyze_log("text", &log, &["model"]).to_string();
    let lines: Vec<&str> = text.lines().collect();
    let title = lines
        .iter()
        .position(|line| *line == "streams (time to first chunk over completed streams)")
        .unwrap_or_else(|| panic!("{text}"));
    let header = lines[title + 1].split_whitespace().collect::<Vec<_>>();
    assert_eq!(
        header,
        [
            "model",
            "streams",
            "ttft",
            "p50",
            "ms",
            "ttft",
            "p95",
            "ms",
            "chunks/stream",
            "incomplete%",
            "cancelled%"
        ],
        "{text}"
    );
    let fast: Vec<&str> = lines[title + 2].split_whitespace().collect();
    assert_eq!(
        fast,
        ["fast", "6", "30.0", "200", "11.3", "16.7%", "16.7%"],
        "{text}"
    );
    let slow: Vec<&str> = lines[title + 3].split_whitespace().collect();
    assert_eq!(slow, ["slow", "1", "1500", "1500", "40.0", "0.0%", "0.0%"]);
    // `plain` never streamed: no row.
    assert!(
        lines[title..].iter().all(|line| !line.contains("plain")),
        "{text}"
    );
    assert!(lines.iter().all(|line| !line.ends_with(' ')), "{text}");
}

#[test]
fn the_command_prints_stream_figures_in_its_json() {
    let path = write_log("command", &mixed_log());
    let output = Command::new(env!("CARGO_BIN_EXE_prompt-config"))
        .args(["stats", "--by", "model", "--json"])
        .arg(&path)
        .output()
        .unwrap();
    fs::remove_dir_all(path.parent().unwrap()).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &json["groups"][0]["stream"];
    assert_eq!(stream["streams"], 6);
    assert_eq!(
        stream["time_to_first_chunk_ms"],
        json!({"p50": 30.0, "p95": 200.0})
    );
    assert_eq!(stream["chunks"], 68);
    assert_eq!(stream["incomplete"], 1);
    assert_eq!(stream["cancelled"], 1);
}
