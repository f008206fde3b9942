//! `prompt-config complete`: one call through the model chain, printed for people or as JSON.

use super::args::Args;
use super::resolve::context_from_args;
use super::{Failure, engine_options};
use prompt_config::Engine;
use prompt_config::client::{AttemptOutcome, Completion};

pub fn run(args: &Args) -> Result<(), Failure> {
    args.allow(
        &[
            "config",
            "prompts",
            "user",
            "attr",
            "var",
            "vars",
            "version",
            "telemetry",
        ],
        &["json", "mock"],
    )?;
    let [_, feature] = args.positional.as_slice() else {
        return Err(Failure::usage("complete needs FEATURE"));
    };
    let context = context_from_args(args)?;
    let engine = Engine::open(engine_options(args).with_mock(args.flag("mock")))?;
    let completion = engine.complete(feature, &context)?;
    if args.flag("json") {
        say!(
            "{}",
            serde_json::to_string_pretty(&completion).unwrap_or_default()
        );
    } else {
        print_completion(&completion);
    }
    Ok(())
}

fn print_completion(completion: &Completion) {
    let resolution = &completion.resolution;
    say!(
        "{} {} ({}) via {}/{} in {:.0} ms, {} in + {} out tokens, ${:.6}{}",
        resolution.feature,
        resolution.version,
        resolution.source.as_str(),
        completion.provider,
        completion.model,
        completion.latency_ms,
        completion.usage.total_input_tokens(),
        completion.usage.output_tokens,
        completion.cost_usd,
        if completion.downgraded {
            " (budget downgrade)"
        } else {
            ""
        },
    );
    say!("request: {}", completion.request_id);
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
    say!("\n{}", completion.text);
}
