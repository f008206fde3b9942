//! Alerts from a running engine reach loopback channels in each channel's format: a breaker
//! opening then closing is one PagerDuty incident triggered and resolved under one dedup key,
//! Slack gets Block Kit with the figures, a webhook is signed over timestamp and body; and no
//! channel secret reaches the log, the metrics or an error.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::support::alert_engine::{
    breaker_alerts_fixture, close_breaker, lines_with_event, open_breaker, open_engine, set_env,
};
use crate::support::alert_receiver::AlertReceiver;
use crate::support::temp_dir::TempDir;

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn a_breaker_opening_then_closing_triggers_then_resolves_one_pagerduty_incident() {
    let pagerduty = AlertReceiver::pagerduty();
    set_env("PC_CH_PD_KEY", "R0UTING-KEY-1");
    let fixture = breaker_alerts_fixture(&json!({
        "oncall": {"type": "pagerduty", "routing_key_env": "PC_CH_PD_KEY", "url": pagerduty.url()}
    }));
    let logs = TempDir::new("alerts_pd");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    let trigger = pagerduty.wait_for(1, WAIT);
    assert_eq!(trigger.len(), 1, "one trigger");
    close_breaker(&engine);
    engine.flush_telemetry();
    let events = pagerduty.wait_for(2, WAIT);
    assert_eq!(events.len(), 2, "a trigger, then a resolve");

    let (trigger, resolve) = (events[0].json(), events[1].json());
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "R0UTING-KEY-1");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert_eq!(trigger["payload"]["class"], "breaker_open");
    assert_eq!(trigger["payload"]["component"], "prompt_config");
    assert_eq!(trigger["payload"]["custom_details"]["breaker"], "openai");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], trigger["dedup_key"]);
    assert_eq!(trigger["dedup_key"], "prompt_config/openai-down/openai");
    assert_eq!(lines_with_event(&logs.log(), "alert.sent").len(), 2);
}

#[test]
fn a_breaker_alert_reaches_slack_as_blocks_with_the_figures_as_fields() {
    let slack = AlertReceiver::ok();
    set_env("PC_CH_SLACK_URL", &slack.url());
    let fixture = breaker_alerts_fixture(&json!({
        "team": {"type": "slack", "webhook_url_env": "PC_CH_SLACK_URL"}
    }));
    let logs = TempDir::new("alerts_slack");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    let requests = slack.wait_for(1, WAIT);
    let body = requests[0].json();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("Circuit breaker openai opened")
    );
    assert_eq!(body["blocks"][0]["type"], "header");
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "Critical alert: openai-down"
    );
    let fields = body["blocks"][2]["fields"].as_array().unwrap();
    assert!(
        fields
            .iter()
            .any(|field| field["text"] == "*breaker*\nopenai"),
        "{fields:?}"
    );
    assert_eq!(body["blocks"][3]["type"], "context");
}

#[test]
fn a_webhook_alert_is_signed_over_timestamp_and_body() {
    let hook = AlertReceiver::ok();
    set_env("PC_CH_HOOK_URL", &hook.url());
    set_env("PC_CH_HOOK_SECRET", "whsec-engine-3c2d");
    let fixture = breaker_alerts_fixture(&json!({
        "audit": {"type": "webhook", "url_env": "PC_CH_HOOK_URL", "secret_env": "PC_CH_HOOK_SECRET"}
    }));
    let logs = TempDir::new("alerts_hook");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    let requests = hook.wait_for(1, WAIT);
    let request = &requests[0];
    let timestamp = request.header("x-prompt-config-timestamp").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"whsec-engine-3c2d").unwrap();
    mac.update(format!("{timestamp}.{}", request.body).as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(
        request.header("x-prompt-config-signature").unwrap(),
        format!("sha256={hex}")
    );
    let body = request.json();
    assert_eq!(body["version"], 1);
    assert_eq!(body["alert"]["rule"], "openai-down");
    assert_eq!(body["alert"]["action"], "trigger");
}

#[test]
fn no_channel_secret_reaches_the_log_or_the_metrics() {
    // A receiver that refuses everything, at a URL whose path is the secret (as Slack's are).
    let refusing = AlertReceiver::answering(crate::support::http_server::Reply::status(403));
    let secret_url = format!("{}/T000/B000/XOXB-SECRET-9f1e", refusing.url());
    set_env("PC_CH_SECRET_URL", &secret_url);
    set_env("PC_CH_SECRET_KEY", "HMAC-SECRET-9f1e");
    let fixture = breaker_alerts_fixture(&json!({
        "audit": {"type": "webhook", "url_env": "PC_CH_SECRET_URL", "secret_env": "PC_CH_SECRET_KEY"}
    }));
    let logs = TempDir::new("alerts_secret");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    engine.flush_telemetry();
    let failed = lines_with_event(&logs.log(), "alert.failed");
    assert_eq!(failed.len(), 1, "403 is final: one failure, no retry");
    assert_eq!(failed[0]["error.message"], "the receiver answered HTTP 403");
    let log = std::fs::read_to_string(logs.log()).unwrap();
    let metrics = engine.prometheus_text();
    for text in [&log, &metrics, &format!("{engine:?}")] {
        assert!(!text.contains("SECRET-9f1e"), "a secret leaked: {text}");
    }
}

#[test]
fn a_budget_crossing_its_threshold_reaches_slack_once_with_spend_and_limit() {
    let slack = AlertReceiver::ok();
    set_env("PC_CH_BUDGET_URL", &slack.url());
    let fixture = crate::support::eval::fast_mock_fixture();
    let providers = fixture.config_dir().join("providers.json");
    fixture.edit_json(&providers, |document| {
        // One mock call spends more than this: every threshold is crossed by the first call.
        document["budget"] = json!({"daily_usd": 0.000001, "monthly_usd": 4000, "policy": "allow"});
    });
    let alerts = json!({
        "channels": {"team": {"type": "slack", "webhook_url_env": "PC_CH_BUDGET_URL"}},
        "rules": [{"name": "spend", "type": "budget", "thresholds": [100],
                   "severity": "warning", "channels": ["team"]}],
    });
    std::fs::write(fixture.config_dir().join("alerts.json"), alerts.to_string()).unwrap();
    let logs = TempDir::new("alerts_budget");
    let engine = open_engine(&fixture, &logs.log());

    for user in ["u1", "u2", "u3"] {
        engine
            .complete(
                "career_path_navigator",
                &crate::support::fixture::context(user),
            )
            .expect("allow: over budget still answers");
    }
    engine.flush_telemetry();
    let requests = slack.wait_for(1, WAIT);
    assert_eq!(requests.len(), 1, "once per rule, scope and period");
    let body = requests[0].json();
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .starts_with("Budget overall/day at 100%"),
        "{body}"
    );
    let fields = body["blocks"][2]["fields"].to_string();
    assert!(fields.contains("*limit_usd*"), "{fields}");
    assert!(fields.contains("*spent_usd*"), "{fields}");
}

#[test]
fn four_engines_sharing_one_redis_send_one_slack_message_for_one_breaker_opening() {
    use crate::support::alert_engine::OPEN_MS;
    use crate::support::fleet::redis;
    use crate::support::redis_server::{PATIENT, RedisServer};

    let server = RedisServer::start();
    let slack = AlertReceiver::ok();
    set_env("PC_CH_FLEET_URL", &slack.url());
    let fixture = breaker_alerts_fixture(&json!({
        "team": {"type": "slack", "webhook_url_env": "PC_CH_FLEET_URL"}
    }));
    // The claim's period is the opening's minute: keep the four openings inside one.
    let second = chrono::Utc::now().timestamp() % 60;
    if second > 50 {
        std::thread::sleep(Duration::from_secs((61 - second) as u64));
    }
    let logs = TempDir::new("alerts_fleet");
    let engines: Vec<_> = (0..4)
        .map(|index| {
            let log = logs.path().join(format!("engine{index}.jsonl"));
            let options = fixture
                .options()
                .with_mock(true)
                .with_telemetry(&log)
                .with_state(redis(&server.url(), PATIENT));
            (prompt_config::Engine::open(options).expect("opens"), log)
        })
        .collect();

    for (engine, _) in &engines {
        open_breaker(engine);
    }
    for (engine, _) in &engines {
        engine.flush_telemetry();
    }
    std::thread::sleep(Duration::from_millis(OPEN_MS));
    for (_, log) in &engines {
        let openings = lines_with_event(log, "circuit.transition")
            .into_iter()
            .filter(|line| {
                line["prompt_config.breaker"] == "openai"
                    && matches!(
                        line["prompt_config.breaker_state"].as_str(),
                        Some("open" | "fleet_open")
                    )
            })
            .count();
        assert!(openings >= 1, "every engine saw the breaker open");
    }
    assert_eq!(slack.requests().len(), 1, "one message for the fleet");
    let sent: usize = engines
        .iter()
        .map(|(_, log)| lines_with_event(log, "alert.sent").len())
        .sum();
    assert_eq!(sent, 1, "sent by exactly one of the four engines");
}
