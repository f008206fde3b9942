//! `prompt-config complete`: one call through the model chain, printed for people or as JSON.

use super::Failure;
use super::args::Request;
use super::output;
use super::resolve::{context_from_args, request_options};
use prompt_config::Engine;
use prompt_config::client::{AttemptOutcome, Completion};

pub fn run(request: &Request, mock: bool) -> Result<(), Failure> {
    let context = context_from_args(request)?;
    let engine = Engine::open(request_options(request)?.with_mock(mock))?;
    let completion = engine.complete(&request.feature, &context)?;
    if request.json {
        output::print_json(&completion);
    } else {
        print_completion(&completion);
    }
    Ok(())
}

fn print_completion(completion: &Completion) {
    for line in summary(completion) {
        say!("{line}");
    }
    say!("\n{}", completion.text);
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
