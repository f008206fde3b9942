use std::io::Write;
use std::process::{Command, Stdio};

use proptest::prelude::*;

use super::*;
use crate::ErrorKind;
use crate::eval::report::RunError;
use crate::eval::test_reports::{assertion, case, report, run};

/// Parses `xml` with Python's `xml.etree` (a real, strict XML parser) and returns what the
/// script printed, or panics with the parser's complaint.
fn parse_with_python(xml: &str, script: &str) -> String {
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "not well-formed: {}\n{xml}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Undoes [`escape`] for a test: entities and character references back to characters.
fn unescape(value: &str) -> String {
    value
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#9;", "\t")
        .replace("&#10;", "\n")
        .replace("&#13;", "\r")
        .replace("&amp;", "&")
}

/// What escaping keeps of `value`: itself, with characters XML cannot carry shown as `\u{..}`.
fn visible(value: &str) -> String {
    value
        .chars()
        .map(|character| {
            if is_xml_char(character) {
                character.to_string()
            } else {
                format!("\\u{{{:x}}}", character as u32)
            }
        })
        .collect()
}

#[test]
fn each_version_is_a_testsuite_and_each_case_a_testcase() {
    let report = report(vec![
        case("passes", vec![run(1, true, vec![]), run(2, true, vec![])]),
        case(
            "fails",
            vec![
                run(1, true, vec![]),
                run(
                    2,
                    false,
                    vec![assertion(0, GradeOutcome::Fail, "did not find \"paths\"")],
                ),
            ],
        ),
    ]);
    let printed = parse_with_python(
        &report.to_junit(),
        "import sys, xml.etree.ElementTree as E\n\
         root = E.fromstring(sys.stdin.buffer.read())\n\
         print(root.tag, root.get('tests'), root.get('failures'))\n\
         for suite in root: print(suite.get('name'), suite.get('tests'), suite.get('failures'))\n\
         for c in root.iter('testcase'):\n\
         \x20 f = c.find('failure')\n\
         \x20 print(c.get('classname'), c.get('name'), c.get('time'), c.get('line'),\n\
         \x20       f.get('message') + ' | ' + f.text if f is not None else 'ok')\n\
         for p in root.find('testsuite').find('properties'): print(p.get('name'), p.get('value'))",
    );
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines[0], "testsuites 2 1");
    assert_eq!(lines[1], "career_path_navigator 2.0.0 2 1");
    assert_eq!(lines[2], "career_path_navigator.2.0.0 passes 0.500 3 ok");
    assert_eq!(
        lines[3],
        "career_path_navigator.2.0.0 fails 0.500 3 passed 1 of 2 runs (50%), needs 100% | \
         run 2: /assertions/0 contains: did not find \"paths\""
    );
    assert!(lines.contains(&"pass_rate 0.5"), "{printed}");
    assert!(lines.contains(&"min_pass_rate 1"), "{printed}");
}

#[test]
fn a_call_error_is_listed_in_the_failure() {
    let mut failed = run(1, false, vec![]);
    failed.error = Some(RunError {
        kind: ErrorKind::BudgetExceeded,
        message: "the daily budget is spent".into(),
    });
    let case = case("broke", vec![failed]);
    assert_eq!(
        case.failure_reasons(),
        ["run 1: error [budget_exceeded]: the daily budget is spent"]
    );
}

#[test]
fn the_same_reason_on_several_runs_is_one_line_naming_the_runs() {
    let failing = || vec![assertion(2, GradeOutcome::Fail, "found \"lorem\"")];
    let case = case(
        "repeats",
        vec![
            run(1, false, failing()),
            run(2, true, vec![]),
            run(3, false, failing()),
        ],
    );
    assert_eq!(
        case.failure_reasons(),
        ["runs 1, 3: /assertions/2 contains: found \"lorem\""]
    );
}

#[test]
fn a_run_below_the_cases_threshold_says_so_before_its_failing_assertions() {
    let mut failed = run(
        1,
        false,
        vec![assertion(2, GradeOutcome::Fail, "did not find \"zzz\"")],
    );
    failed.score = Some(2.0 / 3.0);
    let mut case = case("case-threshold-fail", vec![failed]);
    case.threshold = Some(0.9);
    assert_eq!(
        case.failure_reasons(),
        [
            "run 1: score 0.67 below the case's threshold 0.90",
            "run 1: /assertions/2 contains: did not find \"zzz\"",
        ]
    );
}

#[test]
fn a_score_just_below_the_threshold_is_shown_with_four_decimals() {
    let mut failed = run(1, false, vec![]);
    failed.score = Some(0.8999);
    let mut case = case("close", vec![failed]);
    case.threshold = Some(0.9);
    assert_eq!(
        case.failure_reasons(),
        ["run 1: score 0.8999 below the case's threshold 0.9000"]
    );
}

#[test]
fn a_weight_zero_assertion_is_never_a_reason() {
    let mut informational = assertion(1, GradeOutcome::Fail, "did not find \"zzz\"");
    informational.weight = 0.0;
    let failing = assertion(0, GradeOutcome::Fail, "did not find \"paths\"");
    let case = case("weights", vec![run(1, false, vec![failing, informational])]);
    assert_eq!(
        case.failure_reasons(),
        ["run 1: /assertions/0 contains: did not find \"paths\""]
    );
}

#[test]
fn markup_characters_become_entities() {
    assert_eq!(
        attribute("a<b>&\"c\"'"),
        "a&lt;b&gt;&amp;&quot;c&quot;&apos;"
    );
    assert_eq!(text("x\ny\tz"), "x\ny\tz");
    assert_eq!(attribute("x\ny\tz\r"), "x&#10;y&#9;z&#13;");
}

#[test]
fn characters_xml_cannot_carry_are_shown_as_text() {
    assert_eq!(
        text("nul\0 esc\u{1b} \u{fffe}"),
        "nul\\u{0} esc\\u{1b} \\u{fffe}"
    );
}

#[test]
fn a_document_full_of_hostile_text_parses() {
    let hostile: String = (0u32..0x300)
        .chain([0xD7FF, 0xE000, 0xFFFD, 0xFFFE, 0xFFFF, 0x10000, 0x10FFFF])
        .filter_map(char::from_u32)
        .collect();
    let report = report(vec![case(
        &hostile,
        vec![run(
            1,
            false,
            vec![assertion(0, GradeOutcome::Fail, &format!("]]> {hostile}"))],
        )],
    )]);
    let printed = parse_with_python(
        &report.to_junit(),
        "import sys, xml.etree.ElementTree as E\n\
         c = next(E.fromstring(sys.stdin.buffer.read()).iter('testcase'))\n\
         sys.stdout.buffer.write((c.get('name') + '\\x00' + c.find('failure').text).encode('utf-8', 'surrogatepass'))",
    );
    let (name, failure) = printed.split_once('\0').unwrap();
    assert_eq!(name, visible(&hostile));
    assert_eq!(
        failure,
        format!("run 1: /assertions/0 contains: ]]> {}", visible(&hostile))
    );
}

proptest! {
    #[test]
    fn escaping_any_string_gives_only_xml_characters_and_no_raw_markup(value in any::<String>()) {
        for escaped in [attribute(&value), text(&value)] {
            prop_assert!(escaped.chars().all(is_xml_char), "{escaped:?}");
            prop_assert!(!escaped.contains('<') && !escaped.contains('>'));
            prop_assert!(!escaped.contains('"') && !escaped.contains('\''));
            // Every `&` starts one of the entities or references written.
            for (at, _) in escaped.match_indices('&') {
                let rest = &escaped[at..];
                prop_assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#9;", "&#10;", "&#13;"]
                        .iter()
                        .any(|entity| rest.starts_with(entity)),
                    "{rest:?}"
                );
            }
        }
        prop_assert!(!attribute(&value).contains(['\n', '\t', '\r']));
    }

    #[test]
    fn escaping_keeps_every_character_xml_can_carry(value in any::<String>()) {
        prop_assert_eq!(unescape(&attribute(&value)), visible(&value));
        prop_assert_eq!(unescape(&text(&value)), visible(&value));
    }
}

proptest! {
    // Each case starts a Python process: fewer cases, each a whole document.
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn any_case_id_and_reason_give_a_well_formed_document(
        id in any::<String>(),
        reason in any::<String>(),
    ) {
        let report = report(vec![case(
            &id,
            vec![run(1, false, vec![assertion(0, GradeOutcome::Fail, &reason)])],
        )]);
        let printed = parse_with_python(
            &report.to_junit(),
            "import sys, xml.etree.ElementTree as E\n\
             c = next(E.fromstring(sys.stdin.buffer.read()).iter('testcase'))\n\
             sys.stdout.buffer.write(c.get('name').encode('utf-8'))",
        );
        prop_assert_eq!(printed, visible(&id));
    }
}
