//! `prompt-config complete --messages FILE`: the conversation so far, from a JSON file, sent
//! after the template's messages (in `--json` and with `--stream`); a file that cannot be used
//! fails naming the file and where (line and column, or the JSON pointer of the message), and
//! a history the core refuses names the file and the pointer of the field at fault.

use crate::support::cli::{self, PROFILE, run, stderr, stdout};
use crate::support::fixture::Fixture;
use crate::support::http_server::{Reply, TestServer};
use crate::support::one_feature::OneFeature;
use crate::support::release::edit_and_release;
use serde_json::{Value, json};

/// A chat with one tool round: the assistant asks for a tool, the caller answers it.
fn chat() -> Value {
    json!([
        {"role": "user", "content": "Which path pays best?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "name": "salary_lookup", "arguments": {"role": "data analyst"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "52000 GBP"},
        {"role": "user", "content": "And the first step?"}
    ])
}

/// Writes `text` as `chat.json` in the fixture and returns its path as an argument.
fn history_file(fixture: &Fixture, text: &str) -> String {
    let path = fixture.root.join("chat.json");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// `complete career_path_navigator --mock --messages FILE` plus `extra`.
fn complete(fixture: &Fixture, file: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "complete",
        "career_path_navigator",
        "--user",
        "42",
        "--vars",
        PROFILE,
        "--version",
        "1.0.0",
        "--mock",
        "--messages",
        file,
    ];
    args.extend_from_slice(extra);
    run(fixture, &args)
}

#[test]
fn the_history_follows_the_template_messages_in_the_json_completion() {
    let fixture = Fixture::new();
    let file = history_file(&fixture, &chat().to_string());
    let output = complete(&fixture, &file, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let completion: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let sent = completion["resolution"]["messages"].as_array().unwrap();
    assert_eq!(Value::Array(sent[sent.len() - 4..].to_vec()), chat());
    // The structured fields are always there: no schema, no tool calls, no repairs.
    assert_eq!(completion["data"], Value::Null);
    assert_eq!(completion["tool_calls"], json!([]));
    assert_eq!(completion["repairs"], 0);
}

#[test]
fn the_history_changes_the_prompt_hash() {
    let fixture = Fixture::new();
    let hash = |output: std::process::Output| -> String {
        let completion: Value = serde_json::from_str(&stdout(&output)).unwrap();
        completion["resolution"]["prompt_hash"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let with = hash(complete(
        &fixture,
        &history_file(&fixture, &chat().to_string()),
        &["--json"],
    ));
    let without = hash(complete(
        &fixture,
        &history_file(&fixture, "[]"),
        &["--json"],
    ));
    assert_ne!(with, without);
}

#[test]
fn a_streamed_completion_takes_the_history_too() {
    let fixture = Fixture::new();
    let file = history_file(&fixture, &chat().to_string());
    let output = complete(&fixture, &file, &["--stream", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let last = stdout(&output).lines().last().unwrap().to_string();
    let completion: Value = serde_json::from_str(&last).unwrap();
    let sent = completion["resolution"]["messages"].as_array().unwrap();
    assert_eq!(sent.last().unwrap()["content"], "And the first step?");
}

#[test]
fn a_missing_file_is_a_usage_error_naming_it() {
    let fixture = Fixture::new();
    let output = complete(&fixture, "no-such-chat.json", &[]);
    assert_eq!(output.status.code(), Some(2));
    let error = stderr(&output);
    assert!(error.contains("error [invalid_argument]"), "{error}");
    assert!(
        error.contains("--messages no-such-chat.json: cannot read the file"),
        "{error}"
    );
}

#[test]
fn a_file_starting_with_a_utf8_bom_is_read_like_one_without() {
    let fixture = Fixture::new();
    let file = history_file(&fixture, &format!("\u{feff}{}", chat()));
    let output = complete(&fixture, &file, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn a_file_that_is_not_utf8_names_the_line_and_column_of_the_first_bad_byte() {
    let fixture = Fixture::new();
    let path = fixture.root.join("chat.json");
    std::fs::write(
        &path,
        b"[\n  {\"role\": \"user\", \"content\": \"caf\xE9\"}\n]",
    )
    .unwrap();
    let file = path.to_string_lossy().into_owned();
    let output = complete(&fixture, &file, &[]);
    assert_eq!(output.status.code(), Some(2));
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "--messages {file}: line 2 column 35: not UTF-8 text"
        )),
        "{error}"
    );
}

#[test]
fn a_file_that_is_not_json_names_the_line_and_column() {
    let fixture = Fixture::new();
    let file = history_file(
        &fixture,
        "[\n  {\"role\": \"user\",\n   \"content\": oops}\n]",
    );
    let output = complete(&fixture, &file, &[]);
    assert_eq!(output.status.code(), Some(2));
    let error = stderr(&output);
    assert!(
        error.contains(&format!("--messages {file}: line 3 column")),
        "{error}"
    );
}

#[test]
fn a_file_that_is_not_an_array_names_the_root_pointer() {
    let fixture = Fixture::new();
    let file = history_file(&fixture, r#"{"role": "user", "content": "Hi"}"#);
    let output = complete(&fixture, &file, &["--json"]);
    assert_eq!(output.status.code(), Some(2));
    let error: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(error["error"]["kind"], "invalid_argument");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("--messages {file}: /: must be a JSON array")),
        "{message}"
    );
}

#[test]
fn a_message_of_the_wrong_shape_names_its_pointer() {
    let fixture = Fixture::new();
    let file = history_file(
        &fixture,
        r#"[{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hi", "name": "bob"}]"#,
    );
    let output = complete(&fixture, &file, &["--json"]);
    assert_eq!(output.status.code(), Some(2));
    let error: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("--messages {file}: /1: unknown field `name`")),
        "{message}"
    );
    assert_eq!(error["error"]["details"]["pointer"], "/1");
}

#[test]
fn a_history_the_core_refuses_names_the_file_and_the_field_pointer() {
    let fixture = Fixture::new();
    let file = history_file(
        &fixture,
        r#"[{"role": "user", "content": "Hi"}, {"role": "tool", "tool_call_id": "call_9", "content": "42"}]"#,
    );
    let output = complete(&fixture, &file, &[]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains(&format!(
            "error [invalid_messages]: --messages {file}: /1/tool_call_id:"
        )),
        "{error}"
    );
    assert!(error.contains("call_9"), "{error}");
}

#[test]
fn a_system_message_in_the_file_is_refused_in_json_with_its_pointer() {
    let fixture = Fixture::new();
    let file = history_file(&fixture, r#"[{"role": "system", "content": "Be terse"}]"#);
    let output = complete(&fixture, &file, &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    let error: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(error["error"]["kind"], "invalid_messages");
    let details = &error["error"]["details"];
    assert_eq!(
        (&details["index"], &details["field"], &details["pointer"]),
        (&json!(0), &json!("/role"), &json!("/0/role"))
    );
    assert_eq!(details["file"], json!(file));
}

#[test]
fn too_many_messages_are_refused_naming_the_limit() {
    let fixture = Fixture::new();
    let history: Vec<Value> = (0..51)
        .map(
            |turn| json!({"role": if turn % 2 == 0 {"user"} else {"assistant"}, "content": "more"}),
        )
        .collect();
    let file = history_file(&fixture, &Value::Array(history).to_string());
    let output = complete(&fixture, &file, &["--stream"]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains(&format!("--messages {file}: /50:")),
        "{error}"
    );
    assert!(error.contains("max_messages"), "{error}");
}

/// A configuration whose feature `ask` declares the tool `salary_lookup` and calls one keyless
/// OpenAI-compatible provider at `server`. Version 1.0.0 is released again after the edit, as
/// `prompt-config release` does, so its hashes cover the tools declaration.
fn tool_feature(server: &TestServer) -> OneFeature {
    let provider = json!({"kind": "openai_compatible", "base_url": format!("{}/v1", server.url()),
        "retry": {"max_attempts": 1},
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}});
    let config = OneFeature::new(&json!({"providers": {"local": provider}}), "local", "m");
    edit_and_release(&config.root, "ask", "1.0.0", |feature| {
        feature["versions"]["1.0.0"]["tools"] = json!([{
            "name": "salary_lookup", "description": "Median salary of a role.",
            "parameters": {"type": "object", "properties": {"role": {"type": "string"}},
                           "required": ["role"], "additionalProperties": false}}]);
    });
    config
}

/// An OpenAI answer asking for `salary_lookup`.
fn tool_call_answer() -> Value {
    json!({"id": "chatcmpl-t", "model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls",
        "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
            "type": "function", "function": {"name": "salary_lookup",
            "arguments": "{\"role\":\"analyst\"}"}}]}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9}})
}

#[test]
fn the_tool_calls_of_an_answer_are_listed_in_the_summary_and_the_json() {
    let server = TestServer::start(vec![
        Reply::json(200, &tool_call_answer()),
        Reply::json(200, &tool_call_answer()),
    ]);
    let config = tool_feature(&server);
    let args = ["complete", "ask", "--user", "1", "--var", "question=pay?"];
    let output = cli::run_in(&config.root, &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("finish reason: tool_calls"), "{text}");
    assert!(
        text.contains(r#"tool call call_1: salary_lookup({"role":"analyst"})"#),
        "{text}"
    );
    let output = cli::run_in(&config.root, &[&args[..], &["--json"]].concat());
    let completion: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        completion["tool_calls"],
        json!([{"id": "call_1", "name": "salary_lookup", "arguments": {"role": "analyst"}}])
    );
}

#[test]
fn a_tool_result_from_the_file_reaches_the_provider() {
    let answer = json!({"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "Analysts earn most."}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 4}});
    let server = TestServer::start(vec![Reply::json(200, &answer)]);
    let config = tool_feature(&server);
    let chat = json!([
        {"role": "user", "content": "Which pays best?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "name": "salary_lookup", "arguments": {"role": "analyst"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "52000 GBP"}
    ]);
    let file = config.root.join("chat.json");
    std::fs::write(&file, chat.to_string()).unwrap();
    let output = cli::run_in(
        &config.root,
        &[
            "complete",
            "ask",
            "--user",
            "1",
            "--var",
            "question=pay?",
            "--messages",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).ends_with("Analysts earn most.\n"),
        "{}",
        stdout(&output)
    );
    let request: Value = serde_json::from_str(&server.requests()[0].body).unwrap();
    let messages = request["messages"].as_array().unwrap();
    let result = messages
        .iter()
        .find(|message| message["role"] == "tool")
        .unwrap();
    assert_eq!(result["content"], "52000 GBP");
}
