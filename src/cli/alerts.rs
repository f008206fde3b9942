//! `prompt-config alerts test [--channel NAME] [--json]`: sends a test alert to each channel of
//! `config/alerts.json` (or the one named), one after the other, and prints per channel `ok` or
//! why not. Exit 0 when every channel took it; 1 with `alert_delivery_failed` naming the first
//! failing channel; 2 for a channel name the file does not define. `--json` prints one object,
//! `{"channels": [...]}`, with the `error` object of every `--json` failure beside it when a
//! channel failed.

use serde_json::json;

use prompt_config::ErrorKind;
use prompt_config::telemetry::alerts::{TestAlerts, TestDelivery};

use super::args::AlertsCommand;
use super::{Failure, engine_options};

/// Runs an `alerts` subcommand.
pub fn run(command: AlertsCommand) -> Result<(), Failure> {
    match command {
        AlertsCommand::Test {
            channel,
            dirs,
            json,
        } => test(
            channel.as_deref(),
            &engine_options(&dirs).paths.config_dir,
            json,
        ),
    }
}

fn test(channel: Option<&str>, config_dir: &std::path::Path, json: bool) -> Result<(), Failure> {
    let alerts = TestAlerts::load(config_dir).map_err(prompt_config::Error::from)?;
    let names: Vec<String> = match channel {
        Some(name) if !alerts.channel_names().contains(&name) => {
            let known = alerts.channel_names().join(", ");
            return Err(Failure::invalid_argument(format!(
                "--channel {name}: no such channel in alerts.json (channels: {known})"
            ))
            .with_details(json!({"argument": "--channel"})));
        }
        Some(name) => vec![name.to_string()],
        None => alerts
            .channel_names()
            .into_iter()
            .map(str::to_string)
            .collect(),
    };
    let mut results: Vec<TestDelivery> = Vec::new();
    for name in &names {
        let Some(result) = alerts.send(name) else {
            continue;
        };
        if !json {
            print_line(&result);
        }
        results.push(result);
    }
    if names.is_empty() && !json {
        say!("no channels in alerts.json");
    }
    match results.iter().find(|result| !result.ok) {
        None => {
            if json {
                super::output::print_json(&json!({"channels": results}));
            }
            Ok(())
        }
        Some(failed) => {
            let failing: Vec<&str> = results
                .iter()
                .filter(|result| !result.ok)
                .map(|result| result.channel.as_str())
                .collect();
            let failure = Failure::failed(
                ErrorKind::AlertDeliveryFailed,
                format!(
                    "channel {}: {}",
                    failed.channel,
                    failed.error.as_deref().unwrap_or("not delivered")
                ),
                json!({"channel": failed.channel, "channels": failing}),
            );
            Err(if json {
                // One object: the per-channel results beside the error every `--json` failure
                // prints, so a program reading stdout finds `error.kind` as it does elsewhere.
                let mut document = super::output::error_json(
                    failure.kind.as_str(),
                    &failure.message,
                    &failure.details,
                );
                document["channels"] = json!(results);
                super::output::print_json(&document);
                failure.reported_in_json()
            } else {
                failure
            })
        }
    }
}

fn print_line(result: &TestDelivery) {
    let attempts = match result.attempts {
        0 | 1 => String::new(),
        n => format!(", {n} attempts"),
    };
    match (&result.error, result.status) {
        (None, Some(status)) => say!(
            "{} ({}): ok (HTTP {status}{attempts})",
            result.channel,
            result.channel_type
        ),
        (None, None) => say!("{} ({}): ok", result.channel, result.channel_type),
        (Some(error), _) => say!(
            "{} ({}): failed: {error}{attempts}",
            result.channel,
            result.channel_type
        ),
    }
}
