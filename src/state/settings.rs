//! The state backend option: `memory` (the default) or `redis`, from engine options JSON, the
//! CLI's `--redis URL` or `PROMPT_CONFIG_REDIS_URL`.

use std::time::Duration;

use serde_json::Value;

use super::StateError;

/// Where the fleet state lives. `#[non_exhaustive]`: later versions may add backends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateBackend {
    /// Per-process state in memory: nothing to run, each process counts on its own (today's
    /// behaviour). The default.
    #[default]
    Memory,
    /// A Redis server or Redis Cluster shared by every process and host.
    Redis(RedisSettings),
}

impl StateBackend {
    /// `"memory"` or `"redis"`.
    pub fn name(&self) -> &'static str {
        match self {
            StateBackend::Memory => "memory",
            StateBackend::Redis(_) => "redis",
        }
    }

    /// The backend described by the `state` key of engine options JSON: `"memory"`,
    /// `"redis"` (needs a URL: use the object form), or
    /// `{"backend": "redis", "url": ..., "cluster", "key_prefix", "connect_timeout_ms",
    /// "command_timeout_ms", "pool_size"}` (every key but `backend` and `url` optional).
    /// Errors name the JSON pointer at fault (`/state/url`).
    pub fn from_json(value: &Value) -> Result<StateBackend, StateError> {
        let invalid = |pointer: &str, message: String| StateError::InvalidSettings {
            setting: format!("/state{pointer}"),
            message,
        };
        let object = match value {
            Value::String(name) if name == "memory" => return Ok(StateBackend::Memory),
            Value::String(name) if name == "redis" => {
                return Err(invalid(
                    "",
                    "the redis backend needs a URL: {\"backend\": \"redis\", \"url\": \
                     \"redis://host:6379/\"}"
                        .into(),
                ));
            }
            Value::Object(object) => object,
            other => {
                return Err(invalid(
                    "",
                    format!("expected \"memory\" or {{\"backend\": \"redis\", ...}}, got {other}"),
                ));
            }
        };
        let backend = object.get("backend").and_then(Value::as_str);
        match backend {
            Some("memory") => {
                if let Some(key) = object.keys().find(|key| *key != "backend") {
                    return Err(invalid(
                        &format!("/{key}"),
                        "the memory backend takes no settings".into(),
                    ));
                }
                return Ok(StateBackend::Memory);
            }
            Some("redis") => {}
            _ => {
                return Err(invalid(
                    "/backend",
                    "expected \"memory\" or \"redis\"".into(),
                ));
            }
        }
        let url = match object.get("url") {
            Some(Value::String(url)) => url.as_str(),
            _ => {
                return Err(invalid(
                    "/url",
                    "the redis backend needs a URL string".into(),
                ));
            }
        };
        let mut settings = RedisSettings::new(url).map_err(|error| match error {
            StateError::InvalidSettings { message, .. } => invalid("/url", message),
            other => other,
        })?;
        for (key, value) in object {
            match key.as_str() {
                "backend" | "url" => {}
                "cluster" => {
                    settings.cluster = value
                        .as_bool()
                        .ok_or_else(|| invalid("/cluster", "expected true or false".into()))?
                        || settings.cluster;
                }
                "key_prefix" => {
                    let prefix = value
                        .as_str()
                        .ok_or_else(|| invalid("/key_prefix", "expected a string".into()))?;
                    settings = settings
                        .with_key_prefix(prefix)
                        .map_err(|message| invalid("/key_prefix", message))?;
                }
                "connect_timeout_ms" => {
                    settings.connect_timeout = timeout_ms(value)
                        .ok_or_else(|| invalid("/connect_timeout_ms", TIMEOUT_RANGE.into()))?;
                }
                "command_timeout_ms" => {
                    settings.command_timeout = timeout_ms(value)
                        .ok_or_else(|| invalid("/command_timeout_ms", TIMEOUT_RANGE.into()))?;
                }
                "pool_size" => {
                    settings.pool_size = value
                        .as_u64()
                        .filter(|size| (1..=MAX_POOL_SIZE).contains(size))
                        .and_then(|size| usize::try_from(size).ok())
                        .ok_or_else(|| {
                            invalid(
                                "/pool_size",
                                format!("expected a whole number from 1 to {MAX_POOL_SIZE}"),
                            )
                        })?;
                }
                other => {
                    return Err(invalid(
                        &format!("/{other}"),
                        "unknown setting (known: backend, url, cluster, key_prefix, \
                         connect_timeout_ms, command_timeout_ms, pool_size)"
                            .into(),
                    ));
                }
            }
        }
        Ok(StateBackend::Redis(settings))
    }
}

/// The longest connect or command timeout: shared state is meant to answer in milliseconds, and
/// a call waits for it at most this long.
const MAX_TIMEOUT_MS: u64 = 60_000;
const TIMEOUT_RANGE: &str = "expected a whole number of milliseconds from 1 to 60000";
/// The most idle connections a process keeps: far above any useful pool, low enough that a
/// typo cannot hold thousands of sockets.
const MAX_POOL_SIZE: u64 = 1024;

fn timeout_ms(value: &Value) -> Option<Duration> {
    value
        .as_u64()
        .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
        .map(Duration::from_millis)
}

/// How to reach Redis. Built with [`RedisSettings::new`], which checks the URL; the `Debug`
/// form masks any password in it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port[/db]` (`rediss://` is refused: this build has no TLS
    /// for Redis), or several such URLs separated by commas: the seed nodes of a cluster.
    pub url: String,
    /// Talk Redis Cluster (follow slot redirects). Implied by several URLs.
    pub cluster: bool,
    /// Prepended to every key (`prompt_config` by default), so several apps can share one
    /// Redis; no `{`, `}` or spaces.
    pub key_prefix: String,
    /// How long opening a connection may take: 50 ms by default.
    pub connect_timeout: Duration,
    /// How long one command or script may take to answer: 50 ms by default.
    pub command_timeout: Duration,
    /// Idle connections kept open for reuse: 4 by default. A burst opens more, closed after use,
    /// so a call never waits for the pool.
    pub pool_size: usize,
}

impl RedisSettings {
    /// The default prefix of every key.
    pub const DEFAULT_KEY_PREFIX: &'static str = "prompt_config";

    /// Settings for `url` (one URL, or comma-separated cluster seed URLs) with the defaults.
    /// Errors when a URL does not parse or asks for TLS, or when the setting is longer than
    /// 4,096 bytes.
    pub fn new(url: &str) -> Result<RedisSettings, StateError> {
        let invalid = |message: String| StateError::InvalidSettings {
            setting: "url".into(),
            message,
        };
        if url.len() > MAX_URL_BYTES {
            return Err(invalid(format!(
                "the URL setting is {} bytes; at most {MAX_URL_BYTES} are accepted",
                url.len()
            )));
        }
        let urls = split_urls(url);
        if urls.is_empty() {
            return Err(invalid("no URL given (redis://host:6379/)".into()));
        }
        // A URL that does not parse is never echoed, not even masked: where the password sits
        // in a malformed URL is unknowable (`redis:/:pw@host/`, `?pass=pw`), so the message
        // names only which URL and the client library's reason, without its detail.
        for (index, one) in urls.iter().enumerate() {
            let which = if urls.len() == 1 {
                "the URL".to_string()
            } else {
                format!("URL {} of {}", index + 1, urls.len())
            };
            if one.starts_with("rediss://") {
                return Err(invalid(format!(
                    "{which}: TLS (rediss://) is not supported by this build"
                )));
            }
            if one.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(invalid(format!(
                    "{which} contains whitespace or a control character; expected {URL_FORM}"
                )));
            }
            redis::IntoConnectionInfo::into_connection_info(*one).map_err(|error| {
                invalid(format!(
                    "{which} does not parse ({}); expected {URL_FORM}",
                    redis_reason(&error)
                ))
            })?;
        }
        Ok(RedisSettings {
            url: url.trim().to_string(),
            cluster: urls.len() > 1,
            key_prefix: RedisSettings::DEFAULT_KEY_PREFIX.to_string(),
            connect_timeout: Duration::from_millis(50),
            command_timeout: Duration::from_millis(50),
            pool_size: 4,
        })
    }

    /// The same settings talking Redis Cluster.
    pub fn with_cluster(mut self, cluster: bool) -> RedisSettings {
        self.cluster = cluster;
        self
    }

    /// The same settings with another key prefix; errors (with the reason) on an empty prefix
    /// or one with `{`, `}` or whitespace, which would break the hash tags, and on one longer
    /// than 256 bytes.
    pub fn with_key_prefix(mut self, prefix: &str) -> Result<RedisSettings, String> {
        if prefix.len() > MAX_KEY_PREFIX_BYTES {
            return Err(format!(
                "a key prefix of {} bytes; at most {MAX_KEY_PREFIX_BYTES} are accepted",
                prefix.len()
            ));
        }
        if prefix.is_empty()
            || prefix
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "{prefix:?}: a key prefix must be non-empty, without braces or whitespace"
            ));
        }
        self.key_prefix = prefix.to_string();
        Ok(self)
    }

    /// The same settings with other timeouts.
    pub fn with_timeouts(mut self, connect: Duration, command: Duration) -> RedisSettings {
        self.connect_timeout = connect;
        self.command_timeout = command;
        self
    }

    /// The same settings keeping `size` idle connections (at least one).
    pub fn with_pool_size(mut self, size: usize) -> RedisSettings {
        self.pool_size = size.max(1);
        self
    }

    /// The URLs (one, or the cluster's seeds).
    pub(crate) fn urls(&self) -> Vec<&str> {
        split_urls(&self.url)
    }

    /// The URL(s) with any password replaced by `***`: what errors and Debug show.
    pub fn masked_url(&self) -> String {
        self.urls()
            .into_iter()
            .map(mask_password)
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RedisSettings")
            .field("url", &self.masked_url())
            .field("cluster", &self.cluster)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// The longest Redis URL setting (all cluster seeds together): real URLs are a few hundred bytes
/// at most, and the URL is written into errors and every `state.*` telemetry event, so a huge
/// value (a 100 KB hostname) is a mistake to refuse rather than to repeat.
pub const MAX_URL_BYTES: usize = 4096;
/// The longest key prefix: it is repeated in every Redis key.
pub const MAX_KEY_PREFIX_BYTES: usize = 256;

/// The shape of a Redis URL, for error messages.
const URL_FORM: &str = "redis://[user:password@]host:port[/db]";

/// The client library's description of a failure without its detail, which may quote the
/// URL's parts ("Invalid database number - InvalidClientConfig: x" -> "invalid database number").
fn redis_reason(error: &redis::RedisError) -> String {
    let text = error.to_string();
    let description = text.split(" - ").next().unwrap_or_default();
    let mut reason = description.to_lowercase();
    if reason.is_empty() {
        reason = error.category().to_string();
    }
    reason
}

fn split_urls(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|one| !one.is_empty())
        .collect()
}

/// Query parameters whose values are shown as they are: they carry no credentials. Every other
/// parameter's value (`password`, `pass`, `user`, `username`, anything a later client version
/// reads) is masked, so a new credential-carrying parameter cannot leak by default.
const PLAIN_QUERY_PARAMETERS: [&str; 2] = ["db", "protocol"];

/// What a URL that does not parse is shown as: nothing of it, since where its password sits is
/// unknowable. Settings hold only URLs that parsed, so this is a safety net.
///
/// Query parameter names the Redis client knows are shown; any other name is masked as well,
/// since a bare `?s3cret` puts the secret in the name.
const KNOWN_QUERY_PARAMETERS: [&str; 6] =
    ["db", "protocol", "user", "username", "pass", "password"];

const UNPARSEABLE_URL: &str = "<a Redis URL that does not parse>";

/// `redis://user:secret@host:6379/?password=x&db=1` -> `redis://user:***@host:6379/?password=***&db=1`:
/// the password in the userinfo and the value of every query parameter but `db` and `protocol`
/// become `***`, as does any fragment. Parsed with the same URL parser the Redis client uses, so
/// what is masked is exactly what the client would read as a credential.
fn mask_password(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return UNPARSEABLE_URL.to_string();
    };
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return UNPARSEABLE_URL.to_string();
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if PLAIN_QUERY_PARAMETERS.contains(&name.as_ref()) {
                    value.into_owned()
                } else {
                    "***".to_string()
                };
                let name = if KNOWN_QUERY_PARAMETERS.contains(&name.as_ref()) {
                    name.into_owned()
                } else {
                    "***".to_string()
                };
                (name, value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if parsed.fragment().is_some() {
        parsed.set_fragment(Some("***"));
    }
    parsed.to_string()
}

#[cfg(test)]
#[path = "settings_masking_tests.rs"]
mod masking_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn memory_is_the_default_and_takes_no_settings() {
        assert_eq!(StateBackend::default(), StateBackend::Memory);
        assert_eq!(
            StateBackend::from_json(&json!("memory")).unwrap(),
            StateBackend::Memory
        );
        let error = StateBackend::from_json(&json!({"backend": "memory", "url": "x"})).unwrap_err();
        assert!(error.to_string().starts_with("/state/url:"), "{error}");
    }

    #[test]
    fn redis_settings_take_their_defaults_and_overrides() {
        let backend = StateBackend::from_json(&json!({
            "backend": "redis", "url": "redis://127.0.0.1:6390/", "key_prefix": "app",
            "command_timeout_ms": 30, "pool_size": 2
        }))
        .unwrap();
        let StateBackend::Redis(settings) = backend else {
            panic!("not redis")
        };
        assert_eq!(settings.key_prefix, "app");
        assert_eq!(settings.command_timeout, Duration::from_millis(30));
        assert_eq!(settings.connect_timeout, Duration::from_millis(50));
        assert_eq!(settings.pool_size, 2);
        assert!(!settings.cluster);
    }

    #[test]
    fn several_urls_mean_a_cluster() {
        let settings = RedisSettings::new("redis://a:7000/, redis://b:7001/").unwrap();
        assert!(settings.cluster);
        assert_eq!(settings.urls(), ["redis://a:7000/", "redis://b:7001/"]);
    }

    #[test]
    fn bad_settings_name_their_json_pointer() {
        for (json, pointer) in [
            (json!({"backend": "redis"}), "/state/url:"),
            (
                json!({"backend": "redis", "url": "http://x"}),
                "/state/url:",
            ),
            (
                json!({"backend": "redis", "url": "redis://h/", "pool_size": 0}),
                "/state/pool_size:",
            ),
            (
                json!({"backend": "redis", "url": "redis://h/", "key_prefix": "a{b}"}),
                "/state/key_prefix:",
            ),
            (
                json!({"backend": "redis", "url": "redis://h/", "timeout": 5}),
                "/state/timeout:",
            ),
            (json!({"backend": "postgres"}), "/state/backend:"),
            (json!("redis"), "/state:"),
            (json!(3), "/state:"),
        ] {
            let error = StateBackend::from_json(&json).unwrap_err();
            assert!(error.to_string().starts_with(pointer), "{json}: {error}");
        }
    }

    #[test]
    fn passwords_never_reach_debug_or_errors() {
        let settings = RedisSettings::new("redis://app:s3cret@127.0.0.1:6379/0").unwrap();
        assert_eq!(settings.masked_url(), "redis://app:***@127.0.0.1:6379/0");
        assert!(!format!("{settings:?}").contains("s3cret"));
        let error = RedisSettings::new("rediss://app:s3cret@host/").unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }

    #[test]
    fn a_url_that_does_not_parse_is_never_echoed_so_its_password_cannot_leak() {
        for url in [
            "redis:/:s3cret@host/",
            "redis+unix:///tmp/nosock?pass=s3cret&db=x",
            "redis://127.0.0.1:1/?password=s3cret&protocol=bad",
            "redis://:pw@host:1/0,redis//:s3cret@x",
            "redis://:s3cret@127.0.0.1:1/\u{1}",
            "redis://:s3cret pw@host/",
            "not-a-url-s3cret",
        ] {
            let error = RedisSettings::new(url).unwrap_err().to_string();
            assert!(!error.contains("s3cret"), "{url}: {error}");
            assert!(
                error.contains("redis://[user:password@]host:port[/db]"),
                "{url}: {error}"
            );
        }
    }

    #[test]
    fn timeouts_and_pool_sizes_out_of_range_are_refused_naming_their_pointer() {
        for (key, value) in [
            ("connect_timeout_ms", json!(-5)),
            ("connect_timeout_ms", json!(0)),
            ("command_timeout_ms", json!(60_001)),
            ("command_timeout_ms", json!(u64::MAX)),
            ("pool_size", json!(0)),
            ("pool_size", json!(4_000_000_000u64)),
            ("pool_size", json!(1.5)),
        ] {
            let json = json!({"backend": "redis", "url": "redis://h/", key: value});
            let error = StateBackend::from_json(&json).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("/state/{key}: expected")),
                "{json}: {error}"
            );
        }
    }

    #[test]
    fn a_bad_seed_of_several_is_named_by_its_position() {
        let error = RedisSettings::new("redis://h:1/,redis//x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("URL 2 of 2 does not parse"), "{error}");
    }
}
