//! `prompt-config resolve`: one resolution, printed for people or as JSON.

use serde_json::{Map, Value};

use super::args::Args;
use super::{Failure, engine_options};
use prompt_config::config::ModelSpec;
use prompt_config::{Context, Engine, Resolution};

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
        &["json"],
    )?;
    let [_, feature] = args.positional.as_slice() else {
        return Err(Failure::usage("resolve needs FEATURE"));
    };
    let context = context_from_args(args)?;
    let engine = Engine::open(engine_options(args))?;
    let resolution = engine.resolve(feature, &context)?;
    if args.flag("json") {
        say!(
            "{}",
            serde_json::to_string_pretty(&resolution).unwrap_or_default()
        );
    } else {
        print_resolution(&resolution);
    }
    Ok(())
}

/// Builds the context from `--user`, `--attr`, `--var`, `--vars` and `--version`.
pub fn context_from_args(args: &Args) -> Result<Context, Failure> {
    let user = args
        .value("user")
        .ok_or_else(|| Failure::usage("--user ID is required"))?;
    let attributes = pairs(args.values("attr"), "--attr")?;
    let mut variables = match args.value("vars") {
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Failure::usage("--vars must be a JSON object")),
        },
        None => Map::new(),
    };
    variables.extend(pairs(args.values("var"), "--var")?);
    let mut context = Context::new(user)
        .with_attributes(attributes)
        .with_variables(variables);
    if let Some(version) = args.value("version") {
        context = context.pin_version(version);
    }
    Ok(context)
}

/// `KEY=VALUE` pairs; a VALUE that parses as JSON is JSON, anything else is text.
fn pairs(raw: &[String], option: &str) -> Result<Map<String, Value>, Failure> {
    let mut map = Map::new();
    for pair in raw {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Failure::usage(format!(
                "{option} expects KEY=VALUE, got \"{pair}\""
            )));
        };
        let value =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        map.insert(key.to_string(), value);
    }
    Ok(map)
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
