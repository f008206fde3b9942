//! `prompt-config alerts test`: a test alert reaches each configured channel (loopback
//! receivers), failures name the channel (and an unset variable by name, never a secret), an
//! unknown channel is a usage error and a missing alerts.json says so.

use std::fs;
use std::path::Path;
use std::process::Output;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::alert_receiver::AlertReceiver;
use crate::support::cli::{command, stderr, stdout};
use crate::support::temp_dir::TempDir;

/// A recognisable secret: it must never be printed.
const SIGNING_SECRET: &str = "whsec-SHOULD-NEVER-PRINT-5a1b";

fn folder_with(channels: &Value) -> TempDir {
    let folder = TempDir::new("alerts_cli");
    fs::create_dir_all(folder.path().join("config")).unwrap();
    let alerts = json!({"channels": channels, "rules": []});
    fs::write(
        folder.path().join("config/alerts.json"),
        serde_json::to_string_pretty(&alerts).unwrap(),
    )
    .unwrap();
    folder
}

fn alerts_test(folder: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut run = command(folder);
    run.args(["alerts", "test"]).args(args);
    for (name, value) in env {
        run.env(name, value);
    }
    run.output().expect("the binary runs")
}

#[test]
fn a_test_alert_reaches_slack_with_text_and_blocks() {
    let slack = AlertReceiver::ok();
    let folder =
        folder_with(&json!({"ops-slack": {"type": "slack", "webhook_url_env": "PC_T_SLACK_URL"}}));
    let output = alerts_test(folder.path(), &[], &[("PC_T_SLACK_URL", &slack.url())]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ops-slack (slack): ok (HTTP 200)\n");
    let body = slack.requests()[0].json();
    assert!(body["text"].as_str().unwrap().contains("ops-slack"));
    let types: Vec<&str> = body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|block| block["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["header", "section", "section", "context"]);
    assert_eq!(body["blocks"][2]["fields"][0]["type"], "mrkdwn");
}

#[test]
fn a_test_alert_reaches_pagerduty_as_an_info_trigger() {
    let pagerduty = AlertReceiver::pagerduty();
    let folder = folder_with(
        &json!({"pd": {"type": "pagerduty", "routing_key_env": "PC_T_ROUTING", "url": pagerduty.url()}}),
    );
    let output = alerts_test(
        folder.path(),
        &["--json"],
        &[("PC_T_ROUTING", "R0UTING-KEY")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["channels"][0]["ok"], true);
    assert_eq!(report["channels"][0]["status"], 202);
    let event = pagerduty.requests()[0].json();
    assert_eq!(event["routing_key"], "R0UTING-KEY");
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(event["payload"]["severity"], "info");
    assert_eq!(event["payload"]["class"], "test");
    assert!(
        event["dedup_key"]
            .as_str()
            .unwrap()
            .starts_with("prompt_config/test/pd/")
    );
}

#[test]
fn a_webhook_signature_verifies_with_an_independent_hmac() {
    let hook = AlertReceiver::ok();
    let folder = folder_with(
        &json!({"hook": {"type": "webhook", "url_env": "PC_T_HOOK_URL", "secret_env": "PC_T_HOOK_SECRET"}}),
    );
    let output = alerts_test(
        folder.path(),
        &[],
        &[
            ("PC_T_HOOK_URL", &hook.url()),
            ("PC_T_HOOK_SECRET", SIGNING_SECRET),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let request = &hook.requests()[0];
    let timestamp = request.header("x-prompt-config-timestamp").unwrap();
    let signature = request.header("x-prompt-config-signature").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{}", request.body).as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(signature, format!("sha256={expected}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - timestamp.parse::<i64>().unwrap()).abs() < 300);
    let body = request.json();
    assert_eq!(body["version"], 1);
    assert_eq!(body["alert"]["rule_type"], "test");
    assert!(!stdout(&output).contains(SIGNING_SECRET));
}

#[test]
fn a_receiver_failing_twice_then_answering_is_ok_after_three_attempts() {
    let slack = AlertReceiver::failing_then_ok(2, 503);
    let folder =
        folder_with(&json!({"ops": {"type": "slack", "webhook_url_env": "PC_T_SLACK_URL"}}));
    let output = alerts_test(folder.path(), &[], &[("PC_T_SLACK_URL", &slack.url())]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ops (slack): ok (HTTP 200, 3 attempts)\n");
    assert_eq!(slack.requests().len(), 3);
}

#[test]
fn a_channel_that_keeps_failing_exits_1_with_alert_delivery_failed_naming_it() {
    let good = AlertReceiver::ok();
    let bad = AlertReceiver::answering(crate::support::http_server::Reply::status(500));
    let folder = folder_with(&json!({
        "a-good": {"type": "slack", "webhook_url_env": "PC_T_GOOD"},
        "b-bad": {"type": "slack", "webhook_url_env": "PC_T_BAD"},
    }));
    let output = alerts_test(
        folder.path(),
        &[],
        &[("PC_T_GOOD", &good.url()), ("PC_T_BAD", &bad.url())],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("a-good (slack): ok"));
    assert!(
        stdout(&output)
            .contains("b-bad (slack): failed: the receiver answered HTTP 500, 3 attempts")
    );
    assert_eq!(
        stderr(&output).trim(),
        "error [alert_delivery_failed]: channel b-bad: the receiver answered HTTP 500"
    );
    assert!(!stderr(&output).contains(&bad.url()));
}

#[test]
fn an_unset_secret_variable_is_named_and_its_json_error_carries_the_channel() {
    let folder = folder_with(
        &json!({"hook": {"type": "webhook", "url_env": "PC_T_UNSET_URL", "secret_env": "PC_T_UNSET_SECRET"}}),
    );
    let output = alerts_test(folder.path(), &["--json"], &[]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["channels"][0]["ok"], false);
    assert_eq!(report["channels"][0]["attempts"], 0);
    assert_eq!(
        report["channels"][0]["error"],
        "environment variable PC_T_UNSET_URL is not set"
    );
    assert_eq!(report["error"]["kind"], "alert_delivery_failed");
    assert_eq!(report["error"]["details"]["channel"], "hook");
    assert_eq!(report["error"]["details"]["channels"], json!(["hook"]));
}

#[test]
fn a_secret_variable_that_is_not_utf8_is_named_as_such_not_as_unset() {
    use std::os::unix::ffi::OsStrExt;
    let folder =
        folder_with(&json!({"team": {"type": "slack", "webhook_url_env": "PC_T_BYTES_URL"}}));
    let output = command(folder.path())
        .args(["alerts", "test"])
        .env(
            "PC_T_BYTES_URL",
            std::ffi::OsStr::from_bytes(b"http://127.0.0.1:9/\xffSECRET"),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout(&output),
        "team (slack): failed: environment variable PC_T_BYTES_URL is not UTF-8 text\n"
    );
    assert!(!stderr(&output).contains("SECRET") && !stdout(&output).contains("SECRET"));
}

#[test]
fn only_the_named_channel_is_sent_to() {
    let first = AlertReceiver::ok();
    let second = AlertReceiver::ok();
    let folder = folder_with(&json!({
        "first": {"type": "slack", "webhook_url_env": "PC_T_FIRST"},
        "second": {"type": "slack", "webhook_url_env": "PC_T_SECOND"},
    }));
    let output = alerts_test(
        folder.path(),
        &["--channel", "second"],
        &[("PC_T_FIRST", &first.url()), ("PC_T_SECOND", &second.url())],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(first.requests().is_empty());
    assert_eq!(second.requests().len(), 1);
}

#[test]
fn an_unknown_channel_is_a_usage_error_listing_the_channels() {
    let folder = folder_with(&json!({"ops": {"type": "slack", "webhook_url_env": "PC_T_X"}}));
    let output = alerts_test(folder.path(), &["--channel", "nope"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--channel nope: no such channel in alerts.json (channels: ops)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn without_alerts_json_the_error_names_the_file() {
    let folder = TempDir::new("alerts_cli_none");
    fs::create_dir_all(folder.path().join("config")).unwrap();
    let output = alerts_test(folder.path(), &[], &[]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.starts_with("error [config_invalid]"), "{error}");
    assert!(
        error.contains("config/alerts.json: /: no such file"),
        "{error}"
    );
}
