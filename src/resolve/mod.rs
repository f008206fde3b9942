//! Deterministic resolution of a feature for one subject: which prompt version, why, which model
//! chain, and the rendered messages. Precedence: a pinned version, then a running experiment,
//! then the first matching targeting rule, then the rollout, then `active_version`. Assignment
//! uses GrowthBook's hashing, so it is sticky per subject and survives reloads while seeds and
//! weights stay the same.

mod compile;
mod context;
mod history;
mod trace;

use serde::Serialize;
use serde_json::Value;

pub(crate) use compile::{CompiledFeature, compile_features};
pub use context::{Context, InvalidSubjectId, canonical_subject_id};
pub use history::{InvalidMessage, message_bytes};
pub use trace::{InvalidTraceparent, SpanId, SpanRole, TraceContext, TraceId, span_id};

use crate::config::ModelSpec;
use crate::prompt::{Message, PromptError, prompt_hash};
use crate::targeting;

/// Why a version was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Source {
    /// The caller pinned the version.
    Pinned,
    /// A running experiment assigned the subject to a variant.
    Experiment,
    /// A targeting rule matched the subject's attributes.
    Rule,
    /// The subject falls inside the rollout percentage.
    Rollout,
    /// Nothing more specific applied.
    Active,
}

impl Source {
    /// The source as it appears in JSON and telemetry.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Pinned => "pinned",
            Source::Experiment => "experiment",
            Source::Rule => "rule",
            Source::Rollout => "rollout",
            Source::Active => "active",
        }
    }
}

/// Everything a caller needs to make the LLM call for one subject.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolution {
    /// The feature resolved.
    pub feature: String,
    /// The prompt version chosen.
    pub version: String,
    /// Why that version was chosen.
    pub source: Source,
    /// The experiment the subject is enrolled in, if any.
    pub experiment: Option<String>,
    /// The experiment variant, if any.
    pub variant: Option<String>,
    /// The targeting rule that matched, if any.
    pub rule: Option<String>,
    /// The subject's hash value in [0, 1) for the experiment or rollout that decided.
    pub bucket: Option<f64>,
    /// The primary model with its parameters.
    pub model: ModelSpec,
    /// Models to try in order when the primary fails.
    pub fallbacks: Vec<ModelSpec>,
    /// The chat messages sent: the rendered template messages, then the context's
    /// conversation history (`Context::with_messages`).
    pub messages: Vec<Message>,
    /// The version's output schema: answers are validated against it and parsed into
    /// `Completion::data`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<crate::output::OutputSchema>,
    /// The version's tools, sent with every attempt.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<crate::output::ToolDefinition>,
    /// Whether the model must call a tool (`auto` unless the version says otherwise).
    pub tool_choice: crate::output::ToolChoice,
    /// SHA-256 of the rendered messages.
    pub prompt_hash: String,
    /// A short hash of every config and prompt file the engine loaded.
    pub config_revision: String,
    /// The id of this request, for `complete`, feedback and telemetry.
    pub request_id: String,
}

/// Errors of resolving a feature.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No feature config has this name.
    #[error("unknown feature \"{feature}\" (configured: {})", .known.join(", "))]
    UnknownFeature {
        /// The name asked for.
        feature: String,
        /// The features that exist.
        known: Vec<String>,
    },
    /// A pinned version does not exist.
    #[error("feature \"{feature}\" has no version \"{version}\" (known: {})", .known.join(", "))]
    UnknownVersion {
        /// The feature.
        feature: String,
        /// The version asked for.
        version: String,
        /// The versions that exist.
        known: Vec<String>,
    },
    /// A model override ([`Context::with_model`]) names a model `providers.json` does not list.
    #[error("unknown model \"{model}\" (providers.json lists: {})", .known.join(", "))]
    UnknownModel {
        /// The model asked for, `provider/name`.
        model: String,
        /// The models that exist, `provider/name`.
        known: Vec<String>,
    },
    /// The context's conversation history breaks a rule (see `Context::with_messages`): a
    /// `system` turn, a tool result answering no call, a call left unanswered, too many
    /// messages or bytes for the feature's `history` limits, ...
    #[error("history message {} ({}): {}", .problem.index, field_name(&.problem.field), .problem.message)]
    InvalidMessages {
        /// The feature.
        feature: String,
        /// The message at fault and why.
        problem: InvalidMessage,
    },
}

/// A field pointer as the error message names it: `/tool_calls/0/id`, or `the message` for
/// the message as a whole.
fn field_name(field: &str) -> &str {
    if field.is_empty() {
        "the message"
    } else {
        field
    }
}

impl ResolveError {
    /// `unknown_feature`, `unknown_version`, `unknown_model` or `invalid_messages`.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            ResolveError::UnknownFeature { .. } => crate::ErrorKind::UnknownFeature,
            ResolveError::UnknownVersion { .. } => crate::ErrorKind::UnknownVersion,
            ResolveError::InvalidMessages { .. } => crate::ErrorKind::InvalidMessages,
            ResolveError::UnknownModel { .. } => crate::ErrorKind::UnknownModel,
        }
    }

    /// The names involved, as JSON.
    pub fn details(&self) -> Value {
        match self {
            ResolveError::UnknownFeature { feature, known } => {
                serde_json::json!({ "feature": feature, "known": known })
            }
            ResolveError::UnknownVersion {
                feature,
                version,
                known,
            } => {
                serde_json::json!({ "feature": feature, "version": version, "known": known })
            }
            ResolveError::UnknownModel { model, known } => {
                serde_json::json!({ "model": model, "known": known })
            }
            ResolveError::InvalidMessages { feature, problem } => serde_json::json!({
                "feature": feature,
                "index": problem.index,
                "field": problem.field,
                "message": problem.message,
            }),
        }
    }
}

/// Why [`CompiledFeature::resolve`] failed: choosing the version, or rendering it. The crate's
/// `Error` wraps either (`From`), so this layer need not name that type, which sits above it.
#[derive(Debug)]
pub(crate) enum ResolveFailure {
    /// An unknown pinned version.
    Resolve(ResolveError),
    /// The variables did not fit the version, or rendering failed.
    Prompt(PromptError),
}

impl From<ResolveError> for ResolveFailure {
    fn from(error: ResolveError) -> Self {
        ResolveFailure::Resolve(error)
    }
}

impl From<PromptError> for ResolveFailure {
    fn from(error: PromptError) -> Self {
        ResolveFailure::Prompt(error)
    }
}

/// Which route a subject takes, before rendering.
struct Decision<'a> {
    route: &'a compile::Route,
    source: Source,
    experiment: Option<&'a str>,
    variant: Option<&'a str>,
    rule: Option<&'a str>,
    bucket: Option<f64>,
}

impl CompiledFeature {
    /// Resolves this feature for `context` and renders its messages.
    pub(crate) fn resolve(
        &self,
        context: &Context,
        config_revision: &str,
    ) -> Result<Resolution, ResolveFailure> {
        let history = context.messages();
        history::check(history, &self.history).map_err(|problem| {
            ResolveError::InvalidMessages {
                feature: self.name.clone(),
                problem,
            }
        })?;
        let decision = self.decide(context)?;
        let mut messages = decision.route.prompt.render(context.variables_shared())?;
        messages.extend_from_slice(history);
        // Covers the history too, so response cache keys differ per conversation.
        let prompt_hash = prompt_hash(&messages);
        Ok(self.routed(&decision, context, messages, prompt_hash, config_revision))
    }

    /// The route `context` takes, without checking its history or rendering: what telemetry
    /// files a call under when it failed before any model call (its variables did not fit, a
    /// template failed, the history or the model override was refused), with no messages and
    /// an empty prompt hash. `None` when no version can be decided (an unknown pinned one).
    pub(crate) fn routed_without_rendering(
        &self,
        context: &Context,
        config_revision: &str,
    ) -> Option<Resolution> {
        let decision = self.decide(context).ok()?;
        Some(self.routed(
            &decision,
            context,
            Vec::new(),
            String::new(),
            config_revision,
        ))
    }

    fn routed(
        &self,
        decision: &Decision<'_>,
        context: &Context,
        messages: Vec<Message>,
        prompt_hash: String,
        config_revision: &str,
    ) -> Resolution {
        let chain = &decision.route.chain;
        let (model, fallbacks) = match context.model_override() {
            Some((provider, name)) => (
                ModelSpec {
                    provider: provider.to_string(),
                    name: name.to_string(),
                    parameters: chain.model.parameters.clone(),
                },
                Vec::new(),
            ),
            None => (chain.model.clone(), chain.fallbacks.clone()),
        };
        Resolution {
            feature: self.name.clone(),
            version: decision.route.version.clone(),
            source: decision.source,
            experiment: decision.experiment.map(str::to_string),
            variant: decision.variant.map(str::to_string),
            rule: decision.rule.map(str::to_string),
            bucket: decision.bucket,
            model,
            fallbacks,
            output: decision.route.prompt.output.clone(),
            tools: decision.route.prompt.tools.clone(),
            tool_choice: decision.route.prompt.tool_choice.clone(),
            messages,
            prompt_hash,
            config_revision: config_revision.to_string(),
            request_id: String::new(),
        }
    }

    fn decide(&self, context: &Context) -> Result<Decision<'_>, ResolveError> {
        let plain = |route, source| Decision {
            route,
            source,
            experiment: None,
            variant: None,
            rule: None,
            bucket: None,
        };
        if let Some(version) = context.version() {
            return match self.pinnable.get(version) {
                Some(route) => Ok(plain(route, Source::Pinned)),
                None => Err(ResolveError::UnknownVersion {
                    feature: self.name.clone(),
                    version: version.to_string(),
                    known: self.version_names(),
                }),
            };
        }
        let attributes = context.attributes();
        for experiment in &self.experiments {
            if let Some((index, bucket)) = experiment.assign(context) {
                let variant = &experiment.variants[index];
                return Ok(Decision {
                    route: &variant.route,
                    source: Source::Experiment,
                    experiment: Some(&experiment.key),
                    variant: Some(&variant.key),
                    rule: None,
                    bucket: Some(bucket),
                });
            }
        }
        if let Some(rule) = self
            .rules
            .iter()
            .find(|rule| rule.condition.matches(attributes))
        {
            return Ok(Decision {
                rule: Some(&rule.name),
                ..plain(&rule.route, Source::Rule)
            });
        }
        if let Some(rollout) = &self.rollout
            && let Some(value) = hash_value(context, rollout.hash_attribute.as_deref())
            && let Some(bucket) = targeting::hash(&rollout.seed, &value, 2)
            && bucket < rollout.fraction
        {
            return Ok(Decision {
                bucket: Some(bucket),
                ..plain(&rollout.route, Source::Rollout)
            });
        }
        Ok(plain(&self.active, Source::Active))
    }

    fn version_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.pinnable.keys().cloned().collect();
        names.sort();
        names
    }
}

/// The value hashed for assignment: the subject id, or an attribute when one is configured.
/// Subjects without a usable value (absent, empty, or not a string or integer) are not
/// enrolled, as in GrowthBook.
fn hash_value<'a>(
    context: &'a Context,
    attribute: Option<&str>,
) -> Option<std::borrow::Cow<'a, str>> {
    use std::borrow::Cow;
    let value = match attribute {
        None => Cow::Borrowed(context.subject_id()),
        Some(name) => match context.attributes().get(name)? {
            Value::String(text) => Cow::Borrowed(text.as_str()),
            // The subject id's rule: integers in decimal; floats, booleans, ... are no id.
            other => Cow::Owned(canonical_subject_id(other).ok()?),
        },
    };
    (!value.is_empty()).then_some(value)
}
