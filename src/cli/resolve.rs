//! `prompt-config resolve`: one resolution, printed for people or as JSON.

use serde_json::{Map, Value};

use super::args::Request;
use super::{Failure, engine_options, output};
use prompt_config::ModelSpec;
use prompt_config::state::{RedisSettings, StateBackend, StateChange, StateError, StateListener};
use prompt_config::{Context, Engine, EngineOptions, Resolution, TraceContext};

pub fn run(request: &Request) -> Result<(), Failure> {
    let context = context_from_args(request)?;
    let engine = Engine::open(request_options(request)?)?;
    let resolution = engine.resolve(&request.feature, &context)?;
    if request.json {
        output::print_json(&resolution);
    } else {
        print_resolution(&resolution);
    }
    Ok(())
}

/// The engine options of `resolve` and `complete`: directories, `--telemetry` and the state
/// backend (`--redis`, else `$PROMPT_CONFIG_REDIS_URL`, else memory). A URL that does not
/// parse is a usage error naming where it came from (its password masked).
pub fn request_options(request: &Request) -> Result<EngineOptions, Failure> {
    let mut options = engine_options(&request.dirs);
    if let Some(path) = &request.telemetry {
        options = options.with_telemetry(path);
    }
    with_redis(options, request.redis.as_deref())
}

/// `options` with the state backend of `--redis` (`redis`), else `$PROMPT_CONFIG_REDIS_URL`,
/// else memory. With Redis, the command prints one warning on stderr if the shared state
/// degrades while it runs (see [`degraded_warning`]).
pub fn with_redis(
    mut options: EngineOptions,
    redis: Option<&str>,
) -> Result<EngineOptions, Failure> {
    let redis = match redis {
        Some(url) => Some(("--redis", url.to_string())),
        None => match std::env::var("PROMPT_CONFIG_REDIS_URL") {
            Ok(url) if url.trim().is_empty() => None,
            Ok(url) => Some(("PROMPT_CONFIG_REDIS_URL", url)),
            Err(std::env::VarError::NotPresent) => None,
            // Falling back to memory here would silently drop the fleet's shared limits.
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Failure::invalid_argument(
                    "PROMPT_CONFIG_REDIS_URL must be UTF-8 text (the value is not shown: it may \
                     hold a password)",
                ));
            }
        },
    };
    if let Some((source, url)) = redis {
        let settings = RedisSettings::new(&url).map_err(|error| match error {
            StateError::InvalidSettings { message, .. } => {
                Failure::invalid_argument(format!("{source}: {message}"))
            }
            other => Failure::invalid_argument(format!("{source}: {other}")),
        })?;
        options = options
            .with_state(StateBackend::Redis(settings))
            .with_state_listener(degraded_warning());
    }
    Ok(options)
}

/// A listener printing `warning: shared state unavailable (<server, password masked>):
/// <reason>; serving from local state` on stderr the first time the shared state degrades
/// during the command, and nothing after: a wrong port, password or db must not pass silently
/// (telemetry alone is easy to miss), and a long command must not repeat it on every flap.
pub fn degraded_warning() -> StateListener {
    let warned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    std::sync::Arc::new(move |change: &StateChange| {
        if let Some(line) = warning_line(change)
            && !warned.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            output::write_error(&line);
        }
    })
}

/// The warning for a change of health, if it deserves one (a restore does not).
fn warning_line(change: &StateChange) -> Option<String> {
    match change {
        StateChange::Degraded { server, reason } => Some(format!(
            "warning: shared state unavailable ({server}): {reason}; serving from local state"
        )),
        _ => None,
    }
}

/// Builds the context from `--user`, `--attrs`, `--attr`, `--vars`, `--var`, `--version` and
/// `--traceparent` (a malformed one is a usage mistake naming it: exit 2, `invalid_argument`).
/// `--attr` values are strings (so `app_version=1.10` stays the version "1.10"), `--attrs`
/// values keep their JSON types; `--attr` wins over `--attrs` and `--var` over `--vars` for the
/// same name.
pub fn context_from_args(request: &Request) -> Result<Context, Failure> {
    let mut attributes = json_object(request.attrs.as_deref(), "--attrs")?;
    for (name, value) in pairs(&request.attr, "--attr")? {
        attributes.insert(name, Value::String(value));
    }
    let mut variables = json_object(request.vars.as_deref(), "--vars")?;
    for (name, value) in pairs(&request.var, "--var")? {
        let value = serde_json::from_str(&value).unwrap_or(Value::String(value));
        variables.insert(name, value);
    }
    let mut context = Context::new(request.user.as_str())
        .with_attributes(attributes)
        .with_variables(variables);
    if let Some(version) = &request.version {
        context = context.pin_version(version.as_str());
    }
    if let Some(traceparent) = &request.traceparent {
        let trace = TraceContext::parse_traceparent(traceparent).map_err(|error| {
            Failure::invalid_argument(format!(
                "--traceparent: {} (expected 00-<32 hex trace-id>-<16 hex parent-id>-<2 hex \
                     trace-flags>)",
                error.reason
            ))
        })?;
        context = context.with_trace_context(trace);
    }
    Ok(context)
}

/// The JSON object given to `option`, or an empty one when it was not given.
fn json_object(text: Option<&str>, option: &str) -> Result<Map<String, Value>, Failure> {
    let Some(text) = text else {
        return Ok(Map::new());
    };
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Failure::invalid_argument(format!(
            "{option} must be a JSON object, got {}",
            json_type(&other)
        ))),
        Err(error) => Err(Failure::invalid_argument(format!(
            "{option} must be a JSON object: {error}"
        ))),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `NAME=VALUE` pairs, split at the first `=`; the name may not be empty.
fn pairs(raw: &[String], option: &str) -> Result<Vec<(String, String)>, Failure> {
    raw.iter()
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
            _ => Err(Failure::invalid_argument(format!(
                "{option} expects NAME=VALUE, got \"{pair}\""
            ))
            .with_details(serde_json::json!({"argument": option, "value": pair}))),
        })
        .collect()
}

fn describe_model(model: &ModelSpec) -> String {
    let parameters = serde_json::to_string(&model.parameters).unwrap_or_default();
    format!("{}/{} {parameters}", model.provider, model.name)
}

fn print_resolution(resolution: &Resolution) {
    let mut why = vec![resolution.source.as_str().to_string()];
    if let Some(experiment) = &resolution.experiment {
        why.push(experiment.clone());
    }
    if let Some(variant) = &resolution.variant {
        why.push(format!("variant {variant}"));
    }
    if let Some(rule) = &resolution.rule {
        why.push(format!("rule {rule}"));
    }
    if let Some(bucket) = resolution.bucket {
        why.push(format!("bucket {bucket}"));
    }
    say!(
        "{} {} ({})",
        resolution.feature,
        resolution.version,
        why.join(", ")
    );
    say!("model:     {}", describe_model(&resolution.model));
    for fallback in &resolution.fallbacks {
        say!("fallback:  {}", describe_model(fallback));
    }
    say!("prompt:    sha256 {}", resolution.prompt_hash);
    say!("revision:  {}", resolution.config_revision);
    for message in &resolution.messages {
        say!("\n--- {} ---\n{}", message.role.as_str(), message.content);
    }
}
