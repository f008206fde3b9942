//! `prompt-config complete`: one call through the model chain, printed for people or as JSON.
//! `--messages FILE` reads the conversation so far (a JSON array of history messages); a file
//! that cannot be used is an error naming the file and the JSON pointer at fault.

use std::path::Path;

use serde_json::Value;

use super::Failure;
use super::args::Request;
use super::output;
use super::resolve::{context_from_args, request_options};
use prompt_config::client::{AttemptOutcome, Completion};
use prompt_config::{Context, Engine, ErrorKind, Message};

pub fn run(request: &Request, mock: bool, messages: Option<&Path>) -> Result<(), Failure> {
    let context = context_with_history(request, messages)?;
    let engine = Engine::open(request_options(request)?.with_mock(mock))?;
    let completion = engine
        .complete(&request.feature, &context)
        .map_err(|error| history_failure(error, messages))?;
    if request.json {
        output::print_json(&completion);
    } else {
        print_completion(&completion);
    }
    Ok(())
}

/// The context of `--user`, `--attr`, `--vars`, ... with the history of `--messages FILE`.
pub fn context_with_history(
    request: &Request,
    messages: Option<&Path>,
) -> Result<Context, Failure> {
    let context = context_from_args(request)?;
    match messages {
        Some(path) => Ok(context.with_messages(read_history(path)?)),
        None => Ok(context),
    }
}

/// The history messages in `path`: a JSON array of `{"role", "content", "tool_calls"?,
/// "tool_call_id"?}`. Errors (exit 2, `invalid_argument`) name the file, then where: the line
/// and column of a JSON syntax error, or the JSON pointer of the message that does not fit.
pub fn read_history(path: &Path) -> Result<Vec<Message>, Failure> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|error| {
        Failure::invalid_argument(format!("--messages {shown}: cannot read the file: {error}"))
    })?;
    // Editors on Windows write a BOM; `--inputs` ignores it too.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let text = std::str::from_utf8(bytes).map_err(|error| {
        let before = &bytes[..error.valid_up_to()];
        let line = before.iter().filter(|byte| **byte == b'\n').count() + 1;
        let column = before.len()
            - before
                .iter()
                .rposition(|byte| *byte == b'\n')
                .map_or(0, |at| at + 1)
            + 1;
        Failure::invalid_argument(format!(
            "--messages {shown}: line {line} column {column}: not UTF-8 text"
        ))
    })?;
    let value: Value = serde_json::from_str(text).map_err(|error| {
        Failure::invalid_argument(format!(
            "--messages {shown}: line {} column {}: not JSON: {error}",
            error.line(),
            error.column()
        ))
    })?;
    let Value::Array(items) = value else {
        return Err(Failure::invalid_argument(format!(
            "--messages {shown}: /: must be a JSON array of messages, like \
             [{{\"role\": \"user\", \"content\": \"...\"}}]"
        )));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            serde_json::from_value::<Message>(item).map_err(|error| {
                Failure::invalid_argument(format!("--messages {shown}: /{index}: {error}"))
                    .with_details(serde_json::json!({
                        "file": path.to_string_lossy(), "pointer": format!("/{index}"),
                    }))
            })
        })
        .collect()
}

/// A history the core refused (`invalid_messages`) is reported against the file:
/// `FILE: /3/tool_call_id: ...`, with the pointer and file in the details; other errors as
/// they are.
pub fn history_failure(error: prompt_config::Error, messages: Option<&Path>) -> Failure {
    let (Some(path), ErrorKind::InvalidMessages) = (messages, error.kind()) else {
        return error.into();
    };
    let mut details = error.details();
    let index = details["index"].as_u64().unwrap_or_default();
    let pointer = format!("/{index}{}", details["field"].as_str().unwrap_or_default());
    let reason = details["message"].as_str().unwrap_or_default().to_string();
    if let Value::Object(map) = &mut details {
        map.insert("file".into(), Value::from(path.to_string_lossy()));
        map.insert("pointer".into(), Value::from(pointer.as_str()));
    }
    Failure::failed(
        ErrorKind::InvalidMessages,
        format!("--messages {}: {pointer}: {reason}", path.display()),
        details,
    )
}

fn print_completion(completion: &Completion) {
    for line in summary(completion) {
        say!("{line}");
    }
    if let Some(answer) = answer(completion) {
        say!("\n{answer}");
    }
}

/// What `complete` prints after the summary: a structured answer's parsed data, pretty (the
/// `text` is the same JSON on one line), else the text; nothing for an answer that is only tool
/// calls (the summary lists them).
fn answer(completion: &Completion) -> Option<String> {
    match &completion.data {
        Some(data) => {
            Some(serde_json::to_string_pretty(data).unwrap_or_else(|_| completion.text.clone()))
        }
        None if completion.text.is_empty() && !completion.tool_calls.is_empty() => None,
        None => Some(completion.text.clone()),
    }
}

/// The lines describing a completion, without its text: where it came from, tokens and cost,
/// the request id, a cache hit, why it stopped, a refusal, streaming figures and every attempt.
/// `complete` prints them on stdout before the text; `complete --stream` on stderr after it.
pub fn summary(completion: &Completion) -> Vec<String> {
    let mut lines = Vec::new();
    macro_rules! say {
        ($($argument:tt)*) => {
            lines.push(format!($($argument)*))
        };
    }
    let resolution = &completion.resolution;
    say!(
        "{} {} ({}) via {}/{} in {:.0} ms, {} in + {} out tokens, ${:.6}{}{}",
        resolution.feature,
        resolution.version,
        resolution.source.as_str(),
        completion.provider,
        completion.model,
        completion.latency_ms,
        completion.usage.total_input_tokens(),
        completion.usage.output_tokens,
        completion.cost_usd,
        if completion.cost_estimated {
            " (estimated: the provider did not report usage or the model has no price)"
        } else {
            ""
        },
        if completion.downgraded {
            " (budget downgrade)"
        } else {
            ""
        },
    );
    say!("request: {}", completion.request_id);
    // A hit costs nothing and has no attempts: say where the answer came from and what it saved.
    if let Some(hit) = &completion.cache {
        say!(
            "from the response cache: saved ${:.6}{}",
            hit.saved_usd,
            hit.partition
                .as_deref()
                .map(|partition| format!(" (partition {partition})"))
                .unwrap_or_default()
        );
    }
    // A refusal, a cut-off or tool calls change what the text means: say why it stopped.
    match (&completion.finish_reason, &completion.raw_finish_reason) {
        (Some(reason), Some(raw)) if reason.as_str() != raw => {
            say!("finish reason: {} ({raw})", reason.as_str())
        }
        (Some(reason), _) => say!("finish reason: {}", reason.as_str()),
        (None, _) => {}
    }
    if let Some(refusal) = &completion.refusal {
        say!("refusal: {refusal}");
    }
    if completion.repairs > 0 {
        say!(
            "repairs: {} (the answer was sent back with its validation errors)",
            completion.repairs
        );
    }
    // The model asked for tools: the caller runs them and calls again with the results.
    for call in &completion.tool_calls {
        say!(
            "tool call {}: {}({})",
            call.id,
            call.name,
            serde_json::to_string(&call.arguments).unwrap_or_default()
        );
    }
    if let Some(stream) = &completion.stream {
        say!(
            "stream: first token after {:.0} ms, {} chunks",
            stream.time_to_first_token_ms,
            stream.chunks
        );
    }
    for attempt in &completion.attempts {
        let outcome = match attempt.outcome {
            AttemptOutcome::Success => "ok".to_string(),
            _ => attempt.message.clone().unwrap_or_default(),
        };
        say!(
            "attempt {}: {}/{} {:.0} ms (waited {:.0} ms): {outcome}",
            attempt.number,
            attempt.provider,
            attempt.model,
            attempt.latency_ms,
            attempt.wait_ms
        );
    }
    lines
}

#[cfg(all(test, unix))]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::{answer, read_history, summary};
    use prompt_config::client::Completion;
    use prompt_config::output::ToolCall;
    use prompt_config::{Context, Engine, EngineOptions};

    /// A real completion from the shipped configuration's mock provider.
    fn mock_completion() -> Completion {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let options = EngineOptions::new(root.join("config"), root.join("prompts")).with_mock(true);
        let engine = Engine::open(options).unwrap();
        let context = Context::new("7")
            .variable("current_role", "Nurse")
            .variable("degree", "BSc")
            .variable("skills", json!(["care"]))
            .variable("sector", "healthcare")
            .variable("goals", "data")
            .pin_version("1.0.0");
        engine.complete("career_path_navigator", &context).unwrap()
    }

    #[test]
    fn parsed_data_is_printed_pretty_instead_of_the_text() {
        let mut completion = mock_completion();
        completion.data = Some(json!({"career_paths": [{"title": "Analyst"}]}));
        completion.text = r#"{"career_paths":[{"title":"Analyst"}]}"#.into();
        let printed = answer(&completion).unwrap();
        assert_eq!(
            printed,
            "{\n  \"career_paths\": [\n    {\n      \"title\": \"Analyst\"\n    }\n  ]\n}"
        );
    }

    #[test]
    fn tool_calls_and_repairs_are_listed_in_the_summary() {
        let mut completion = mock_completion();
        completion.text.clear();
        completion.repairs = 1;
        completion.tool_calls = vec![ToolCall {
            id: "call_1".into(),
            name: "salary_lookup".into(),
            arguments: json!({"role": "analyst"}),
        }];
        let lines = summary(&completion);
        assert!(
            lines.contains(&r#"tool call call_1: salary_lookup({"role":"analyst"})"#.to_string()),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|line| line.starts_with("repairs: 1")),
            "{lines:?}"
        );
        // Only tool calls: no empty answer after the summary.
        assert_eq!(answer(&completion), None);
    }

    #[test]
    fn a_prose_answer_is_printed_as_its_text() {
        let completion = mock_completion();
        assert_eq!(answer(&completion), Some(completion.text.clone()));
        assert!(
            !summary(&completion)
                .iter()
                .any(|line| line.starts_with("tool call"))
        );
    }

    /// Writes `bytes` to a fresh file and reads it as a history.
    fn read(bytes: &[u8]) -> Result<usize, String> {
        let dir = std::env::temp_dir().join(format!(
            "pc_history_{}_{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("chat.json");
        std::fs::write(&path, bytes).unwrap();
        let outcome = read_history(&path)
            .map(|messages| messages.len())
            .map_err(|failure| failure.message);
        let _ = std::fs::remove_dir_all(&dir);
        outcome.map_err(|message| {
            // Every error names the file first.
            let prefix = format!("--messages {}: ", path.display());
            assert!(message.starts_with(&prefix), "{message}");
            message[prefix.len()..].to_string()
        })
    }

    #[test]
    fn an_empty_array_is_an_empty_history() {
        assert_eq!(read(b"[]"), Ok(0));
    }

    #[test]
    fn an_empty_file_is_not_json() {
        assert!(
            read(b"")
                .unwrap_err()
                .starts_with("line 1 column 0: not JSON")
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_named_by_line_and_column() {
        let error = read(b"[{\"role\": \"user\", \"content\": \"caf\xe9\"}]").unwrap_err();
        assert_eq!(error, "line 1 column 34: not UTF-8 text");
    }

    #[test]
    fn a_leading_utf8_bom_is_skipped() {
        let text = format!("\u{feff}{}", json!([{"role": "user", "content": "hi"}]));
        assert_eq!(read(text.as_bytes()), Ok(1));
    }

    #[test]
    fn an_escaped_nul_is_read_and_left_to_the_core_to_refuse() {
        let text = json!([{"role": "user", "content": "a\u{0}b"}]).to_string();
        assert_eq!(read(text.as_bytes()), Ok(1));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        /// Any bytes are a history or an error naming the file, never a panic.
        #[test]
        fn any_bytes_are_a_history_or_an_error_naming_the_file(
            bytes in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let _ = read(&bytes);
        }

        /// Any array of JSON objects is read message by message: an error names the pointer of
        /// the first one that does not fit.
        #[test]
        fn a_message_that_does_not_fit_is_named_by_its_pointer(
            good in 0usize..4,
            key in "[a-z_]{1,12}",
        ) {
            prop_assume!(!["role", "content", "tool_calls", "tool_call_id"].contains(&key.as_str()));
            let mut history: Vec<serde_json::Value> =
                (0..good).map(|_| json!({"role": "user", "content": "hi"})).collect();
            history.push(json!({"role": "user", "content": "hi", key.clone(): 1}));
            let error = read(serde_json::Value::Array(history).to_string().as_bytes()).unwrap_err();
            let expected = format!("/{good}: unknown field `{key}`");
            prop_assert!(error.starts_with(&expected), "{}", error);
        }
    }
}
