//! The Slack incoming-webhook payload of an alert (<https://api.slack.com/messaging/webhooks>):
//! `text` (the one-line summary, what notifications show) and Block Kit `blocks`: a `header`,
//! a `section` with the summary, a `section` whose `fields` are the figures, and a `context`
//! with rule, severity, scope and period. A resolve says so in the header and the text.

use serde_json::{Value, json};

use super::{Alert, AlertAction};

/// Block Kit's limit on a header's text, in characters.
const HEADER_MAX_CHARS: usize = 150;
/// Block Kit's limit on a section's text and on each field, in characters.
const TEXT_MAX_CHARS: usize = 3000;
/// Block Kit's limit on the fields of one section.
const MAX_FIELDS: usize = 10;

/// The JSON body to POST to the webhook URL.
pub(crate) fn payload(alert: &Alert) -> Value {
    let resolved = alert.action == AlertAction::Resolve;
    let text = if resolved {
        format!("Resolved: {}", alert.summary)
    } else {
        alert.summary.clone()
    };
    let header = if resolved {
        format!("Resolved: {}", alert.rule)
    } else {
        format!(
            "{} alert: {}",
            capitalised(alert.severity.as_str()),
            alert.rule
        )
    };
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&header, HEADER_MAX_CHARS)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&escape(&text), TEXT_MAX_CHARS)}}),
    ];
    let fields: Vec<Value> = alert
        .figures
        .iter()
        .take(MAX_FIELDS)
        .map(|(name, value)| {
            let shown = match value {
                Value::String(text) => text.clone(),
                Value::Number(number) if number.is_f64() => {
                    number.as_f64().map_or_else(|| number.to_string(), rounded)
                }
                other => other.to_string(),
            };
            let field = format!("*{}*\n{}", escape(name), escape(&shown));
            json!({"type": "mrkdwn", "text": truncate(&field, TEXT_MAX_CHARS)})
        })
        .collect();
    if !fields.is_empty() {
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    let context = format!(
        "rule `{}` · {} · severity {} · scope {} · period {}",
        escape(&alert.rule),
        escape(alert.rule_type),
        alert.severity.as_str(),
        escape(&alert.scope),
        escape(&alert.period)
    );
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(&context, TEXT_MAX_CHARS)}]}));
    json!({"text": text, "blocks": blocks})
}

/// A figure for people: at most four decimals, without trailing zeros (`0.0667`, `0.5`,
/// `1234.5`); the PagerDuty and webhook payloads keep the exact value.
fn rounded(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// Slack's three control characters in mrkdwn (`&`, `<`, `>`), escaped so a feature name can't
/// become a link or a mention.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// At most `max` characters, the last one an ellipsis when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::alerts::tests::sample_alert;
    use proptest::prelude::*;

    #[test]
    fn the_text_is_the_summary_and_the_blocks_are_header_section_fields_context() {
        let alert = sample_alert();
        let body = payload(&alert);
        assert_eq!(body["text"], alert.summary);
        let types: Vec<&str> = body["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|block| block["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["header", "section", "section", "context"]);
        assert_eq!(
            body["blocks"][0]["text"]["text"],
            "Error alert: openai-errors"
        );
        let fields = body["blocks"][2]["fields"].as_array().unwrap();
        assert_eq!(fields.len(), alert.figures.len());
        assert_eq!(fields[0]["type"], "mrkdwn");
        assert_eq!(fields[0]["text"], "*error_rate*\n0.25");
        let context = body["blocks"][3]["elements"][0]["text"].as_str().unwrap();
        assert!(context.contains("scope summarise"), "{context}");
        assert!(context.contains("severity error"), "{context}");
    }

    #[test]
    fn a_resolve_says_resolved_in_text_and_header() {
        let mut alert = sample_alert();
        alert.action = AlertAction::Resolve;
        let body = payload(&alert);
        assert_eq!(body["text"], format!("Resolved: {}", alert.summary));
        assert_eq!(body["blocks"][0]["text"]["text"], "Resolved: openai-errors");
    }

    #[test]
    fn fractional_figures_are_rounded_to_four_decimals_for_people() {
        assert_eq!(rounded(0.066_666_666_7), "0.0667");
        assert_eq!(rounded(0.5), "0.5");
        assert_eq!(rounded(1234.0), "1234");
        assert_eq!(rounded(-0.000_01), "0");
        let mut alert = sample_alert();
        alert.figures = [("error_rate".to_string(), serde_json::json!(2.0 / 30.0))].into();
        let body = payload(&alert);
        assert_eq!(
            body["blocks"][2]["fields"][0]["text"],
            "*error_rate*\n0.0667"
        );
    }

    #[test]
    fn no_figures_means_no_fields_section() {
        let mut alert = sample_alert();
        alert.figures.clear();
        let body = payload(&alert);
        assert_eq!(body["blocks"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn mrkdwn_control_characters_are_escaped() {
        let mut alert = sample_alert();
        alert.summary = "<!channel> & <http://x|y>".into();
        let body = payload(&alert);
        assert_eq!(
            body["blocks"][1]["text"]["text"],
            "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
        );
    }

    proptest! {
        #[test]
        fn block_kit_limits_hold_for_any_text(rule in "\\PC{0,400}", summary in "\\PC{0,4000}", scope in ".{0,300}") {
            let mut alert = sample_alert();
            alert.rule = rule;
            alert.summary = summary;
            alert.scope = scope;
            let body = payload(&alert);
            let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
            prop_assert!(header.chars().count() <= HEADER_MAX_CHARS);
            for block in body["blocks"].as_array().unwrap() {
                if let Some(text) = block["text"]["text"].as_str() {
                    prop_assert!(text.chars().count() <= TEXT_MAX_CHARS);
                }
            }
        }
    }
}
