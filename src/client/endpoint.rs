//! The one HTTP provider, [`HttpProvider`], and the send / classify / parse-error path every
//! HTTP API takes: the API key check (`missing_api_key` without a network call) and its
//! redaction from errors, the headers, the attempt timeout, the POST, an error status turned into
//! a classified [`AttemptError`] with the provider's Retry-After read against the engine's clock.
//! An API only says where a spec points, how to build its request body and how to read its
//! answers, through a [`WireFormat`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use super::backoff::parse_retry_after;
use super::clock::{Clock, SystemClock};
use super::event_stream::{HttpStream, StreamDecoder};
use super::http::{self, HttpResponse, HttpTransport, StreamReply};
use super::secret::{ApiKey, key_variable, with_api_key};
use super::stream::{ProviderStream, Replay, StreamTimeouts};
use super::types::{AttemptError, FailureKind, Provider, ProviderRequest, ProviderResponse};
use crate::config::{ModelParameters, ProviderSpec};
#[cfg(test)]
use crate::prompt::Message;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub(crate) mod tool_ids;

/// What differs between HTTP providers: where a spec points, the request body, and how
/// answers are read. Implemented by zero-sized markers ([`ChatCompletions`](super::ChatCompletions),
/// [`Messages`](super::Messages)).
pub(crate) trait WireFormat: Send + Sync + 'static {
    /// Where the API is and where its key comes from when the config does not say.
    const DEFAULTS: ApiDefaults;

    /// The base URL `spec` calls: the configured one, else the environment's, else the default.
    fn base_url(spec: &ProviderSpec) -> String {
        let from_environment = std::env::var(Self::DEFAULTS.base_url_variable).ok();
        http::choose_base_url(
            spec.base_url.as_deref(),
            from_environment.as_deref(),
            Self::DEFAULTS.base_url,
        )
    }
    /// The environment variable the key is read from (`None`: no key is sent): the configured
    /// one, else the API's default.
    fn key_variable(spec: &ProviderSpec) -> Option<String> {
        Some(key_variable(
            spec.api_key_env.as_deref(),
            Self::DEFAULTS.key_variable,
        ))
    }
    /// The URL, headers and key use of `spec` at `base_url`.
    fn route(spec: &ProviderSpec, base_url: &str, api_key: Option<ApiKey>) -> Route;
    /// The JSON body of a request.
    const ENCODE: fn(&ProviderRequest<'_>) -> serde_json::Result<Vec<u8>>;
    /// The JSON body of a streamed request (`"stream": true` and the API's stream options).
    const ENCODE_STREAM: fn(&ProviderRequest<'_>) -> serde_json::Result<Vec<u8>>;
    /// Reads the API's stream events into deltas and the final response.
    type Decoder: StreamDecoder;
    /// Reads a 2xx body of `request`'s answer: the completion, or a classified error (an error
    /// object inside a 200). The request says how the answer was asked for (Anthropic's forced
    /// output tool is read back as text).
    const PARSE: fn(&[u8], &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError>;
    /// Reads the provider's error object (the `error` member of the body, when it is JSON) of
    /// an error status (`in_body` false) or of a 2xx body (true); the whole body is there for
    /// an excerpt when the object says nothing.
    const READ_ERROR: fn(Option<&Value>, &[u8], bool) -> ProviderError;
}

/// A provider's error object as its API reads it.
pub(crate) struct ProviderError {
    /// The provider's error type (`rate_limit_error`, `invalid_request_error`, ...).
    pub error_type: Option<String>,
    /// Its message, or an excerpt of the body when it has none.
    pub message: String,
    /// Whether it says the prompt overflows the model's context window.
    pub context_length: bool,
}

impl ProviderError {
    /// An error status: an `http` failure with the provider's message and type; a 400 that
    /// says the prompt is too long is `context_length`.
    fn into_status(self, status: u16) -> AttemptError {
        let mut attempt_error = AttemptError::http(status, http::truncate_message(&self.message));
        attempt_error.provider_error_type = self.error_type;
        if status == 400 && self.context_length {
            attempt_error.kind = FailureKind::ContextLength;
        }
        attempt_error
    }

    /// An error object inside a 2xx body (as gateways send): `error_in_body`, kept with its
    /// type and message, which decide the failure policy.
    pub fn into_error_in_body(self) -> AttemptError {
        let described = match &self.error_type {
            Some(error_type) => format!("error in a 2xx response ({error_type}): {}", self.message),
            None => format!("error in a 2xx response: {}", self.message),
        };
        let mut attempt_error =
            AttemptError::new(FailureKind::ErrorInBody, http::truncate_message(&described));
        if self.context_length {
            attempt_error.kind = FailureKind::ContextLength;
        }
        attempt_error.provider_error_type = self.error_type;
        attempt_error
    }
}

/// `body` parsed as `T`, or a `malformed` failure saying it is not `what`.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, AttemptError> {
    serde_json::from_slice(body).map_err(|error| {
        AttemptError::new(
            FailureKind::Malformed,
            format!("response is not {what}: {error}"),
        )
    })
}

/// Where an API is and where its key comes from when the config does not say.
pub(crate) struct ApiDefaults {
    /// The public endpoint.
    pub base_url: &'static str,
    /// The environment variable that overrides the endpoint when the config does not.
    pub base_url_variable: &'static str,
    /// The environment variable holding the key.
    pub key_variable: &'static str,
}

/// OpenAI's Chat Completions API: the wire format of the `openai` kind and of the
/// `openai_compatible` kind for other servers speaking it (Azure OpenAI, vLLM, Ollama,
/// OpenRouter), which differ only in base URL, key header, query and extra headers.
#[derive(Debug)]
pub struct ChatCompletions;

/// Anthropic's Messages API, the wire format of the `anthropic` kind.
#[derive(Debug)]
pub struct Messages;

/// A provider speaking OpenAI's Chat Completions API.
pub type OpenAiProvider = HttpProvider<ChatCompletions>;

/// A provider speaking Anthropic's Messages API.
pub type AnthropicProvider = HttpProvider<Messages>;

/// The sampling parameters both APIs take under the same names; unset ones are left out.
#[derive(serde::Serialize)]
pub(crate) struct Sampling {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
}

impl From<&ModelParameters> for Sampling {
    fn from(parameters: &ModelParameters) -> Sampling {
        Sampling {
            temperature: parameters.temperature,
            top_p: parameters.top_p,
        }
    }
}

/// How the key is sent: a header name and an optional scheme before the key (`Bearer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyHeader {
    pub name: String,
    pub scheme: Option<String>,
}

impl KeyHeader {
    fn value(&self, key: &ApiKey) -> String {
        match &self.scheme {
            Some(scheme) => format!("{scheme} {}", key.expose()),
            None => key.expose().to_string(),
        }
    }
}

/// Whether a provider sends a key, and what happens without one.
#[derive(Debug)]
pub(crate) enum KeyUse {
    /// A key is needed: without one the attempt fails with `missing_api_key` naming `variable`.
    Required {
        variable: String,
        key: Option<ApiKey>,
        header: KeyHeader,
    },
    /// A key is sent when there is one, and the call goes out without it otherwise.
    Optional {
        key: Option<ApiKey>,
        header: KeyHeader,
    },
}

/// Where and how one provider's calls go.
pub(crate) struct Route {
    /// The full URL, path and query included.
    pub url: String,
    /// Sent on every call (an API version, the headers a gateway asks for).
    pub headers: Vec<(String, String)>,
    pub key: KeyUse,
    /// The header our request id travels in, when the provider accepts one.
    pub request_id_header: Option<&'static str>,
}

/// A provider speaking an HTTP API in wire format `W` over the shared send path; see
/// [`OpenAiProvider`] and [`AnthropicProvider`].
pub struct HttpProvider<W> {
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    base_url: String,
    route: Route,
    /// The provider's per-attempt timeout; the call's remaining deadline can shorten it.
    attempt_limit: Duration,
    transport: Arc<HttpTransport>,
    /// Time for Retry-After dates.
    clock: Arc<dyn Clock>,
    wire: PhantomData<W>,
}

#[allow(private_bounds)]
impl<W: WireFormat> HttpProvider<W> {
    /// A provider for `spec`, reading its key from the environment now.
    pub fn new(spec: &ProviderSpec, transport: Arc<HttpTransport>) -> HttpProvider<W> {
        let api_key = W::key_variable(spec).and_then(|variable| ApiKey::from_env(&variable));
        HttpProvider::with_api_key(spec, transport, api_key)
    }

    /// A provider for `spec` with a key obtained elsewhere (`None` behaves as an unset variable).
    pub fn with_api_key(
        spec: &ProviderSpec,
        transport: Arc<HttpTransport>,
        api_key: Option<ApiKey>,
    ) -> HttpProvider<W> {
        let base_url = W::base_url(spec);
        HttpProvider {
            route: W::route(spec, &base_url, api_key),
            base_url,
            attempt_limit: Duration::from_millis(spec.timeout_ms),
            transport,
            clock: Arc::new(SystemClock),
            wire: PhantomData,
        }
    }

    /// Reads Retry-After dates against `clock` (the engine's) instead of the system clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> HttpProvider<W> {
        self.clock = clock;
        self
    }

    /// The endpoint: the configured one, else the API's environment variable
    /// (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`), else the public API.
    pub fn choose_base_url(configured: Option<&str>, from_environment: Option<&str>) -> String {
        http::choose_base_url(configured, from_environment, W::DEFAULTS.base_url)
    }

    /// The endpoint this provider calls, without the API's path (`/chat/completions`,
    /// `/v1/messages`).
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Runs `attempt` with the key to send (if any), after the key check; errors have the key
    /// redacted.
    fn with_key<T>(
        &self,
        attempt: impl FnOnce(Option<(&KeyHeader, &ApiKey)>) -> Result<T, AttemptError>,
    ) -> Result<T, AttemptError> {
        match &self.route.key {
            KeyUse::Required {
                variable,
                key,
                header,
            } => with_api_key(key.as_ref(), variable, |key| attempt(Some((header, key)))),
            KeyUse::Optional {
                key: Some(key),
                header,
            } => with_api_key(Some(key), "", |key| attempt(Some((header, key)))),
            KeyUse::Optional { key: None, .. } => attempt(None),
        }
    }

    /// The request's JSON body encoded by `encode`, or a `malformed` failure.
    fn encode(
        encode: fn(&ProviderRequest<'_>) -> serde_json::Result<Vec<u8>>,
        request: &ProviderRequest<'_>,
    ) -> Result<Vec<u8>, AttemptError> {
        encode(request).map_err(|error| {
            AttemptError::new(
                FailureKind::Malformed,
                format!("could not encode the request: {error}"),
            )
        })
    }

    /// Calls `send` with every header of a request (the key's, the route's, the content type,
    /// the request id, the W3C `traceparent` when the call belongs to a trace, then `extra`).
    fn send_with_headers<T>(
        &self,
        request: &ProviderRequest<'_>,
        key: Option<(&KeyHeader, &ApiKey)>,
        extra: &[(&str, &str)],
        send: impl FnOnce(&[(&str, &str)]) -> T,
    ) -> T {
        let authorization = key.map(|(header, key)| (header.name.as_str(), header.value(key)));
        let route = &self.route;
        let mut headers: Vec<(&str, &str)> =
            Vec::with_capacity(route.headers.len() + 4 + extra.len());
        if let Some((name, value)) = &authorization {
            headers.push((name, value));
        }
        headers.extend(
            route
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );
        headers.push(("content-type", "application/json"));
        if let Some(name) = route.request_id_header {
            headers.push((name, request.request_id));
        }
        if let Some(traceparent) = request.traceparent {
            headers.push(("traceparent", traceparent));
        }
        headers.extend_from_slice(extra);
        send(&headers)
    }

    /// An error status as a classified failure, with the provider's Retry-After.
    fn status_error(&self, response: &HttpResponse) -> AttemptError {
        let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
        let error_object = parsed.as_ref().and_then(|body| body.get("error"));
        let mut error =
            (W::READ_ERROR)(error_object, &response.body, false).into_status(response.status);
        error.retry_after = parse_retry_after(
            response.header("retry-after-ms"),
            response.header("retry-after"),
            self.clock.utc_now(),
        );
        error
    }

    fn exchange(
        &self,
        request: &ProviderRequest<'_>,
        key: Option<(&KeyHeader, &ApiKey)>,
    ) -> Result<ProviderResponse, AttemptError> {
        let body = Self::encode(W::ENCODE, request)?;
        let timeout = request.timeout.min(self.attempt_limit);
        let response = self.send_with_headers(request, key, &[], |headers| {
            self.transport
                .post_json(&self.route.url, headers, &body, timeout)
        })?;
        if !response.is_success() {
            return Err(self.status_error(&response));
        }
        (W::PARSE)(&response.body, request)
    }

    fn open_stream(
        &self,
        request: &ProviderRequest<'_>,
        timeouts: StreamTimeouts,
        key: Option<(&KeyHeader, &ApiKey)>,
    ) -> Result<Box<dyn ProviderStream + '_>, AttemptError> {
        let body = Self::encode(W::ENCODE_STREAM, request)?;
        // Before the first token the attempt's timeout still applies, as for `call()`.
        let first_token = timeouts
            .first_token
            .min(request.timeout.min(self.attempt_limit));
        let reply = self.send_with_headers(
            request,
            key,
            &[("accept", "text/event-stream")],
            |headers| {
                self.transport
                    .post_stream(&self.route.url, headers, &body, first_token)
            },
        )?;
        match reply {
            StreamReply::Events(body) => Ok(Box::new(HttpStream::new(
                body,
                W::Decoder::for_request(request),
                first_token,
                timeouts,
                key.map(|(_, key)| key.clone()),
            ))),
            StreamReply::Whole(response) if !response.is_success() => {
                Err(self.status_error(&response))
            }
            // A 2xx JSON answer to a stream request: some gateways ignore `stream`. It is a
            // whole answer, read as `call()` reads it and replayed as one delta.
            StreamReply::Whole(response) => {
                Ok(Box::new(Replay::new((W::PARSE)(&response.body, request)?)))
            }
        }
    }
}

impl<W: WireFormat> Provider for HttpProvider<W> {
    fn call(&self, request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        self.with_key(|key| self.exchange(request, key))
    }

    /// Streams over SSE (`text/event-stream`); see [`StreamTimeouts`] for the silences allowed.
    /// Error statuses and refusals before the stream starts are classified as for `call()`.
    fn stream(
        &self,
        request: &ProviderRequest<'_>,
        timeouts: StreamTimeouts,
    ) -> Result<Box<dyn ProviderStream + '_>, AttemptError> {
        self.with_key(|key| self.open_stream(request, timeouts, key))
    }

    fn is_available(&self) -> bool {
        !matches!(&self.route.key, KeyUse::Required { key: None, .. })
    }
}

impl<W> fmt::Debug for HttpProvider<W> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may carry what a gateway asks for: only their names are shown.
        let header_names: Vec<&str> = self
            .route
            .headers
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        formatter
            .debug_struct("HttpProvider")
            .field("url", &self.route.url)
            .field("headers", &header_names)
            .field("key", &self.route.key)
            .field("attempt_limit", &self.attempt_limit)
            .finish_non_exhaustive()
    }
}

/// `url` with `query` appended, names and values percent-encoded (RFC 3986 unreserved
/// characters kept), after any query the URL already has.
pub(crate) fn with_query<'a>(
    url: String,
    query: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> String {
    let mut url = url;
    for (name, value) in query {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&percent_encode(name));
        url.push('=');
        url.push_str(&percent_encode(value));
    }
    url
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// A request for `model` with `messages` and `parameters`, as the wire formats' unit tests build.
#[cfg(test)]
pub(crate) fn test_request<'a>(
    model: &'a str,
    messages: &'a [Message],
    parameters: &'a ModelParameters,
) -> ProviderRequest<'a> {
    ProviderRequest {
        model,
        messages,
        parameters,
        request_id: "request-1",
        timeout: Duration::from_secs(1),
        output: None,
        tools: &[],
        tool_choice: &crate::output::ToolChoice::Auto,
        traceparent: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Base URL precedence, one rule for every HTTP API: configured, environment, default.
    #[test]
    fn configured_base_url_wins_over_the_environment() {
        let openai =
            OpenAiProvider::choose_base_url(Some("http://gateway/v1/"), Some("http://env/v1"));
        assert_eq!(openai, "http://gateway/v1");
        let anthropic =
            AnthropicProvider::choose_base_url(Some("http://gateway/"), Some("http://env"));
        assert_eq!(anthropic, "http://gateway");
    }

    #[test]
    fn environment_base_url_wins_over_the_default() {
        let openai = OpenAiProvider::choose_base_url(None, Some("http://env/v1/"));
        assert_eq!(openai, "http://env/v1");
        let anthropic = AnthropicProvider::choose_base_url(None, Some("http://env/"));
        assert_eq!(anthropic, "http://env");
    }

    #[test]
    fn empty_base_urls_fall_through_to_the_default() {
        let chosen = OpenAiProvider::choose_base_url(Some(""), Some(" "));
        assert_eq!(chosen, ChatCompletions::DEFAULTS.base_url);
    }

    #[test]
    fn default_base_url_is_the_public_api() {
        assert_eq!(
            AnthropicProvider::choose_base_url(None, None),
            Messages::DEFAULTS.base_url
        );
    }

    #[test]
    fn query_parameters_are_appended_and_encoded() {
        let query = [("api-version".to_string(), "2024-10-21 preview".to_string())];
        let url = with_query(
            "http://h/chat/completions".into(),
            query.iter().map(|(k, v)| (k, v)),
        );
        assert_eq!(
            url,
            "http://h/chat/completions?api-version=2024-10-21%20preview"
        );
    }

    /// Undoes `percent_encode`, for the property below.
    fn percent_decode(text: &str) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut decoded = Vec::new();
        let mut index = 0;
        while index < bytes.len() {
            if bytes[index] == b'%' {
                let hex = std::str::from_utf8(&bytes[index + 1..index + 3]).unwrap();
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
                index += 3;
            } else {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
        decoded
    }

    proptest::proptest! {
        #[test]
        fn any_query_value_is_encoded_to_safe_characters_and_decodes_back(value in ".*") {
            let encoded = percent_encode(&value);
            proptest::prop_assert!(encoded.bytes().all(|byte| byte.is_ascii_alphanumeric()
                || b"-_.~%".contains(&byte)));
            proptest::prop_assert_eq!(percent_decode(&encoded), value.into_bytes());
        }
    }

    #[test]
    fn a_url_with_a_query_gets_more_parameters_after_an_ampersand() {
        let query = [("b".to_string(), "2".to_string())];
        let url = with_query("http://h/x?a=1".into(), query.iter().map(|(k, v)| (k, v)));
        assert_eq!(url, "http://h/x?a=1&b=2");
    }

    #[test]
    fn a_key_header_without_scheme_carries_the_bare_key() {
        let header = KeyHeader {
            name: "api-key".into(),
            scheme: None,
        };
        assert_eq!(header.value(&ApiKey::new("k")), "k");
    }
}
