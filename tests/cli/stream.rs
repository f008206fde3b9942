//! `prompt-config complete --stream`: the answer on stdout as it arrives and the summary on
//! stderr; with `--json` JSON Lines ending with the completion or the error; a stream that
//! breaks, a Ctrl-C and flags that do not apply exit non-zero.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::cli::{self, PROFILE, run, stderr, stdout};
use crate::support::fixture::Fixture;
use crate::support::http_server::{Reply, TestServer};
use crate::support::one_feature::OneFeature;
use serde_json::{Value, json};

const MOCK_STREAM: &[&str] = &[
    "complete",
    "career_path_navigator",
    "--user",
    "42",
    "--vars",
    PROFILE,
    "--mock",
    "--stream",
];

/// Every line of `text` parsed as JSON (a line that is not JSON fails the test).
fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line:?}")))
        .collect()
}

/// A configuration whose feature `ask` calls one keyless OpenAI-compatible provider at the
/// server, with a single attempt per model.
fn loopback(server: &TestServer) -> OneFeature {
    let provider = json!({
        "kind": "openai_compatible",
        "base_url": format!("{}/v1", server.url()),
        "timeout_ms": 5000,
        "retry": {"max_attempts": 1},
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}
    });
    OneFeature::new(&json!({"providers": {"local": provider}}), "local", "m")
}

const ASK: &[&str] = &[
    "complete",
    "ask",
    "--user",
    "1",
    "--var",
    "question=why?",
    "--stream",
];

/// One Chat Completions stream chunk carrying `text`.
fn sse_delta(text: &str) -> String {
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]});
    format!("data: {chunk}\n\n")
}

/// A stream that sends `Hello` and is cut before its terminal event.
fn cut_after_hello() -> Reply {
    Reply::status(200)
        .header("content-type", "text/event-stream")
        .body(sse_delta("Hello"))
        .truncated()
}

#[test]
fn text_mode_prints_exactly_the_completion_text_on_stdout_and_the_summary_on_stderr() {
    let fixture = Fixture::new();
    let text_mode = run(&fixture, MOCK_STREAM);
    assert_eq!(text_mode.status.code(), Some(0), "{}", stderr(&text_mode));
    let mut args = MOCK_STREAM.to_vec();
    args.push("--json");
    let lines = json_lines(&stdout(&run(&fixture, &args)));
    let text = lines.last().unwrap()["text"].as_str().unwrap().to_string();
    assert_eq!(stdout(&text_mode), format!("{text}\n"));
    let summary = stderr(&text_mode);
    assert!(summary.contains("via openai/gpt-4o-mini"), "{summary}");
    assert!(summary.contains("request: req_"), "{summary}");
    assert!(summary.contains("attempt 1: "), "{summary}");
}

#[test]
fn json_lines_parse_one_by_one_deltas_first_and_end_with_the_completion() {
    let fixture = Fixture::new();
    let mut args = MOCK_STREAM.to_vec();
    args.push("--json");
    let output = run(&fixture, &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines = json_lines(&stdout(&output));
    let (completion, deltas) = lines.split_last().expect("at least the completion");
    assert!(!deltas.is_empty(), "at least one delta");
    let joined: String = deltas
        .iter()
        .map(|line| {
            assert_eq!(line.as_object().unwrap().len(), 1, "{line}");
            line["delta"].as_str().expect("a delta line").to_string()
        })
        .collect();
    assert_eq!(completion["text"], joined.as_str());
    assert_eq!(completion["resolution"]["feature"], "career_path_navigator");
    assert!(completion["stream"]["chunks"].is_u64(), "{completion}");
}

#[test]
fn a_stream_cut_after_the_first_token_ends_with_a_stream_incomplete_line_and_exit_1() {
    let server = TestServer::start(vec![cut_after_hello()]);
    let config = loopback(&server);
    let mut args = ASK.to_vec();
    args.push("--json");
    let output = cli::run_in(&config.root, &args);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    let lines = json_lines(&stdout(&output));
    assert_eq!(lines.first(), Some(&json!({"delta": "Hello"})), "{lines:?}");
    let error = &lines.last().unwrap()["error"];
    assert_eq!(error["kind"], "stream_incomplete", "{error}");
    assert_eq!(error["details"]["partial_text"], "Hello", "{error}");
    assert!(error["message"].is_string());
}

#[test]
fn a_cut_stream_in_text_mode_keeps_the_partial_text_on_stdout_and_the_error_on_stderr() {
    let server = TestServer::start(vec![cut_after_hello()]);
    let config = loopback(&server);
    let output = cli::run_in(&config.root, ASK);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Hello\n");
    assert!(
        stderr(&output).contains("error [stream_incomplete]"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_failure_before_the_stream_is_one_error_line_with_json() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &[
            "complete", "nope", "--user", "1", "--mock", "--stream", "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(json_lines(&text)[0]["error"]["kind"], "unknown_feature");
}

#[test]
fn a_usage_mistake_with_stream_and_json_is_one_error_line_and_exit_2() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &[
            "complete", "ask", "--stream", "--json", "--user", "1", "--bogus",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(json_lines(&text)[0]["error"]["kind"], "usage");
}

#[test]
fn stream_is_an_option_of_complete_only() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &[
            "resolve",
            "career_path_navigator",
            "--user",
            "1",
            "--stream",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--stream"), "{}", stderr(&output));
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_a_stream_and_exits_1_with_a_cancelled_line() {
    let server = TestServer::start(vec![Reply::hang()]);
    let config = loopback(&server);
    let mut child = cli::command(&config.root)
        .args(ASK)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let waiting = Instant::now();
    while server.requests().is_empty() {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "no request arrived"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let interrupted = Instant::now();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if interrupted.elapsed() > Duration::from_secs(3) {
            let _ = child.kill();
            panic!("Ctrl-C did not end the stream");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // Generous for a loaded machine; the library's own tests hold the 100 ms bound.
    assert!(interrupted.elapsed() < Duration::from_secs(1));
    assert_eq!(status.code(), Some(1));
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let lines = json_lines(&text);
    assert_eq!(
        lines.last().unwrap()["error"]["kind"],
        "cancelled",
        "{text}"
    );
}

#[test]
fn a_reader_that_goes_away_stops_the_stream_quietly() {
    let fixture = Fixture::new();
    let mut child = cli::command(&fixture.root)
        .args(MOCK_STREAM)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    // Close the read end before the first delta (the mock answers after 350 ms or more).
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("the binary ends");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("error"), "{}", stderr(&output));
}

#[test]
fn a_restart_on_the_next_model_is_a_restart_line_between_the_deltas() {
    let complete_world = format!(
        "{}data: {}\n\ndata: [DONE]\n\n",
        sse_delta("World"),
        json!({"id": "c2", "object": "chat.completion.chunk", "model": "m2",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    );
    let server = TestServer::start(vec![
        cut_after_hello(),
        Reply::status(200)
            .header("content-type", "text/event-stream")
            .body(complete_world),
    ]);
    let provider = json!({
        "kind": "openai_compatible",
        "base_url": format!("{}/v1", server.url()),
        "retry": {"max_attempts": 1},
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0},
                   "m2": {"input_per_million": 1.0, "output_per_million": 2.0}}
    });
    let config = OneFeature::new(
        &json!({"client": {"stream": {"restart_on_incomplete": true}},
                "providers": {"local": provider}}),
        "local",
        "m",
    );
    let feature_path = config.root.join("config/features/ask.json");
    let mut feature: Value =
        serde_json::from_str(&std::fs::read_to_string(&feature_path).unwrap()).unwrap();
    feature["fallbacks"] = json!([{"provider": "local", "name": "m2"}]);
    std::fs::write(&feature_path, feature.to_string()).unwrap();
    let mut args = ASK.to_vec();
    args.push("--json");
    let output = cli::run_in(&config.root, &args);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let lines = json_lines(&stdout(&output));
    assert_eq!(lines[0], json!({"delta": "Hello"}), "{lines:?}");
    assert_eq!(lines[1]["restart"]["model"], "m", "{lines:?}");
    assert!(lines[1]["restart"]["reason"].is_string(), "{lines:?}");
    assert_eq!(lines[2], json!({"delta": "World"}), "{lines:?}");
    assert_eq!(lines.last().unwrap()["text"], "World", "{lines:?}");
}
