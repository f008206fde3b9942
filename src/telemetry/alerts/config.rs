//! The shape of `config/alerts.json`: named channels and the rules that send to them, read and
//! checked like the rest of the configuration. The file is optional (absent: alerts are off);
//! when present it is parsed strictly (duplicate keys refused), checked against the JSON Schema
//! compiled into the binary (`config/schema/alerts_schema.json`) and cross-checked (a rule
//! naming an unknown channel, two rules with one name, a feature no config defines). Every
//! problem names the file and a JSON pointer, and they are reported with the configuration's
//! other problems by `Engine::open`, reloads and `prompt-config validate`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use super::Severity;
use crate::config::{ConfigError, FileDigest, Problem, parse_strict, pointer_token};

/// The alerts file's name inside the config directory.
pub const ALERTS_FILE: &str = "alerts.json";

/// The alerts schema's text as shipped in `config/schema/alerts_schema.json`.
pub const ALERTS_SCHEMA: &str = include_str!("../../../config/schema/alerts_schema.json");

/// `config/alerts.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The channels, by name.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// Where alerts go. Every secret is the *name* of an environment variable, read when an alert
/// is delivered, so the file holds none.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ChannelConfig {
    /// A Slack incoming webhook (<https://api.slack.com/messaging/webhooks>).
    Slack {
        /// The variable holding the webhook URL.
        webhook_url_env: String,
    },
    /// PagerDuty Events API v2 (<https://developer.pagerduty.com/docs/events-api-v2/overview/>).
    Pagerduty {
        /// The variable holding the integration's routing key.
        routing_key_env: String,
        /// The events endpoint; `https://events.pagerduty.com/v2/enqueue` by default (tests
        /// and EU accounts set it).
        #[serde(default)]
        url: Option<String>,
    },
    /// A generic JSON webhook, signed with HMAC-SHA256 over `{timestamp}.{body}`.
    Webhook {
        /// The variable holding the URL.
        url_env: String,
        /// The variable holding the signing secret.
        secret_env: String,
    },
}

/// One alert rule: what fires, how bad, and where it goes.
// No `deny_unknown_fields`: serde cannot combine it with the flattened, tagged condition (it
// refuses `type` itself); the JSON Schema refuses unknown fields per rule type instead.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RuleConfig {
    /// Unique name (`[a-z0-9_.-]+`), in dedup keys and messages.
    pub name: String,
    /// The condition.
    #[serde(flatten)]
    pub condition: Condition,
    /// How bad it is when it fires.
    pub severity: Severity,
    /// Channel names.
    pub channels: Vec<String>,
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Condition {
    /// A budget crossed one of `thresholds` (percent; default every threshold the budget
    /// alerts at: 80, 90, 95, 100), optionally only for `scope` (`overall`, `feature:<name>`).
    Budget {
        /// Percentages that alert; every one the budget crosses when absent.
        #[serde(default)]
        thresholds: Option<Vec<u32>>,
        /// Only this budget scope (`overall`, `feature:<name>`); every scope when absent.
        #[serde(default)]
        scope: Option<String>,
    },
    /// A circuit breaker opened (resolved when it closes), optionally only `breaker`.
    BreakerOpen {
        /// Only this breaker (`openai`, `openai/gpt-4o`); every breaker when absent.
        #[serde(default)]
        breaker: Option<String>,
    },
    /// The share of a feature's requests that failed, over `window_seconds`, above `above`
    /// (0..1), once at least `min_requests` were seen in the window.
    ErrorRate {
        /// Only this feature; each feature on its own when absent.
        #[serde(default)]
        feature: Option<String>,
        /// The sliding window, in seconds.
        window_seconds: u64,
        /// The limit, a share between 0 and 1; the rule fires above it.
        above: f64,
        /// Requests the window must hold before the rule may fire (default 10).
        #[serde(default = "default_min_requests")]
        min_requests: u64,
    },
    /// A feature's p95 latency over `window_seconds` above `above_ms`.
    LatencyP95 {
        /// Only this feature; each feature on its own when absent.
        #[serde(default)]
        feature: Option<String>,
        /// The sliding window, in seconds.
        window_seconds: u64,
        /// The limit in milliseconds; the rule fires above it.
        above_ms: f64,
        /// Requests the window must hold before the rule may fire (default 10).
        #[serde(default = "default_min_requests")]
        min_requests: u64,
    },
    /// The share of a feature's structured answers that were invalid, over `window_seconds`.
    InvalidOutputRate {
        /// Only this feature; each feature on its own when absent.
        #[serde(default)]
        feature: Option<String>,
        /// The sliding window, in seconds.
        window_seconds: u64,
        /// The limit, a share between 0 and 1; the rule fires above it.
        above: f64,
        /// Requests the window must hold before the rule may fire (default 10).
        #[serde(default = "default_min_requests")]
        min_requests: u64,
    },
    /// An evaluation run (an `eval.run` line) that did not pass.
    EvaluationFailed {
        /// Only this feature; each feature on its own when absent.
        #[serde(default)]
        feature: Option<String>,
    },
}

fn default_min_requests() -> u64 {
    10
}

impl AlertsConfig {
    /// Reads `config_dir/alerts.json`: `Ok(None)` when the file does not exist (alerts off),
    /// `Ok(Some(..))` when it is valid, else `config_invalid` listing every problem with the
    /// file and a JSON pointer. Features are not cross-checked here (`Engine::open` does, with
    /// the feature configs at hand).
    pub fn load(config_dir: &Path) -> Result<Option<AlertsConfig>, ConfigError> {
        let mut problems = Vec::new();
        let loaded = load_alerts(config_dir, &[], None, &mut problems, &mut Vec::new());
        if problems.is_empty() {
            Ok(loaded)
        } else {
            Err(ConfigError::Invalid { problems })
        }
    }

    /// Checks and deserializes `bytes` as the content of `file` (a path shown in problems):
    /// what [`AlertsConfig::load`] does once the file is read. `features`, when given, are the
    /// configured feature names rules may name.
    pub fn parse(
        file: &str,
        bytes: &[u8],
        features: Option<&[&str]>,
    ) -> Result<AlertsConfig, ConfigError> {
        let mut problems = Vec::new();
        match parse_checked(file, bytes, features, &mut problems) {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError::Invalid { problems }),
        }
    }

    /// The channel named `name`.
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.get(name)
    }
}

impl Condition {
    /// The rule type's name as written in `alerts.json` (`budget`, `error_rate`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Condition::Budget { .. } => "budget",
            Condition::BreakerOpen { .. } => "breaker_open",
            Condition::ErrorRate { .. } => "error_rate",
            Condition::LatencyP95 { .. } => "latency_p95",
            Condition::InvalidOutputRate { .. } => "invalid_output_rate",
            Condition::EvaluationFailed { .. } => "evaluation_failed",
        }
    }

    /// The feature the rule is limited to, if any.
    pub fn feature(&self) -> Option<&str> {
        match self {
            Condition::ErrorRate { feature, .. }
            | Condition::LatencyP95 { feature, .. }
            | Condition::InvalidOutputRate { feature, .. }
            | Condition::EvaluationFailed { feature } => feature.as_deref(),
            Condition::Budget { scope, .. } => scope
                .as_deref()
                .and_then(|scope| scope.strip_prefix("feature:")),
            Condition::BreakerOpen { .. } => None,
        }
    }
}

/// Reads and checks `config_dir/alerts.json` (or its content in `overrides`), pushing every
/// problem to `problems` and the file's digest to `sources` (it is part of the config
/// revision); `None` when the file is absent or unusable. The snapshot loader calls it beside
/// the feature configs, so `validate` lists these problems with theirs.
pub(crate) fn load_alerts(
    config_dir: &Path,
    overrides: &[(PathBuf, Vec<u8>)],
    features: Option<&[&str]>,
    problems: &mut Vec<Problem>,
    sources: &mut Vec<FileDigest>,
) -> Option<AlertsConfig> {
    let path = config_dir.join(ALERTS_FILE);
    let file = path.display().to_string();
    let bytes = match overrides.iter().find(|(overridden, _)| *overridden == path) {
        Some((_, bytes)) => bytes.clone(),
        None => match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                problems.push(Problem::new(
                    &file,
                    "",
                    format!("cannot read file: {error}"),
                ));
                return None;
            }
        },
    };
    sources.push(FileDigest::of(file.clone(), &bytes));
    parse_checked(&file, &bytes, features, problems)
}

/// Parse, schema, shape and cross-checks of one alerts document.
fn parse_checked(
    file: &str,
    bytes: &[u8],
    features: Option<&[&str]>,
    problems: &mut Vec<Problem>,
) -> Option<AlertsConfig> {
    let mut document = match parse_strict(bytes) {
        Ok(document) => document,
        Err(problem) => {
            for (pointer, message) in problem.located() {
                problems.push(Problem::new(file, pointer, message));
            }
            return None;
        }
    };
    let before = problems.len();
    check_schema(file, &document, problems);
    if problems.len() > before {
        return None;
    }
    // `$schema` is for editors; the typed shape refuses unknown keys.
    if let Value::Object(object) = &mut document {
        object.remove("$schema");
    }
    let config: AlertsConfig = match serde_json::from_value(document) {
        Ok(config) => config,
        Err(error) => {
            problems.push(Problem::new(file, "", format!("unexpected shape: {error}")));
            return None;
        }
    };
    cross_check(file, &config, features, problems);
    Some(config)
}

fn check_schema(file: &str, document: &Value, problems: &mut Vec<Problem>) {
    static COMPILED: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    let compiled = COMPILED.get_or_init(|| {
        let schema: Value = serde_json::from_str(ALERTS_SCHEMA).map_err(|e| e.to_string())?;
        jsonschema::validator_for(&schema).map_err(|error| error.to_string())
    });
    let validator = match compiled {
        Ok(validator) => validator,
        Err(message) => {
            problems.push(Problem::new(
                file,
                "",
                format!("the embedded alerts schema does not compile: {message}"),
            ));
            return;
        }
    };
    if validator.is_valid(document) {
        return;
    }
    problems.extend(validator.iter_errors(document).map(|error| {
        let pointer = error.instance_path().as_str().to_string();
        // A `*_env` field holds a variable's name; what was written there by mistake is often
        // the secret itself (a webhook URL), which an error quoting it would print in CI logs.
        let message = if pointer.ends_with("_env") {
            "must be the name of an environment variable (letters, digits and _) that holds the \
             secret, not the secret itself (the value is not shown)"
                .to_string()
        } else {
            error.to_string()
        };
        Problem::new(file, pointer, message)
    }));
}

/// What the schema cannot say: names unique, channels known, features configured.
fn cross_check(
    file: &str,
    config: &AlertsConfig,
    features: Option<&[&str]>,
    problems: &mut Vec<Problem>,
) {
    let mut names = HashSet::new();
    for (index, rule) in config.rules.iter().enumerate() {
        if !names.insert(rule.name.as_str()) {
            problems.push(Problem::new(
                file,
                format!("/rules/{index}/name"),
                format!("duplicate rule name \"{}\"", rule.name),
            ));
        }
        for (position, channel) in rule.channels.iter().enumerate() {
            if !config.channels.contains_key(channel) {
                let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
                problems.push(Problem::new(
                    file,
                    format!("/rules/{index}/channels/{position}"),
                    format!(
                        "unknown channel \"{channel}\" (channels: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        if let (Some(features), Some(feature)) = (features, rule.condition.feature())
            && !features.contains(&feature)
        {
            let field = match rule.condition {
                Condition::Budget { .. } => "scope",
                _ => "feature",
            };
            problems.push(Problem::new(
                file,
                format!("/rules/{index}/{}", pointer_token(field)),
                format!("unknown feature \"{feature}\" (no config/features/{feature}.json)"),
            ));
        }
    }
}
