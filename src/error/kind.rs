//! [`ErrorKind`], the one list of failure kinds every layer, binding and README table shares.
//! It depends on nothing in the crate, so the lowest layer can name its kinds while
//! [`Error`](crate::Error), which wraps every layer's error, sits above them all.

/// Declares [`ErrorKind`]: one line per kind (variant, code, name, retryable, doc), so adding a
/// kind is one line here; the tests in `src/error/tests.rs` then fail until the C header, the
/// gem's `errors.rb` and README's *Errors* table carry it too.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $variant:ident = $code:literal, $name:literal, retryable: $retryable:literal;)+) => {
        /// What kind of failure an [`Error`](crate::Error) is: the typed source of truth for the C ABI's
        /// `pc_status` values, the gem's exception classes, the CLI's `error [kind]` and README's
        /// *Errors* table.
        ///
        /// Each kind has a stable snake_case [`name`](ErrorKind::as_str) and a fixed numeric
        /// [`code`](ErrorKind::code) that never changes once shipped and is never reused (see
        /// [`RETIRED_CODES`]). Codes come in gapped ranges by area, so a new kind joins its
        /// area without moving the others:
        ///
        /// | range | area |
        /// | --- | --- |
        /// | 100-199 | configuration and prompt files |
        /// | 200-299 | resolving a feature and rendering its prompt |
        /// | 300-399 | calling providers |
        /// | 400-499 | budgets and limits |
        /// | 500-599 | shared state (Redis) |
        /// | 600-699 | files and telemetry |
        /// | 900-999 | the bindings' own failures (a bad argument, a caught panic) |
        ///
        /// The enum is `#[non_exhaustive]`: match with a `_` arm, since later versions add kinds.
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorKind {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorKind {
            /// Every kind, in code order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant,)+];

            /// The stable snake_case name (`"missing_variable"`): the `kind` of error JSON, the
            /// CLI's `error [kind]` and the gem's `Error#kind`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorKind::$variant => $name,)+
                }
            }

            /// The fixed numeric code: the C ABI's `pc_status` value for this kind. Never
            /// changes once shipped and is never given to another kind.
            pub const fn code(self) -> u16 {
                match self {
                    $(ErrorKind::$variant => $code,)+
                }
            }

            /// Whether the same call may succeed if made again later, unchanged: the failure
            /// was on the provider's side or a matter of time (a rate limit, a deadline, an
            /// open circuit breaker, a provider error). Configuration, variables, budgets,
            /// missing keys and bad arguments need a change first.
            pub const fn is_retryable(self) -> bool {
                match self {
                    $(ErrorKind::$variant => $retryable,)+
                }
            }

            /// The name as a NUL-terminated C string (for `pc_status_kind`).
            pub(crate) const fn as_c_str(self) -> &'static std::ffi::CStr {
                match self {
                    $(ErrorKind::$variant => {
                        const NAME: &std::ffi::CStr =
                            match std::ffi::CStr::from_bytes_with_nul(concat!($name, "\0").as_bytes()) {
                                Ok(name) => name,
                                Err(_) => panic!("an error kind name contains a NUL byte"),
                            };
                        NAME
                    })+
                }
            }
        }
    };
}

error_kinds! {
    /// The configuration has problems (each `file: /pointer: message`), or an edit was refused.
    ConfigInvalid = 101, "config_invalid", retryable: false;
    /// The only problems are released prompt files that changed.
    PromptIntegrity = 102, "prompt_integrity", retryable: false;
    /// An evaluation dataset has problems: a line that is not JSON, a case that breaks the
    /// dataset schema, a duplicate case id, an assertion that cannot be compiled (each
    /// `file:line: /pointer: message`).
    InvalidDataset = 103, "invalid_dataset", retryable: false;
    /// No feature of that name.
    UnknownFeature = 201, "unknown_feature", retryable: false;
    /// A pinned version does not exist.
    UnknownVersion = 202, "unknown_version", retryable: false;
    /// Required template variables are missing (all named).
    MissingVariable = 203, "missing_variable", retryable: false;
    /// Variables do not match their declared schema (all named).
    InvalidVariable = 204, "invalid_variable", retryable: false;
    /// A template failed while rendering.
    RenderFailed = 205, "render_failed", retryable: false;
    /// The context's conversation history is not usable: a role templates own (`system`), a
    /// tool result that answers no earlier tool call, or more messages or bytes than the
    /// feature allows; details name the message index and field.
    InvalidMessages = 206, "invalid_messages", retryable: false;
    /// A model override (`eval --model`, a judge assertion's `model`) names no model that
    /// `providers.json` lists; details carry the name and the known ones.
    UnknownModel = 207, "unknown_model", retryable: false;
    /// The only provider tried failed.
    ProviderError = 301, "provider_error", retryable: true;
    /// Every attempt was rate limited (HTTP 429 or the client-side limit).
    RateLimited = 302, "rate_limited", retryable: true;
    /// The call's deadline passed, or every attempt timed out.
    Timeout = 303, "timeout", retryable: true;
    /// Every provider of the chain failed.
    AllProvidersFailed = 304, "all_providers_failed", retryable: true;
    /// Every provider of the chain has an open circuit breaker.
    CircuitOpen = 305, "circuit_open", retryable: true;
    /// No provider of the chain has its API key in the environment.
    MissingApiKey = 306, "missing_api_key", retryable: false;
    /// A stream broke after its first token (cut, stalled, an `error` event, no terminal
    /// event): never reported as success; the error carries the text received so far.
    StreamIncomplete = 307, "stream_incomplete", retryable: true;
    /// The caller cancelled the call (a cancel token, a stream callback asking to stop, a
    /// Ruby `break`, `Timeout` or `Thread#kill`); the error carries any text received so far.
    Cancelled = 308, "cancelled", retryable: false;
    /// Every model's answer (repairs included) broke the version's output schema, or a tool
    /// call's arguments broke its tool's schema; details carry the violations and the last
    /// raw text.
    InvalidOutput = 309, "invalid_output", retryable: true;
    /// The model refused to answer a structured-output or tool request (OpenAI `refusal`,
    /// Anthropic stop reason `refusal`); details carry the refusal message.
    Refusal = 310, "refusal", retryable: false;
    /// A structured answer was cut at the output token limit (finish reason `length`) before
    /// it was complete; raise `max_tokens`. Details carry the partial text.
    OutputTruncated = 311, "output_truncated", retryable: false;
    /// A `block` budget would be passed.
    BudgetExceeded = 401, "budget_exceeded", retryable: false;
    /// The shared state (Redis) could not be reached or did not answer within its timeouts.
    StateUnavailable = 501, "state_unavailable", retryable: true;
    /// A file could not be read or written (the telemetry log, an edit).
    Io = 601, "io", retryable: false;
    /// Feedback without a request id or metric, or with an unusable value.
    InvalidFeedback = 602, "invalid_feedback", retryable: false;
    /// An alert could not be delivered to a channel (`prompt-config alerts test`): the
    /// receiver refused or could not be reached after the retries, or the channel's secret
    /// environment variable is unset. Never raised into a request.
    AlertDeliveryFailed = 603, "alert_delivery_failed", retryable: true;
    /// A release that requires a passing evaluation (`release --require-eval`) was refused:
    /// a version missed its thresholds; details name the failing cases.
    EvaluationFailed = 701, "evaluation_failed", retryable: false;
    /// A binding was given a bad argument: a NULL pointer, invalid UTF-8, JSON that does not
    /// parse or has the wrong shape (engine options included), a subject id of the wrong type.
    InvalidArgument = 901, "invalid_argument", retryable: false;
    /// The library panicked (a bug) and the binding caught it: the process and the engine go on.
    Panic = 902, "panic", retryable: false;
}

/// Codes that were shipped once and are never given to a kind again, with what they meant.
///
/// Before the codes were fixed, the C ABI numbered statuses densely in list order: 1 to 16
/// were the kinds in the order of README's table, 17 `invalid_argument` and 18 `panic`. A
/// program compiled against that header must never see one of those numbers mean something
/// else, so 1 to 99 stay unused.
pub const RETIRED_CODES: &[(std::ops::RangeInclusive<u16>, &str)] = &[(
    1..=99,
    "the dense pc_status numbering of the first releases (1-16 the kinds in table order, \
     17 invalid_argument, 18 panic)",
)];

impl ErrorKind {
    /// The kind with this name, if any.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == name)
    }

    /// The kind with this code, if any.
    pub fn from_code(code: u16) -> Option<ErrorKind> {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.code() == code)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Compares with a kind's name (`error.kind() == "timeout"`), for callers that hold names.
impl PartialEq<str> for ErrorKind {
    fn eq(&self, name: &str) -> bool {
        self.as_str() == name
    }
}

/// Compares with a kind's name (`error.kind() == "timeout"`), for callers that hold names.
impl PartialEq<&str> for ErrorKind {
    fn eq(&self, name: &&str) -> bool {
        self.as_str() == *name
    }
}
