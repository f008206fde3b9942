//! The signed generic webhook: the body is `{"alert": {...the Alert's fields...}, "version": 1}`
//! and two headers let the receiver check it came from us and is fresh:
//! `X-Prompt-Config-Timestamp: <unix seconds>` and `X-Prompt-Config-Signature:
//! sha256=<hex HMAC-SHA256(secret, "{timestamp}.{body}")>`. Signing the timestamp with the body
//! stops a captured request from being replayed later with a new timestamp; receivers should
//! refuse timestamps older than 5 minutes (README "Alerts" shows the check in Ruby and shell).

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::Alert;

/// The body's format version.
pub(crate) const VERSION: u32 = 1;

/// The header carrying the signing time, in Unix seconds.
pub(crate) const TIMESTAMP_HEADER: &str = "x-prompt-config-timestamp";

/// The header carrying `sha256=<hex>`.
pub(crate) const SIGNATURE_HEADER: &str = "x-prompt-config-signature";

/// The JSON body.
pub(crate) fn body(alert: &Alert) -> String {
    json!({"alert": alert, "version": VERSION}).to_string()
}

/// `sha256=` and the lower-case hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
pub(crate) fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length (longer ones are hashed), so this cannot fail.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + digest.len() * 2);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The timestamp and signature headers for `body` signed at `timestamp`.
pub(crate) fn signature_headers(
    secret: &[u8],
    timestamp: i64,
    body: &str,
) -> [(&'static str, String); 2] {
    [
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, signature(secret, timestamp, body)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::alerts::tests::sample_alert;
    use proptest::prelude::*;

    #[test]
    fn the_body_wraps_the_alert_with_a_version() {
        let alert = sample_alert();
        let value: serde_json::Value = serde_json::from_str(&body(&alert)).unwrap();
        assert_eq!(value["version"], 1);
        assert_eq!(value["alert"]["rule"], alert.rule);
        assert_eq!(value["alert"]["dedup_key"], alert.dedup_key);
        assert_eq!(value["alert"]["action"], "trigger");
        assert_eq!(value["alert"]["figures"]["error_rate"], 0.25);
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // The expected value is independent: `printf '0.x' | openssl dgst -sha256 -hmac key`.
        assert_eq!(
            signature(b"key", 0, "x"),
            "sha256=01648d624c0b511b0449a63394418e2d5b018e4cc2f753e42127d445f3ca5dd0"
        );
    }

    proptest! {
        #[test]
        fn the_body_round_trips_any_text_nul_bytes_included(rule in "\\PC{0,40}", summary in ".{0,400}", scope in "[\\x00-\\x7f]{0,40}") {
            let mut alert = sample_alert();
            alert.rule = rule.clone();
            alert.summary = summary.clone();
            alert.scope = scope.clone();
            let value: serde_json::Value = serde_json::from_str(&body(&alert)).unwrap();
            prop_assert_eq!(value["alert"]["rule"].as_str(), Some(rule.as_str()));
            prop_assert_eq!(value["alert"]["summary"].as_str(), Some(summary.as_str()));
            prop_assert_eq!(value["alert"]["scope"].as_str(), Some(scope.as_str()));
        }

        #[test]
        fn any_change_to_body_or_timestamp_changes_the_signature(body in "\\PC{0,200}", timestamp in 0i64..4_000_000_000) {
            let signed = signature(b"s3cret", timestamp, &body);
            prop_assert!(signed.starts_with("sha256="));
            prop_assert_eq!(signed.len(), 7 + 64);
            prop_assert_ne!(&signed, &signature(b"s3cret", timestamp + 1, &body));
            let changed = format!("{body} ");
            prop_assert_ne!(&signed, &signature(b"s3cret", timestamp, &changed));
        }
    }
}
