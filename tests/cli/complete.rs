//! `prompt-config complete` in text mode says everything the Completion knows that changes what
//! the answer means: a refusal and its text, why generation stopped, and an estimated cost.
//! The provider is a loopback server speaking Chat Completions.

use crate::support::cli;
use crate::support::http_server::{Reply, TestServer};
use crate::support::one_feature::OneFeature;
use serde_json::json;

/// Runs `complete ask` against a configuration whose only provider is the server, keyless.
fn complete_text(server: &TestServer) -> (i32, String) {
    let provider = json!({
        "kind": "openai_compatible",
        "base_url": format!("{}/v1", server.url()),
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}
    });
    let config = OneFeature::new(&json!({"providers": {"local": provider}}), "local", "m");
    let output = cli::run_in(
        &config.root,
        &["complete", "ask", "--user", "1", "--var", "question=why?"],
    );
    (output.status.code().unwrap_or(-1), cli::stdout(&output))
}

#[test]
fn a_refusal_is_printed_with_its_text_and_finish_reason() {
    let body = json!({
        "id": "chatcmpl-1", "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6}
    });
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let (code, stdout) = complete_text(&server);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("finish reason: refusal"), "{stdout}");
    assert!(
        stdout.contains("refusal: I can't help with that."),
        "{stdout}"
    );
}

#[test]
fn an_answer_cut_off_by_the_length_limit_says_so() {
    let body = json!({
        "id": "chatcmpl-2", "model": "m",
        "choices": [{"index": 0, "finish_reason": "length",
            "message": {"role": "assistant", "content": "Because"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1}
    });
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let (code, stdout) = complete_text(&server);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("finish reason: length"), "{stdout}");
    assert!(!stdout.contains("estimated"), "{stdout}");
}

#[test]
fn a_cost_estimated_for_a_reply_without_usage_is_marked() {
    let body = json!({
        "id": "chatcmpl-3", "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Because."}}]
    });
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let (code, stdout) = complete_text(&server);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("(estimated"), "{stdout}");
}
