//! What the client is asked to call: the part of a resolution `complete()` needs, so the client
//! does not depend on how features are resolved.

use std::time::Duration;

use crate::config::ModelSpec;
use crate::output::{OutputSchema, ToolChoice, ToolDefinition};
use crate::prompt::Message;
use crate::resolve::TraceContext;

/// One `complete()` call as the engine hands it to the client, borrowed from the resolution it
/// was built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallRequest<'a> {
    /// The feature, for budgets and attempt telemetry.
    pub feature: &'a str,
    /// The prompt version, for attempt telemetry.
    pub version: &'a str,
    /// The rendered messages sent to every model of the chain.
    pub messages: &'a [Message],
    /// The primary model.
    pub model: &'a ModelSpec,
    /// The fallbacks, in order, after the primary.
    pub fallbacks: &'a [ModelSpec],
    /// The request id the engine made for this call (never empty).
    pub request_id: &'a str,
    /// How long the whole call may take, from when the client starts it.
    pub deadline: Duration,
    /// The version's output schema: every answer is validated against it.
    pub output: Option<&'a OutputSchema>,
    /// The version's tools.
    pub tools: &'a [ToolDefinition],
    /// Whether the model must call a tool.
    pub tool_choice: &'a ToolChoice,
    /// The trace the call belongs to (the caller's, or one rooted at the request when spans
    /// are exported): each attempt reports it, and sends the provider a `traceparent` naming
    /// the attempt's span.
    pub trace: Option<&'a TraceContext>,
}
