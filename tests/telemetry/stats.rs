//! `stats` against `tests/data/telemetry_fixture.jsonl`, a hand-written log of two features: an
//! experiment (`cpn-json-output` on career_path_navigator, control 2.0.0 and treatment 2.1.0),
//! requests a targeting rule sent to 2.0.0, and cover_letter 1.0.0, over two days, with errors,
//! feedback (one line carrying the wrong variant, one about a request not in the file, one with
//! a string value), other event kinds, one garbage line and a truncated last line. Every figure
//! asserted here is worked out by hand from the lines, in the comments next to it.
//!
//! The requests, as (latency ms, cost USD, input tokens, output tokens):
//!
//! control    c1 900 .0020 1000/400 technology   c5 1300 .0021 1000/400 retail
//!            c2 1100 .0022 1000/400 finance     c6  800 .0020 1000/400 technology
//!            c3 1000 .0019 1000/400 technology  c7 error (150 ms) finance
//!            c4 error (30000 ms) education      c8 1200 .0018 1000/400 education
//! treatment  t1 700 .0012 1000/300 technology   t5 error (2 ms) retail
//!            t2 1250 .0013 1000/300 finance     t6 1150 .0014 1000/300 finance (anthropic)
//!            t3 950 .0011 1000/300 education    t7  850 .0010 1000/300 technology
//!            t4 1050 .0012 1000/300 technology  t8  900 .0012 1000/300 education
//! rule       r1 1500 .0040 1000/500 (Nov 26)   r2 1700 .0044 1100/550   r3 1600 .0042 1050/520
//!            all healthcare
//! cover      k1 400 .0005 500/200 technology (Nov 26)   k2 600 .0007 600/250 finance (Nov 26)
//! letter     k3 500 .0006 550/220 (no attributes)       k4 error (20000 ms) healthcare
//!            k5 450 .00055 520/210 technology
//!
//! Feedback: thumbs_up c1 true, c2 false (its line says treatment), c3 false, c5 true, t1 true,
//! t2 true, t3 true, t4 false, t6 true, k1 true (sent Nov 27 about a Nov 26 request), and
//! req-gone true (no such request); rating c1 4, c3 3, c6 4, t1 5, t2 4, t6 5; comment t3 (text).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use prompt_config::telemetry::stats::significance::student_t_cdf;
use prompt_config::telemetry::stats::{
    GroupStats, MetricComparison, StatisticalTest, StatsError, StatsOptions, StatsReport, analyze,
    parse_since,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/telemetry_fixture.jsonl")
}

fn analyze_fixture(by: &[&str], since: Option<&str>) -> StatsReport {
    let options = StatsOptions::default()
        .with_by(by.iter().map(|name| name.to_string()).collect())
        .with_since(since.map(|text| parse_since(text).unwrap()));
    analyze(&[fixture()], &options).unwrap()
}

fn default_report() -> StatsReport {
    analyze(&[fixture()], &StatsOptions::default()).unwrap()
}

fn group<'report>(report: &'report StatsReport, key: &[&str]) -> &'report GroupStats {
    report
        .group(key)
        .unwrap_or_else(|| panic!("no group {key:?} in {:?}", report.groups))
}

fn metric<'report>(report: &'report StatsReport, name: &str) -> &'report MetricComparison {
    report
        .experiment("career_path_navigator", "cpn-json-output")
        .and_then(|experiment| experiment.against("treatment"))
        .and_then(|comparison| comparison.metric(name))
        .unwrap_or_else(|| panic!("no comparison of {name}"))
}

fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} differs from {expected} by more than {tolerance}"
    );
}

#[test]
fn counts_lines_and_skips_the_garbage_line_and_the_truncated_last_line() {
    let report = default_report();
    // 48 lines: 24 llm.request, 18 feedback, 4 other events, the garbage and the truncated one.
    assert_eq!(report.lines_read, 48);
    assert_eq!(report.lines_skipped, 2);
    assert_eq!(report.requests, 24);
    // 18 feedback lines less the one about req-gone.
    assert_eq!(report.feedback_events, 17);
    assert_eq!(report.feedback_unmatched, 1);
    assert_eq!(report.dropped_before_since, 0);
}

#[test]
fn groups_by_feature_version_and_variant_by_default_with_a_dash_for_no_variant() {
    let report = default_report();
    let keys: Vec<Vec<&str>> = report
        .groups
        .iter()
        .map(|group| group.key.iter().map(|(_, value)| value.as_str()).collect())
        .collect();
    assert_eq!(
        keys,
        [
            ["career_path_navigator", "2.0.0", "-"],
            ["career_path_navigator", "2.0.0", "control"],
            ["career_path_navigator", "2.1.0", "treatment"],
            ["cover_letter", "1.0.0", "-"],
        ]
    );
    assert_eq!(report.groups[0].value("variant"), Some("-"));
}

#[test]
fn control_group_figures_match_a_count_by_hand() {
    let report = default_report();
    let control = group(&report, &["career_path_navigator", "2.0.0", "control"]);
    // c1..c8; c4 and c7 failed.
    assert_eq!((control.requests, control.errors), (8, 2));
    assert_eq!(control.error_rate, 0.25);
    // Successful latencies sorted: 800 900 1000 1100 1200 1300. Nearest rank of n = 6:
    // p50 → ceil(3.0) = 3rd = 1000, p95 → ceil(5.7) = 6th = 1300, p99 → ceil(5.94) = 6th.
    let latency = control.latency_ms.unwrap();
    assert_eq!(
        (latency.p50, latency.p95, latency.p99),
        (1000.0, 1300.0, 1300.0)
    );
    // 6300 / 6.
    assert_eq!(control.mean_latency_ms, Some(1050.0));
    // Six successes of 1000 in and 400 out; the failures used none.
    assert_eq!((control.input_tokens, control.output_tokens), (6000, 2400));
    // .0020 + .0022 + .0019 + .0021 + .0020 + .0018 = .0120, over 6 successes = .0020.
    assert_close(control.cost_usd, 0.0120, 1e-12);
    assert_close(control.mean_cost_usd.unwrap(), 0.0020, 1e-12);
}

#[test]
fn treatment_group_figures_match_a_count_by_hand() {
    let report = default_report();
    let treatment = group(&report, &["career_path_navigator", "2.1.0", "treatment"]);
    // t1..t8; t5 hit the budget.
    assert_eq!((treatment.requests, treatment.errors), (8, 1));
    assert_eq!(treatment.error_rate, 0.125);
    // Sorted: 700 850 900 950 1050 1150 1250. n = 7: p50 → ceil(3.5) = 4th = 950,
    // p95 → ceil(6.65) = 7th = 1250, p99 → ceil(6.93) = 7th.
    let latency = treatment.latency_ms.unwrap();
    assert_eq!(
        (latency.p50, latency.p95, latency.p99),
        (950.0, 1250.0, 1250.0)
    );
    // 6850 / 7 = 978.571...
    assert_close(treatment.mean_latency_ms.unwrap(), 6850.0 / 7.0, 1e-9);
    assert_eq!(
        (treatment.input_tokens, treatment.output_tokens),
        (7000, 2100)
    );
    // .0012 + .0013 + .0011 + .0012 + .0014 + .0010 + .0012 = .0084, over 7 = .0012.
    assert_close(treatment.cost_usd, 0.0084, 1e-12);
    assert_close(treatment.mean_cost_usd.unwrap(), 0.0012, 1e-12);
}

#[test]
fn groups_outside_the_experiment_match_a_count_by_hand() {
    let report = default_report();
    let rule = group(&report, &["career_path_navigator", "2.0.0", "-"]);
    // r1 r2 r3: sorted 1500 1600 1700; p50 → ceil(1.5) = 2nd = 1600, p95 and p99 → 3rd.
    assert_eq!((rule.requests, rule.errors), (3, 0));
    let latency = rule.latency_ms.unwrap();
    assert_eq!(
        (latency.p50, latency.p95, latency.p99),
        (1600.0, 1700.0, 1700.0)
    );
    // 1000 + 1100 + 1050 in, 500 + 550 + 520 out; .0040 + .0044 + .0042 = .0126.
    assert_eq!((rule.input_tokens, rule.output_tokens), (3150, 1570));
    assert_close(rule.cost_usd, 0.0126, 1e-12);
    assert!(rule.feedback.is_empty());

    let cover_letter = group(&report, &["cover_letter", "1.0.0", "-"]);
    // k1..k5, k4 failed: 1 / 5. Successes sorted 400 450 500 600: p50 → 2nd = 450,
    // p95 → ceil(3.8) = 4th = 600.
    assert_eq!((cover_letter.requests, cover_letter.errors), (5, 1));
    assert_eq!(cover_letter.error_rate, 0.2);
    let latency = cover_letter.latency_ms.unwrap();
    assert_eq!((latency.p50, latency.p95), (450.0, 600.0));
    // 500 + 600 + 550 + 520 = 2170 in, 200 + 250 + 220 + 210 = 880 out;
    // .0005 + .0007 + .0006 + .00055 = .00235, over 4 = .0005875.
    assert_eq!(
        (cover_letter.input_tokens, cover_letter.output_tokens),
        (2170, 880)
    );
    assert_close(cover_letter.cost_usd, 0.00235, 1e-12);
    assert_close(cover_letter.mean_cost_usd.unwrap(), 0.0005875, 1e-12);
}

#[test]
fn feedback_means_count_booleans_as_one_and_zero_and_leave_out_text() {
    let report = default_report();
    let control = group(&report, &["career_path_navigator", "2.0.0", "control"]);
    // thumbs_up c1 1, c2 0, c3 0, c5 1 → 2 / 4; rating 4, 3, 4 → 11 / 3.
    let thumbs_up = control.feedback("thumbs_up").unwrap();
    assert_eq!((thumbs_up.count, thumbs_up.mean), (4, 0.5));
    let rating = control.feedback("rating").unwrap();
    assert_eq!(rating.count, 3);
    assert_close(rating.mean, 11.0 / 3.0, 1e-12);

    let treatment = group(&report, &["career_path_navigator", "2.1.0", "treatment"]);
    // thumbs_up t1 1, t2 1, t3 1, t4 0, t6 1 → 4 / 5; rating 5, 4, 5 → 14 / 3; no comment.
    let thumbs_up = treatment.feedback("thumbs_up").unwrap();
    assert_eq!((thumbs_up.count, thumbs_up.mean), (5, 0.8));
    assert_close(
        treatment.feedback("rating").unwrap().mean,
        14.0 / 3.0,
        1e-12,
    );
    assert_eq!(treatment.feedback("comment"), None);

    let cover_letter = group(&report, &["cover_letter", "1.0.0", "-"]);
    assert_eq!(cover_letter.feedback("thumbs_up").unwrap().count, 1);
}

#[test]
fn feedback_is_attributed_by_its_request_id_not_by_the_variant_on_its_own_line() {
    // req-c2's thumbs_up (false) says "treatment" on its line; counted there, the treatment
    // would have 4 / 6 and the control 2 / 3.
    let report = default_report();
    let control = group(&report, &["career_path_navigator", "2.0.0", "control"]);
    let treatment = group(&report, &["career_path_navigator", "2.1.0", "treatment"]);
    assert_eq!(control.feedback("thumbs_up").unwrap().count, 4);
    assert_eq!(treatment.feedback("thumbs_up").unwrap().count, 5);
}

#[test]
fn groups_by_an_allow_listed_attribute() {
    let report = analyze_fixture(&["sector"], None);
    let sectors: Vec<&str> = report
        .groups
        .iter()
        .filter_map(|group| group.value("sector"))
        .collect();
    // k3 has no attributes.
    assert_eq!(
        sectors,
        [
            "-",
            "education",
            "finance",
            "healthcare",
            "retail",
            "technology"
        ]
    );
    let technology = group(&report, &["technology"]);
    // c1 c3 c6 t1 t4 t7 k1 k5, none failed. Sorted 400 450 700 800 850 900 1000 1050:
    // p50 → 4th = 800, p95 → ceil(7.6) = 8th = 1050.
    assert_eq!((technology.requests, technology.errors), (8, 0));
    let latency = technology.latency_ms.unwrap();
    assert_eq!((latency.p50, latency.p95), (800.0, 1050.0));
    // .0020 + .0019 + .0020 + .0012 + .0012 + .0010 + .0005 + .00055 = .01035.
    assert_close(technology.cost_usd, 0.01035, 1e-12);
    // thumbs_up c1 1, c3 0, t1 1, t4 0, k1 1 → 3 / 5; rating c1 4, c3 3, c6 4, t1 5 → 4.
    assert_close(technology.feedback("thumbs_up").unwrap().mean, 0.6, 1e-12);
    assert_eq!(technology.feedback("rating").unwrap().mean, 4.0);
    // r1 r2 r3 k4; k4 failed.
    let healthcare = group(&report, &["healthcare"]);
    assert_eq!((healthcare.requests, healthcare.errors), (4, 1));
    // c2 t2 t6 c7 k2; c7 failed. c4 t3 c8 t8; c4 failed. c5 t5; t5 failed.
    assert_eq!(
        (
            group(&report, &["finance"]).requests,
            group(&report, &["finance"]).errors
        ),
        (5, 1)
    );
    assert_eq!(group(&report, &["education"]).requests, 4);
    assert_eq!(group(&report, &["retail"]).error_rate, 0.5);
}

#[test]
fn groups_by_provider_and_model_use_the_model_that_answered_or_was_tried_last() {
    let report = analyze_fixture(&["provider", "model"], None);
    // Haiku: c4 (failed over and failed) and t6.
    let haiku = group(&report, &["anthropic", "claude-3-5-haiku-20241022"]);
    assert_eq!((haiku.requests, haiku.errors), (2, 1));
    // gpt-4o-mini: the other 14 experiment requests.
    assert_eq!(group(&report, &["openai", "gpt-4o-mini"]).requests, 14);
}

#[test]
fn since_a_date_drops_older_requests_and_the_feedback_about_them() {
    let report = analyze_fixture(&["feature", "version", "variant"], Some("2026-11-27"));
    // k1, r1 and k2 are from Nov 26; k1's thumbs_up came after midnight but follows k1.
    assert_eq!(report.requests, 21);
    assert_eq!(report.dropped_before_since, 4);
    assert_eq!(report.feedback_events, 16);
    assert_eq!(report.feedback_unmatched, 1);
    let cover_letter = group(&report, &["cover_letter", "1.0.0", "-"]);
    // k3, k4 (failed), k5: sorted 450 500; p50 → 1st = 450.
    assert_eq!((cover_letter.requests, cover_letter.errors), (3, 1));
    assert_eq!(cover_letter.latency_ms.unwrap().p50, 450.0);
    assert!(cover_letter.feedback.is_empty());
    assert_eq!(
        group(&report, &["career_path_navigator", "2.0.0", "-"]).requests,
        2
    );
}

#[test]
fn since_a_timestamp_keeps_events_at_that_very_instant() {
    let report = analyze_fixture(&["variant"], Some("2026-11-27T08:10:00Z"));
    // From t5 (08:10:00) on: t5 r2 c6 t6 k3 c7 t7 k4 c8 t8 r3 k5.
    assert_eq!(report.requests, 12);
    assert_eq!(group(&report, &["control"]).requests, 3);
    assert_eq!(group(&report, &["treatment"]).requests, 4);
}

#[test]
fn since_accepts_rfc_3339_with_an_offset_or_a_plain_date() {
    assert_eq!(
        parse_since("2026-11-27T10:10:00+02:00").unwrap(),
        parse_since("2026-11-27T08:10:00Z").unwrap()
    );
    assert_eq!(
        parse_since("2026-11-27").unwrap().to_rfc3339(),
        "2026-11-27T00:00:00+00:00"
    );
    assert!(matches!(
        parse_since("last tuesday"),
        Err(StatsError::InvalidSince(text)) if text == "last tuesday"
    ));
}

#[test]
fn a_rotated_file_and_the_current_one_read_together_give_the_same_figures() {
    let directory = std::env::temp_dir().join(format!("telemetry-stats-{}", std::process::id()));
    fs::create_dir_all(&directory).unwrap();
    let text = fs::read_to_string(fixture()).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    // Lines 1-22 (through the garbage line) went to the rotated file; the feedback on lines
    // 23-26 is about t2 and c3, whose requests are in it.
    let rotated = directory.join("telemetry.jsonl.1");
    let current = directory.join("telemetry.jsonl");
    fs::write(&rotated, lines[..22].concat()).unwrap();
    fs::write(&current, lines[22..].concat()).unwrap();

    // Newest first, as a shell glob might list them: order must not matter.
    let split = analyze(
        &[current.clone(), rotated.clone()],
        &StatsOptions::default(),
    )
    .unwrap();
    let whole = default_report();
    fs::remove_dir_all(&directory).unwrap();

    assert_eq!(split.files.len(), 2);
    assert_eq!(
        (split.files[0].lines_read, split.files[0].lines_skipped),
        (26, 1)
    );
    assert_eq!(
        (split.files[1].lines_read, split.files[1].lines_skipped),
        (22, 1)
    );
    assert_eq!((split.lines_read, split.lines_skipped), (48, 2));
    assert_eq!(split.groups, whole.groups);
    assert_eq!(split.experiments, whole.experiments);
}

#[test]
fn a_missing_file_is_an_error_that_names_it() {
    let missing = PathBuf::from("tests/data/no-such-telemetry.jsonl");
    let error = analyze(&[fixture(), missing], &StatsOptions::default()).unwrap_err();
    assert!(matches!(error, StatsError::Read { .. }));
    assert!(
        error
            .to_string()
            .starts_with("cannot read tests/data/no-such-telemetry.jsonl: "),
        "{error}"
    );
}

// Reference p-values: Python 3, `math.erfc(abs(z) / math.sqrt(2))` for z-tests; for Welch, the
// two-sided tail 1 - 2 ∫_0^|t| f(x) dx with f the t density
// exp(lgamma((ν+1)/2) - lgamma(ν/2) - ln(νπ)/2 - (ν+1)/2 · log1p(x²/ν)), by Simpson's rule with
// 200,000 steps, and `statistics.mean` / `statistics.variance` for the inputs. The sample sizes
// use (1.959964 √(2 p̄ q̄) + 0.841621 √(p1 q1 + p2 q2))² / (p1 - p2)² for proportions and
// (1.959964 + 0.841621)² (s1² + s2²) / (m1 - m2)² for means.

#[test]
fn error_rate_comparison_is_a_z_test_matching_python() {
    let report = default_report();
    let error_rate = metric(&report, "error_rate");
    assert_eq!(error_rate.test, StatisticalTest::TwoProportionZ);
    // 2 / 8 against 1 / 8: pooled 3/16, se = √(3/16 · 13/16 · 2/8) = 0.195156, z = -0.640513.
    assert_eq!(
        (error_rate.control_count, error_rate.treatment_count),
        (8, 8)
    );
    assert_eq!(error_rate.difference, Some(-0.125));
    assert_close(error_rate.statistic.unwrap(), -0.6405126152203485, 1e-12);
    assert_close(error_rate.p_value.unwrap(), 0.5218393903336155, 1e-7);
    // 151.87 → 152 per variant.
    assert_eq!(error_rate.required_per_variant, Some(152));
}

#[test]
fn thumbs_up_rate_comparison_is_a_z_test_matching_python() {
    let report = default_report();
    let thumbs_up = metric(&report, "feedback.thumbs_up");
    assert_eq!(thumbs_up.test, StatisticalTest::TwoProportionZ);
    // 2 / 4 against 4 / 5: pooled 6/9, se = √(2/9 · 9/20) = √0.1, z = 0.3 / √0.1 = 0.948683.
    assert_eq!(thumbs_up.control_value, Some(0.5));
    assert_eq!(thumbs_up.treatment_value, Some(0.8));
    assert_close(thumbs_up.statistic.unwrap(), 0.9486832980505139, 1e-12);
    assert_close(thumbs_up.p_value.unwrap(), 0.3427817111479114, 1e-7);
    // 38.48 → 39.
    assert_eq!(thumbs_up.required_per_variant, Some(39));
}

#[test]
fn latency_and_cost_comparisons_are_welch_tests_matching_python() {
    let report = default_report();
    let latency = metric(&report, "latency_ms");
    assert_eq!(latency.test, StatisticalTest::WelchT);
    // Means 1050 (variance 35000) and 978.571 (variance 34880.95), n = 6 and 7.
    assert_close(latency.statistic.unwrap(), -0.6868028197434453, 1e-10);
    assert_close(
        latency.degrees_of_freedom.unwrap(),
        10.690215030934539,
        1e-9,
    );
    assert_close(latency.p_value.unwrap(), 0.5068317000855813, 1e-9);
    // 107.50 → 108.
    assert_eq!(latency.required_per_variant, Some(108));

    let cost = metric(&report, "cost_usd");
    // Means .0020 (variance 2e-8) and .0012 (variance 1.667e-8): t = -10.583, df = 10.31.
    assert_close(cost.statistic.unwrap(), -10.583005244258365, 1e-8);
    assert_close(cost.degrees_of_freedom.unwrap(), 10.310262529832933, 1e-8);
    assert_close(cost.p_value.unwrap(), 7.29639074e-07, 1e-12);
    assert_close(cost.relative_difference.unwrap(), -0.4, 1e-12);
}

#[test]
fn numeric_feedback_comparison_is_a_welch_test_matching_python() {
    let report = default_report();
    let rating = metric(&report, "feedback.rating");
    assert_eq!(rating.test, StatisticalTest::WelchT);
    // 4 3 4 against 5 4 5: variances 1/3 each, t = 1 / √(2/9) = 2.12132, df = 4.
    assert_close(rating.statistic.unwrap(), 2.1213203435596437, 1e-12);
    assert_close(rating.degrees_of_freedom.unwrap(), 4.0, 1e-12);
    assert_close(rating.p_value.unwrap(), 0.10119150721829995, 1e-10);
    // Cross-check through the CDF: p = 2 (1 - F(2.12132; 4)).
    assert_close(
        rating.p_value.unwrap(),
        2.0 * (1.0 - student_t_cdf(2.1213203435596437, 4.0)),
        1e-12,
    );
    // 5.23 → 6.
    assert_eq!(rating.required_per_variant, Some(6));
}

#[test]
fn verdicts_say_what_the_data_supports() {
    let report = default_report();
    assert_eq!(
        metric(&report, "cost_usd").verdict,
        "treatment is 40% cheaper than control (p < 0.001)"
    );
    // 152 needed, 8 each so far.
    assert_eq!(
        metric(&report, "error_rate").verdict,
        "no significant difference yet in error rate (p = 0.522); about 144 more requests per variant needed for 80% power at alpha 0.05"
    );
    // 108 needed, min(6, 7) successful so far.
    assert_eq!(
        metric(&report, "latency_ms").verdict,
        "no significant difference yet in latency (p = 0.507); about 102 more successful requests per variant needed for 80% power at alpha 0.05"
    );
    // 39 needed, min(4, 5) so far.
    assert_eq!(
        metric(&report, "feedback.thumbs_up").verdict,
        "no significant difference yet in thumbs_up rate (p = 0.343); about 35 more thumbs_up feedback events per variant needed for 80% power at alpha 0.05"
    );
}

#[test]
fn experiments_are_compared_over_all_their_requests_whatever_the_grouping() {
    let report = analyze_fixture(&["sector"], None);
    let experiment = report
        .experiment("career_path_navigator", "cpn-json-output")
        .unwrap();
    assert_eq!(experiment.control, "control");
    // c1..c8 and t1..t8, though the groups are cut by sector.
    let requests: Vec<u64> = experiment
        .variants
        .iter()
        .map(|variant| variant.requests)
        .collect();
    assert_eq!(requests, [8, 8]);
    assert_eq!(experiment.variants[1].versions, ["2.1.0"]);
    assert_eq!(report.experiments, default_report().experiments);
}

#[test]
fn the_text_report_prints_aligned_tables() {
    let text = default_report().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "read 48 lines from 1 file, skipped 2 unparseable; 24 requests, 17 feedback events; 1 feedback event about requests in none of these files"
    );
    let header = lines
        .iter()
        .position(|line| line.starts_with("feature"))
        .unwrap();
    // Each number column ends where its header does.
    let requests_end = lines[header].find("requests").unwrap() + "requests".len();
    let control = lines[header + 2];
    assert!(
        control.starts_with("career_path_navigator  2.0.0    control"),
        "{text}"
    );
    assert_eq!(&control[requests_end - 1..requests_end], "8", "{text}");
    assert!(
        control.ends_with("rating 3.67 (3), thumbs_up 0.50 (4)"),
        "{text}"
    );
    assert!(
        text.contains("experiment cpn-json-output on career_path_navigator (control: control)")
    );
    assert!(
        text.contains("    - treatment is 40% cheaper than control (p < 0.001)"),
        "{text}"
    );
    assert!(lines.iter().all(|line| !line.ends_with(' ')), "{text}");
}

#[test]
fn the_command_prints_the_report_as_json() {
    let output = Command::new(env!("CARGO_BIN_EXE_prompt-config"))
        .args(["stats", "tests/data/telemetry_fixture.jsonl", "--json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["lines_read"], 48);
    assert_eq!(json["lines_skipped"], 2);
    assert_eq!(json["requests"], 24);
    assert_eq!(
        json["by"],
        serde_json::json!(["feature", "version", "variant"])
    );
    assert_eq!(
        json["groups"][1]["key"],
        serde_json::json!({"feature": "career_path_navigator", "version": "2.0.0", "variant": "control"})
    );
    assert_eq!(json["groups"][1]["latency_ms"]["p95"], 1300.0);
    let metrics = &json["experiments"][0]["comparisons"][0]["metrics"];
    assert_eq!(metrics[2]["metric"], "cost_usd");
    assert_eq!(
        metrics[2]["verdict"],
        "treatment is 40% cheaper than control (p < 0.001)"
    );
}

#[test]
fn the_command_groups_by_an_attribute_and_filters_by_date() {
    let output = Command::new(env!("CARGO_BIN_EXE_prompt-config"))
        .args([
            "stats",
            "tests/data/telemetry_fixture.jsonl",
            "--by",
            "sector",
            "--since",
            "2026-11-27",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("4 events before 2026-11-27T00:00:00Z left out"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|line| line.starts_with("sector ")),
        "{stdout}"
    );
}

#[test]
fn stats_show_how_much_of_the_spend_is_estimated() {
    // Three requests of one feature: $0.50 reported, $0.25 and $0.05 estimated (no usage).
    let line = |id: &str, cost: f64, estimated: bool| {
        let mut line = serde_json::json!({
            "schema_version": 1, "timestamp": "2026-11-27T10:00:00.000Z", "event": "llm.request",
            "request_id": id, "gen_ai.prompt.name": "summary", "gen_ai.prompt.version": "1.0.0",
            "prompt_config.outcome": "success", "prompt_config.latency_ms": 100.0,
            "prompt_config.cost_usd": cost,
        });
        if estimated {
            line["prompt_config.cost_estimated"] = serde_json::json!(true);
        }
        format!("{line}\n")
    };
    let directory =
        std::env::temp_dir().join(format!("telemetry-stats-estimated-{}", std::process::id()));
    fs::create_dir_all(&directory).unwrap();
    let path = directory.join("telemetry.jsonl");
    let log = [
        line("a", 0.5, false),
        line("b", 0.25, true),
        line("c", 0.05, true),
    ];
    fs::write(&path, log.concat()).unwrap();
    let report = analyze(&[path], &StatsOptions::default()).unwrap();
    fs::remove_dir_all(&directory).unwrap();

    let summary = group(&report, &["summary", "1.0.0", "-"]);
    assert!((summary.cost_usd - 0.8).abs() < 1e-12);
    assert!((summary.estimated_cost_usd - 0.3).abs() < 1e-12);
    assert_eq!(summary.cost_estimated_requests, 2);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["groups"][0]["cost_estimated_requests"], 2);
    let text = report.to_string();
    assert!(
        text.contains(
            "$0.300000 of $0.800000 is estimated: 2 requests without reported usage or price"
        ),
        "{text}"
    );
    assert!(text.contains("$ estimated"), "{text}");
}
