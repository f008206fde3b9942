//! `prompt-config complete --stream`: the answer on stdout as it arrives, flushed per delta,
//! and the summary on stderr at the end (stdout stays the answer, for a pipe); with `--json`,
//! JSON Lines on stdout: `{"delta": ...}` per delta, `{"restart": {...}}` per restart, then the
//! completion object or the error object. The exit code is 0 only when the stream completed.
//! Ctrl-C cancels the stream (the connection is closed at once; kind `cancelled`).

use serde_json::json;

use std::path::Path;

use super::args::Request;
use super::resolve::request_options;
use super::{Failure, complete, output};
use prompt_config::Engine;
use prompt_config::client::{CancelToken, StreamControl, StreamEvent};

pub fn run(request: &Request, mock: bool, messages: Option<&Path>) -> Result<(), Failure> {
    let json = request.json;
    let outcome = stream(request, mock, json, messages);
    // With --json every line of stdout is a JSON object, the error included.
    outcome.map_err(|failure| {
        if json {
            failure.printed_as_json_line()
        } else {
            failure
        }
    })
}

fn stream(
    request: &Request,
    mock: bool,
    json: bool,
    messages: Option<&Path>,
) -> Result<(), Failure> {
    let context = complete::context_with_history(request, messages)?;
    let engine = Engine::open(request_options(request)?.with_mock(mock))?;
    let cancel = CancelToken::new();
    #[cfg(unix)]
    let _interrupt = super::interrupt::cancel_on_interrupt(&cancel);
    // Whether the text printed so far ends a line, so the summary or error starts on its own.
    let mut at_line_start = true;
    let result = engine.stream_with(&request.feature, &context, &cancel, |event| {
        let stdout_ok = match event {
            StreamEvent::Delta(text) if json => output::print_json_line(&json!({"delta": text})),
            StreamEvent::Delta(text) => {
                if !text.is_empty() {
                    at_line_start = text.ends_with('\n');
                }
                output::write_text(text)
            }
            StreamEvent::Restart {
                provider,
                model,
                reason,
            } if json => output::print_json_line(&json!({"restart": {
                "provider": provider, "model": model, "reason": reason}})),
            StreamEvent::Restart {
                provider,
                model,
                reason,
            } => {
                output::write_error(&format!(
                    "\nrestart: {provider}/{model} broke ({reason}); the answer starts over"
                ));
                let ok = output::write_text(if at_line_start { "" } else { "\n" });
                at_line_start = true;
                ok
            }
            // An event kind this version does not know: nothing to print.
            _ => true,
        };
        // A reader that went away (`| head`) needs no more text: stop paying for it.
        if stdout_ok {
            StreamControl::Continue
        } else {
            StreamControl::Stop
        }
    });
    if output::stdout_gone() {
        // The stream was stopped because nobody reads the answer: end quietly, as every
        // command does for `| head`.
        return Ok(());
    }
    if !json && !at_line_start {
        output::write_text("\n");
    }
    let completion = result.map_err(|error| complete::history_failure(error, messages))?;
    if json {
        output::print_json_line(&completion);
    } else {
        for line in complete::summary(&completion) {
            output::write_error(&line);
        }
    }
    Ok(())
}
