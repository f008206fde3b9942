//! The one HTTP client every provider shares: a single `ureq` agent (so keep-alive connections
//! are reused across calls and providers), one timeout bounding a whole attempt, a cap on how
//! much of a response is read, and the translation of transport failures into the
//! [`FailureKind`]s the failure policy understands, plus the error-text trimming both providers
//! apply to bodies they did not expect.

use std::fmt;
use std::io;
use std::time::Duration;

use std::net::{IpAddr, SocketAddr};

use parking_lot::RwLock;
use ureq::Agent;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use super::socket::CancellableConnector;

use super::types::{AttemptError, FailureKind};

mod streaming;

pub(crate) use streaming::{StreamBody, StreamReply, is_timeout};

/// The largest response body read; a provider answer is kilobytes, so more means a fault.
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// Sent on every request so provider dashboards and proxies can tell who is calling.
const USER_AGENT: &str = concat!("prompt_config/", env!("CARGO_PKG_VERSION"));

/// A blocking HTTP client over one shared, resettable connection pool.
pub struct HttpTransport {
    // A lock rather than a plain agent only so `reset` can swap the pool after fork(); calls
    // clone the agent (an Arc clone) and release the lock before any network work.
    agent: RwLock<Agent>,
}

/// A complete HTTP response: status, headers and the whole body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl HttpTransport {
    /// A transport with an empty connection pool.
    pub fn new() -> HttpTransport {
        HttpTransport {
            agent: RwLock::new(build_agent()),
        }
    }

    /// Forgets every pooled connection by starting a new pool; call in a child after fork().
    pub fn reset(&self) {
        // The old agent is dropped, which only closes this process's copies of the sockets.
        // `Agent::shutdown` must not be used here: shutdown(2) acts on the socket itself and
        // would cut the parent's connections too.
        *self.agent.write() = build_agent();
    }

    /// POSTs the JSON `body` to `url` and reads the whole response within `timeout`.
    ///
    /// Sends `content-type: application/json` unless `headers` name another. Error statuses
    /// are returned as responses; only transport failures are errors.
    pub fn post_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        timeout: Duration,
    ) -> Result<HttpResponse, AttemptError> {
        let agent = self.agent.read().clone();
        let mut request = agent
            .post(url)
            .config()
            .timeout_global(Some(timeout))
            .build();
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request
            .send(body)
            .map_err(|error| classify(error, Phase::BeforeBody, timeout))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_vec()
            .map_err(|error| classify(error, Phase::Body, timeout))?;
        // A cancel shuts the socket down, which may end the body early as a clean EOF: the
        // short body must not be judged (it would read as a malformed reply, a provider fault).
        if super::cancel::is_cancelled() {
            return Err(cancelled());
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

impl Default for HttpTransport {
    fn default() -> HttpTransport {
        HttpTransport::new()
    }
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HttpTransport")
            .field("user_agent", &USER_AGENT)
            .finish_non_exhaustive()
    }
}

/// The first non-empty of the configured URL and the environment's, else `default`, without a
/// trailing slash: the base URL precedence every HTTP provider follows.
pub(crate) fn choose_base_url(
    configured: Option<&str>,
    from_environment: Option<&str>,
    default: &str,
) -> String {
    let chosen = [configured, from_environment]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|url| !url.is_empty())
        .unwrap_or(default);
    chosen.trim_end_matches('/').to_string()
}

fn build_agent() -> Agent {
    let config = Agent::config_builder()
        // Providers answer errors with JSON bodies we must read, so statuses are not errors.
        .http_status_as_error(false)
        // Proxies come from the configured base_url, never silently from HTTP(S)_PROXY.
        .proxy(None)
        .user_agent(USER_AGENT)
        // One agent serves every thread; ureq's default of 3 idle connections per host would
        // make busy processes reconnect (and redo TLS) on most calls.
        .max_idle_connections(64)
        .max_idle_connections_per_host(16)
        // Redirecting a POST would resend a prompt somewhere unconfigured; surface it instead.
        .max_redirects(0)
        .max_redirects_will_error(false)
        .build();
    Agent::with_parts(
        config,
        CancellableConnector::default(),
        LiteralFirstResolver::default(),
    )
}

/// Resolves a host written as an IP address (a loopback server, a gateway or an Ollama box
/// addressed by IP) in place, and hands names to ureq's resolver.
///
/// Why: ureq resolves the URL before every request, even one that reuses a pooled connection,
/// and whenever the request has a timeout (ours always do, for the deadline) its resolver runs
/// the lookup on a new thread so the lookup can be abandoned at the timeout. For an address
/// there is nothing to look up, and that thread was most of what the per-request timeout cost
/// (measured on loopback: about +40 µs median per call in a tight loop, several times that when
/// other traffic competes for the cores). A name still goes through ureq's resolver, so a DNS
/// lookup that hangs still ends at the attempt's timeout.
#[derive(Debug, Default)]
struct LiteralFirstResolver(DefaultResolver);

impl Resolver for LiteralFirstResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match literal_address(uri) {
            Some(address) => {
                let mut addresses = self.empty();
                addresses.push(address);
                Ok(addresses)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

/// The socket address of `uri` when its host is an IPv4 or IPv6 address (with the scheme's
/// default port when none is written).
fn literal_address(uri: &Uri) -> Option<SocketAddr> {
    let host = uri.host()?;
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = uri.port_u16().or(match uri.scheme_str()? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    })?;
    Some(SocketAddr::new(ip, port))
}

/// Where in the exchange a failure happened, which decides what an I/O error means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Connecting, sending, or waiting for the status line and headers.
    BeforeBody,
    /// Reading the body after the headers arrived.
    Body,
}

/// The failure of an attempt that ended while the caller's cancel token was cancelled: never
/// a provider fault, so never retried nor counted by the breaker.
pub(crate) fn cancelled() -> AttemptError {
    AttemptError::new(FailureKind::Cancelled, "cancelled by the caller")
}

fn classify(error: ureq::Error, phase: Phase, timeout: Duration) -> AttemptError {
    // A cancelled call's socket was shut down under it: whatever error that caused, the cause
    // is the caller's cancel.
    if super::cancel::is_cancelled() {
        return cancelled();
    }
    // Messages are written here rather than taken from ureq's Display, whose text for header
    // and URI errors could quote what we sent.
    match error {
        ureq::Error::Timeout(which) => timed_out(timeout, &format!("{which} timeout")),
        ureq::Error::Io(io_error) => classify_io(&io_error, phase, timeout),
        ureq::Error::HostNotFound => AttemptError::new(FailureKind::Connect, "host not found"),
        ureq::Error::ConnectionFailed => {
            AttemptError::new(FailureKind::Connect, "could not connect")
        }
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => AttemptError::new(
            FailureKind::Connect,
            "invalid request: malformed URL or header value (check base_url and the API key)",
        ),
        ureq::Error::Tls(reason) => {
            AttemptError::new(FailureKind::Connect, format!("TLS error: {reason}"))
        }
        ureq::Error::Rustls(tls_error) => {
            AttemptError::new(FailureKind::Connect, format!("TLS error: {tls_error}"))
        }
        ureq::Error::Protocol(protocol_error) => AttemptError::new(
            FailureKind::Malformed,
            format!("invalid HTTP response: {protocol_error}"),
        ),
        ureq::Error::LargeResponseHeader(size, limit) => AttemptError::new(
            FailureKind::Malformed,
            format!("response headers too large ({size} bytes, limit {limit})"),
        ),
        ureq::Error::BodyExceedsLimit(limit) => AttemptError::new(
            FailureKind::Malformed,
            format!("response body larger than {limit} bytes"),
        ),
        other => {
            let kind = match phase {
                Phase::BeforeBody => FailureKind::Connect,
                Phase::Body => FailureKind::Malformed,
            };
            AttemptError::new(
                kind,
                format!("HTTP transport error: {}", describe_other(&other)),
            )
        }
    }
}

fn classify_io(error: &io::Error, phase: Phase, timeout: Duration) -> AttemptError {
    match error.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            timed_out(timeout, &error.to_string())
        }
        // A stream that ends or breaks after the headers leaves the body cut short.
        _ if phase == Phase::Body => AttemptError::new(
            FailureKind::Malformed,
            format!("response body cut short: {error}"),
        ),
        _ => AttemptError::new(FailureKind::Connect, format!("connection failed: {error}")),
    }
}

fn timed_out(timeout: Duration, detail: &str) -> AttemptError {
    AttemptError::new(
        FailureKind::Timeout,
        format!(
            "no complete response within {} ms ({detail})",
            timeout.as_millis()
        ),
    )
}

fn describe_other(error: &ureq::Error) -> &'static str {
    match error {
        ureq::Error::RedirectFailed | ureq::Error::TooManyRedirects => "unexpected redirect",
        ureq::Error::ConnectProxyFailed(_) | ureq::Error::InvalidProxyUrl => "proxy failure",
        ureq::Error::RequireHttpsOnly(_) => "HTTPS required",
        _ => "unexpected failure",
    }
}

/// The longest provider error message kept, in characters.
const MAX_MESSAGE_CHARS: usize = 1000;

/// The longest excerpt of a body that is not the provider's JSON, in characters.
const MAX_EXCERPT_CHARS: usize = 200;

/// `text` cut to the message length limit, marked with an ellipsis when cut.
pub(super) fn truncate_message(text: &str) -> String {
    truncate_chars(text.trim(), MAX_MESSAGE_CHARS)
}

/// A short, single-line excerpt of a body that is not the provider's JSON (an HTML page from a
/// proxy, plain text), so the error says something without carrying a whole page.
pub(super) fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return "empty response body".to_string();
    }
    truncate_chars(&collapsed, MAX_EXCERPT_CHARS)
}

fn truncate_chars(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_with(headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse {
            status: 200,
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            body: Vec::new(),
        }
    }

    fn address_of(url: &str) -> Option<SocketAddr> {
        literal_address(&url.parse::<Uri>().unwrap())
    }

    #[test]
    fn an_ip_host_is_its_own_address_with_the_scheme_default_port() {
        assert_eq!(
            address_of("http://127.0.0.1:8080/v1"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            address_of("https://[::1]/v1"),
            Some("[::1]:443".parse().unwrap())
        );
        assert_eq!(
            address_of("http://10.0.0.7/"),
            Some("10.0.0.7:80".parse().unwrap())
        );
    }

    #[test]
    fn a_host_name_is_left_to_the_resolver() {
        assert_eq!(address_of("https://api.openai.com/v1"), None);
        assert_eq!(address_of("http://localhost:11434/v1"), None);
    }

    #[test]
    fn header_lookup_ignores_case() {
        let response = response_with(&[("retry-after", "3")]);
        assert_eq!(response.header("Retry-After"), Some("3"));
        assert_eq!(response.header("x-missing"), None);
    }

    #[test]
    fn success_is_exactly_the_2xx_range() {
        let with_status = |status| HttpResponse {
            status,
            ..response_with(&[])
        };
        assert!(with_status(200).is_success() && with_status(299).is_success());
        assert!(!with_status(199).is_success() && !with_status(307).is_success());
    }

    #[test]
    fn body_excerpt_is_one_short_line() {
        let page = format!(
            "<html>\n  <title>502 Bad Gateway</title>\n{}</html>",
            "x".repeat(500)
        );
        let excerpt = body_excerpt(page.as_bytes());
        assert!(excerpt.starts_with("<html> <title>502 Bad Gateway</title>"));
        assert_eq!(excerpt.chars().count(), MAX_EXCERPT_CHARS + 1);
    }

    #[test]
    fn body_excerpt_of_nothing_says_so() {
        assert_eq!(body_excerpt(b"  \n"), "empty response body");
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let text = "é".repeat(MAX_MESSAGE_CHARS + 5);
        let cut = truncate_message(&text);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
