//! The shapes of `config/providers.json` and `config/features/*.json` as Rust types. The JSON
//! Schemas in `config/schema/` are the contract editors and CI see; these types mirror them and
//! are only deserialized after the schema has accepted a document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cache::CacheSettings;
use super::settings::{
    BreakerSettings, BudgetSettings, ClientSettings, MockSettings, RateLimitSettings,
    RetrySettings, TelemetrySettings,
};
use crate::targeting::Namespace;

/// `config/providers.json`: every provider a feature may name, with its models and prices.
/// This is the file as parsed; the client works from its compiled form,
/// [`ProviderTable`](crate::client::ProviderTable).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ProvidersConfig {
    /// Providers by name (`openai`, `anthropic`, `mock`, ...).
    pub providers: BTreeMap<String, ProviderSpec>,
    /// Deadline and all-breakers-open behaviour.
    #[serde(default)]
    pub client: ClientSettings,
    /// The overall budget across features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSettings>,
}

/// One provider: which API it speaks, where its key lives, and its models.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ProviderSpec {
    /// The provider kind: a built-in one (`openai`, `anthropic`, `openai_compatible`, `mock`,
    /// see [`ProviderKind`]) or one registered with `EngineOptions::with_provider_kind`.
    pub kind: String,
    /// The environment variable holding the API key (never the key itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Overrides the public endpoint (a proxy, a gateway, a test server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Models by name with their prices.
    pub models: BTreeMap<String, ModelPricing>,
    /// The longest one attempt may take, connect to last byte (20 s).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Retries and backoff.
    #[serde(default)]
    pub retry: RetrySettings,
    /// The circuit breaker.
    #[serde(default)]
    pub circuit_breaker: BreakerSettings,
    /// A client-side rate limit for the whole provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSettings>,
    /// The `anthropic-version` header (Anthropic only; 2023-06-01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_version: Option<String>,
    /// Latency of the mock provider.
    #[serde(default)]
    pub mock: MockSettings,
    /// The header the key is sent in (`openai`, `openai_compatible`; default `authorization`,
    /// Azure OpenAI uses `api-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_header: Option<String>,
    /// What precedes the key in that header: `Bearer` for `authorization` and nothing for any
    /// other header when absent; an empty string sends the bare key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_scheme: Option<String>,
    /// Query parameters added to the URL (`openai`, `openai_compatible`; Azure's `api-version`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// Headers sent with every call (OpenRouter's `HTTP-Referer` and `X-Title`). Not for
    /// secrets: keys come from `api_key_env` only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// `openai_compatible` only: whether a call fails with `missing_api_key` when the variable
    /// named by `api_key_env` is unset (true); false sends the call without a key. A provider
    /// without `api_key_env` never sends a key (Ollama, a local vLLM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_required: Option<bool>,
    /// Settings of a registered custom kind, passed to its factory as they are.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub options: serde_json::Map<String, Value>,
}

fn default_timeout_ms() -> u64 {
    20_000
}

/// The built-in provider kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProviderKind {
    /// OpenAI Chat Completions.
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// Chat Completions at another base URL with another key header (Azure OpenAI, vLLM,
    /// Ollama, OpenRouter).
    OpenaiCompatible,
    /// The built-in offline provider.
    Mock,
}

impl ProviderKind {
    /// Every built-in kind.
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::Openai,
        ProviderKind::Anthropic,
        ProviderKind::OpenaiCompatible,
        ProviderKind::Mock,
    ];

    /// The kind's name in `providers.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenaiCompatible => "openai_compatible",
            ProviderKind::Mock => "mock",
        }
    }

    /// The built-in kind named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<ProviderKind> {
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// Prices of one model in USD per million tokens.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ModelPricing {
    /// Price per million input (prompt) tokens.
    pub input_per_million: f64,
    /// Price per million output (completion) tokens.
    pub output_per_million: f64,
    /// Price per million input tokens served from the provider's prompt cache (Anthropic: 0.1x
    /// input); the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_per_million: Option<f64>,
    /// Price per million input tokens written to the provider's prompt cache (Anthropic: 1.25x
    /// input for the 5-minute cache); the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_per_million: Option<f64>,
    /// The model's context window in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    /// A client-side rate limit for this model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSettings>,
}

/// One `config/features/<feature>.json` document.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FeatureConfig {
    /// The feature's name; equals the file's stem.
    pub feature: String,
    /// What the feature does, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The team that owns the feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The version everyone gets when nothing more specific applies; rollback edits this line.
    pub active_version: String,
    /// The primary model, used unless a version, rule or variant names another.
    pub model: ModelSpec,
    /// Models tried in order when the primary fails.
    #[serde(default)]
    pub fallbacks: Vec<ModelSpec>,
    /// Prompt versions by semantic version.
    pub versions: BTreeMap<String, VersionSpec>,
    /// A/B experiments between versions (and optionally models).
    #[serde(default)]
    pub experiments: Vec<ExperimentSpec>,
    /// Targeting rules, first match wins.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
    /// A percentage rollout of a new version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSpec>,
    /// The feature's budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetSettings>,
    /// What the feature's telemetry records.
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// The response cache for every version without its own `cache`; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSettings>,
    /// Limits on the conversation history a caller may pass (`Context::with_messages`).
    #[serde(default)]
    pub history: super::settings::HistorySettings,
}

/// A model and the parameters sent with it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ModelSpec {
    /// A provider named in `providers.json`.
    pub provider: String,
    /// A model listed under that provider.
    pub name: String,
    /// Sampling parameters.
    #[serde(default)]
    pub parameters: ModelParameters,
}

/// Sampling parameters sent with a request.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ModelParameters {
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Upper bound on generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Nucleus sampling mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
}

/// Whether a version may still change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// Being written: files may change, no hashes are checked, only a pin serves it.
    Draft,
    /// Immutable: its files must match the recorded hashes.
    Released,
}

/// One prompt version: its messages, declared variables and file hashes.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct VersionSpec {
    /// Draft or released.
    pub status: VersionStatus,
    /// What changed in this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When it was released (RFC 3339 date or date-time), set by `prompt-config release`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released_at: Option<String>,
    /// The messages, in order, each rendered from a template file.
    pub messages: Vec<MessageSpec>,
    /// A JSON Schema (type object) declaring the template variables.
    pub variables: Value,
    /// A model chain for this version, overriding the feature's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// Fallbacks for this version's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallbacks: Option<Vec<ModelSpec>>,
    /// SHA-256 (lower-case hex) of each template file and of the output schema file, by file
    /// name, and of each declaration (`output`, `tools`, `tool_choice`: its canonical JSON, see
    /// [`declaration_hashes`](crate::config::declaration_hashes)) under that key; required when
    /// released, written by `prompt-config release`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sha256: BTreeMap<String, String>,
    /// The response cache of this version, replacing the feature's `cache` as a whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheSettings>,
    /// Structured output: the JSON Schema every answer must match. Covered by the version's
    /// `sha256` like the templates (key `output`; a schema file under its own name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSpec>,
    /// Tools the model may call, names unique. Covered by the version's `sha256` like the
    /// templates (key `tools`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    /// Whether the model must call a tool: `auto` (default), `required`, `none`, or
    /// `{"tool": "<name>"}` naming a declared tool. Covered by the version's `sha256` (key
    /// `tool_choice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<crate::output::ToolChoice>,
}

/// A version's structured output declaration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// The schema's name, sent to the provider (OpenAI `json_schema.name`): letters, digits,
    /// `_` and `-`, at most 64 characters.
    pub name: String,
    /// The JSON Schema inline (an object), or the name of a JSON file beside the version's
    /// templates (`prompts/<feature>/<version>/<file>`).
    pub schema: Value,
    /// Retry an invalid answer once on the same model with the validation errors as a repair
    /// instruction (default true).
    #[serde(default = "default_true")]
    pub repair: bool,
}

fn default_true() -> bool {
    true
}

/// One tool a version declares.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// The tool's name: letters, digits, `_` and `-`, at most 64 characters.
    pub name: String,
    /// What the tool does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema (type object) of the tool's arguments.
    pub parameters: Value,
}

/// One message of a prompt version.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct MessageSpec {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The template file, relative to `prompts/<feature>/<version>/`.
    pub template: String,
}

/// Whether an experiment assigns subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    /// Assigns subjects.
    Running,
    /// Assigns nobody (kept for analysis and for resuming with the same buckets).
    Paused,
    /// Finished; assigns nobody.
    Completed,
}

/// An A/B experiment between prompt versions.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ExperimentSpec {
    /// The experiment's key, reported in resolutions and telemetry.
    pub key: String,
    /// Running, paused or completed.
    pub status: ExperimentStatus,
    /// What the experiment tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The hash seed; defaults to the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// GrowthBook hash version (1 or 2); defaults to 2.
    #[serde(default = "default_hash_version")]
    pub hash_version: u32,
    /// The attribute whose value is hashed; defaults to the subject id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_attribute: Option<String>,
    /// The share of eligible subjects included, 0 to 1.
    #[serde(default = "default_coverage")]
    pub coverage: f64,
    /// A namespace range, so experiments in one namespace are mutually exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Namespace>,
    /// A GrowthBook condition on the attributes that subjects must meet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    /// The arms, the first being the control.
    pub variants: Vec<VariantSpec>,
}

/// One arm of an experiment.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct VariantSpec {
    /// The variant's key (`control`, `treatment`, ...).
    pub key: String,
    /// The prompt version this arm serves.
    pub version: String,
    /// The share of included subjects, the weights summing to 1.
    pub weight: f64,
    /// A model chain for this arm, to test models as well as prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// Fallbacks for this arm's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallbacks: Option<Vec<ModelSpec>>,
}

/// A targeting rule: subjects matching the condition get its version and/or model.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RuleSpec {
    /// The rule's name, reported as the resolution's rule.
    pub name: String,
    /// A GrowthBook condition on the attributes.
    pub condition: Value,
    /// The version to serve; defaults to the active version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A model chain for matching subjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// Fallbacks for the rule's model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallbacks: Option<Vec<ModelSpec>>,
}

/// A gradual rollout of one version to a percentage of subjects.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RolloutSpec {
    /// The version being rolled out.
    pub version: String,
    /// The share of subjects that get it, 0 to 100.
    pub percentage: f64,
    /// The hash seed; defaults to `<feature>:rollout`. Keep it when raising the percentage so
    /// nobody who already has the version loses it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    /// The attribute whose value is hashed; defaults to the subject id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_attribute: Option<String>,
}

fn default_hash_version() -> u32 {
    2
}

fn default_coverage() -> f64 {
    1.0
}
