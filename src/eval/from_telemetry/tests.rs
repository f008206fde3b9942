use proptest::prelude::*;

use super::*;

/// What [`read_lines`] gathered: the counts, the feature's requests, the feedback by request.
type Gathered = (
    FromTelemetrySummary,
    Vec<Map<String, Value>>,
    HashMap<String, Vec<Feedback>>,
);

fn read(bytes: &[u8]) -> Gathered {
    let mut summary = FromTelemetrySummary::default();
    let mut requests = Vec::new();
    let mut feedback = HashMap::new();
    read_lines(bytes, "f", &mut summary, &mut requests, &mut feedback).unwrap();
    (summary, requests, feedback)
}

fn request(subject: &str) -> Map<String, Value> {
    let Value::Object(fields) = json!({
        "event": "llm.request", "request_id": "req_1", "timestamp": "2026-12-01T00:00:00.000Z",
        "gen_ai.prompt.name": "f", "gen_ai.prompt.version": "1.0.0",
        "prompt_config.subject_id": subject,
        "gen_ai.output.messages": [{"role": "assistant", "content": "the answer"}],
    }) else {
        unreachable!()
    };
    fields
}

fn feedback(metric: &str, value: Value) -> Feedback {
    Feedback {
        metric: metric.into(),
        value,
        timestamp: String::new(),
    }
}

#[test]
fn only_the_features_requests_and_every_feedback_line_are_kept() {
    let log = concat!(
        r#"{"event":"llm.request","gen_ai.prompt.name":"f","request_id":"a"}"#,
        "\n",
        r#"{"event":"llm.request","gen_ai.prompt.name":"other","request_id":"b"}"#,
        "\n",
        r#"{"event":"feedback","request_id":"a","prompt_config.feedback.metric":"rating","prompt_config.feedback.value":2}"#,
        "\n",
        "\n",
        r#"{"event":"llm.attempt"}"#,
        "\n",
        "not json\n",
        "[1, 2]\n",
    );
    let (summary, requests, feedback) = read(log.as_bytes());
    assert_eq!(summary.lines_read, 6);
    assert_eq!(summary.lines_skipped, 2);
    assert_eq!(requests.len(), 1);
    assert_eq!(feedback["a"][0].score(), Some(2.0));
}

#[test]
fn a_feedback_line_read_twice_is_one_feedback_and_a_later_one_is_another() {
    let line = |at: &str, value: u32| {
        format!(
            r#"{{"event":"feedback","request_id":"a","timestamp":"{at}","prompt_config.feedback.metric":"rating","prompt_config.feedback.value":{value}}}"#
        ) + "\n"
    };
    let log = line("t1", 2) + &line("t1", 2) + &line("t2", 2);
    let (_, _, feedback) = read(log.as_bytes());
    assert_eq!(feedback["a"].len(), 2);
}

#[test]
fn a_raw_subject_id_is_hashed_and_a_hashed_one_kept() {
    let raw = case(&request("alice"), &Map::new(), None, &[], &[]);
    assert_eq!(
        raw["context"]["user_id"],
        format!("sha256:{}", sha256_hex(b"alice"))
    );
    let hashed = case(&request("sha256:abc"), &Map::new(), None, &[], &[]);
    assert_eq!(hashed["context"]["user_id"], "sha256:abc");
}

#[test]
fn booleans_score_one_or_zero_and_text_is_a_comment_not_a_score() {
    assert_eq!(feedback("thumbs_up", json!(false)).score(), Some(0.0));
    assert_eq!(feedback("thumbs_up", json!(true)).score(), Some(1.0));
    assert_eq!(feedback("comment", json!("too vague")).score(), None);
}

#[test]
fn a_comment_becomes_a_judge_rubric_and_no_comment_makes_none() {
    let with = case(
        &request("u"),
        &Map::new(),
        None,
        &[feedback("comment", json!("too \"vague\""))],
        &[],
    );
    let rubric = with["assertions"][1]["value"].as_str().unwrap();
    assert_eq!(with["assertions"][1]["type"], "judge");
    assert!(rubric.contains(r#""too \"vague\"""#), "{rubric}");
    let without = case(
        &request("u"),
        &Map::new(),
        None,
        &[feedback("rating", json!(1))],
        &[],
    );
    assert_eq!(without["assertions"].as_array().unwrap().len(), 1);
}

#[test]
fn an_answer_that_called_tools_expects_tool_calls() {
    let mut fields = request("u");
    fields.insert(
        "gen_ai.output.messages".into(),
        json!([{"role": "assistant", "content": "", "tool_calls": [{"id": "c1"}]}]),
    );
    let built = case(&fields, &Map::new(), None, &[], &[]);
    assert_eq!(
        built["assertions"][0],
        json!({"type": "finish_reason", "value": "tool_calls"})
    );
}

#[test]
fn a_failed_request_keeps_its_error_kind_instead_of_an_answer() {
    let mut fields = request("u");
    fields.remove("gen_ai.output.messages");
    fields.insert("error.type".into(), json!("invalid_output"));
    let built = case(&fields, &Map::new(), None, &[], &[]);
    assert_eq!(built["metadata"]["error"], "invalid_output");
    assert!(built["metadata"].get("answer").is_none());
}

proptest! {
    #[test]
    fn any_bytes_are_read_without_panicking_and_every_line_counted(
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)
    ) {
        let mut bytes = Vec::new();
        for line in &lines {
            bytes.extend(line.iter().copied().filter(|byte| *byte != b'\n'));
            bytes.push(b'\n');
        }
        let (summary, requests, _) = read(&bytes);
        prop_assert!(summary.lines_read <= lines.len() as u64);
        prop_assert!(summary.lines_skipped <= summary.lines_read);
        prop_assert!(requests.len() as u64 <= summary.lines_read);
    }

    #[test]
    fn any_subject_id_becomes_a_hash_or_stays_one(subject in any::<String>()) {
        let built = case(&request(&subject), &Map::new(), None, &[], &[]);
        let user = built["context"]["user_id"].as_str().unwrap().to_string();
        prop_assert!(user.starts_with("sha256:"));
        if !subject.starts_with("sha256:") {
            prop_assert_eq!(user.len(), "sha256:".len() + 64);
        }
    }
}
