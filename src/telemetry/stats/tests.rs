//! Unit tests: the special functions against closed forms and independently computed values,
//! the tests and sample sizes against textbook cases, nearest-rank percentiles, the selection
//! rules, and the verdict wording.

use chrono::{DateTime, TimeZone, Utc};

use super::compare::compare_experiments;
use super::read::{Feedback, FeedbackValue, Request, Selection, Telemetry, select};
use super::significance::{
    SampleSummary, erfc, ln_gamma, means_sample_size, normal_cdf, proportions_sample_size,
    regularized_incomplete_beta, student_t_cdf, two_proportion_z_test, welch_t_test,
};
use super::significance::{mcnemar, nearest_rank};

fn assert_close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} differs from {expected} by more than {tolerance}"
    );
}

// Reference values below come from Python 3's `math.erfc` (exact to double precision) and, for
// Student's t, from Simpson's rule on the t density built with `math.lgamma` (200,000 steps),
// cross-checked with mpmath's `betainc` at 30 digits.

#[test]
fn erfc_is_within_its_stated_fractional_error_of_python_math_erfc() {
    for (x, expected) in [
        (0.0, 1.0),
        (0.5, 0.4795001221869535),
        (1.0, 0.15729920705028513),
        (-1.0, 1.8427007929497148),
        (3.0, 2.209049699858544e-05),
        (5.0, 1.537_459_794_428_03e-12),
    ] {
        assert_close(erfc(x), expected, 1.2e-7 * expected);
    }
}

#[test]
fn normal_cdf_matches_known_points() {
    // erfc(0) comes out 1 + 3e-8: within the approximation's error, not exact.
    assert_close(normal_cdf(0.0), 0.5, 1e-7);
    assert_close(normal_cdf(1.0), 0.8413447460685429, 1e-7);
    assert_close(normal_cdf(1.959963984540054), 0.975, 1e-7);
    assert_close(normal_cdf(-2.5), 0.006209665325776139, 1e-9);
    assert_close(normal_cdf(3.5), 0.9997673709209645, 1e-7);
}

#[test]
fn normal_cdf_is_symmetric_about_zero() {
    for x in [0.3, 1.2, 2.7, 4.1] {
        assert_close(normal_cdf(x) + normal_cdf(-x), 1.0, 1e-12);
    }
}

#[test]
fn ln_gamma_matches_factorials_and_the_square_root_of_pi() {
    // Γ(n) = (n - 1)!, Γ(1/2) = √π, Γ(3/2) = √π / 2.
    assert_close(ln_gamma(1.0), 0.0, 1e-13);
    assert_close(ln_gamma(5.0), 24f64.ln(), 1e-13);
    assert_close(ln_gamma(11.0), 3_628_800f64.ln(), 1e-12);
    assert_close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-13);
    assert_close(
        ln_gamma(1.5),
        (std::f64::consts::PI.sqrt() / 2.0).ln(),
        1e-13,
    );
    assert_close(ln_gamma(0.1), 9.513507698668732f64.ln(), 1e-12);
}

#[test]
fn incomplete_beta_matches_its_closed_forms() {
    for x in [0.05, 0.3, 0.5, 0.77, 0.99] {
        // I_x(a, 1) = x^a and I_x(1, b) = 1 - (1 - x)^b.
        assert_close(regularized_incomplete_beta(3.5, 1.0, x), x.powf(3.5), 1e-12);
        assert_close(
            regularized_incomplete_beta(1.0, 2.5, x),
            1.0 - (1.0 - x).powf(2.5),
            1e-12,
        );
        // I_x(a, b) = 1 - I_{1-x}(b, a).
        assert_close(
            regularized_incomplete_beta(2.0, 7.0, x)
                + regularized_incomplete_beta(7.0, 2.0, 1.0 - x),
            1.0,
            1e-12,
        );
    }
    assert_close(regularized_incomplete_beta(40.0, 40.0, 0.5), 0.5, 1e-12);
    assert_eq!(regularized_incomplete_beta(2.0, 3.0, 0.0), 0.0);
    assert_eq!(regularized_incomplete_beta(2.0, 3.0, 1.0), 1.0);
}

#[test]
fn student_t_cdf_matches_reference_values() {
    assert_close(student_t_cdf(2.0, 10.0), 0.96330598261463, 1e-10);
    assert_close(student_t_cdf(-1.5, 4.5), 0.10010954282807676, 1e-10);
    assert_close(student_t_cdf(0.5, 30.0), 0.6896384975574364, 1e-10);
    assert_close(student_t_cdf(3.0, 2.5), 0.9637119522254841, 1e-10);
}

#[test]
fn student_t_cdf_with_one_and_two_degrees_of_freedom_matches_the_closed_forms() {
    for t in [-4.0, -1.0, -0.25, 0.0, 0.7, 1.0, 3.3, 25.0] {
        // One degree of freedom is the Cauchy distribution: 1/2 + atan(t)/π.
        let cauchy = 0.5 + f64::atan(t) / std::f64::consts::PI;
        assert_close(student_t_cdf(t, 1.0), cauchy, 1e-12);
        // Two: 1/2 + t / (2 √(2 + t²)).
        let two = 0.5 + t / (2.0 * (2.0 + t * t).sqrt());
        assert_close(student_t_cdf(t, 2.0), two, 1e-12);
    }
}

#[test]
fn student_t_cdf_approaches_the_normal_as_degrees_of_freedom_grow() {
    assert_close(student_t_cdf(1.959963984540054, 1e7), 0.975, 1e-6);
}

#[test]
fn z_test_of_two_and_eight_against_one_and_eight_matches_python() {
    // pooled = 3/16; se = √(3/16 · 13/16 · (1/8 + 1/8)) = 0.19516; z = (1/8 - 2/8) / se.
    let Some(outcome) = two_proportion_z_test(2, 8, 1, 8) else {
        panic!("both samples have trials");
    };
    assert_close(outcome.statistic, -0.6405126152203485, 1e-12);
    assert_close(outcome.p_value, 0.5218393903336155, 1e-7);
    assert_eq!(outcome.degrees_of_freedom, None);
}

#[test]
fn z_test_of_equal_proportions_has_a_p_value_of_one_not_more() {
    let Some(outcome) = two_proportion_z_test(3, 10, 3, 10) else {
        panic!("the samples vary");
    };
    assert_eq!(outcome.p_value, 1.0);
}

#[test]
fn z_test_needs_trials_and_some_variation() {
    assert_eq!(two_proportion_z_test(0, 0, 3, 10), None);
    assert_eq!(two_proportion_z_test(0, 10, 0, 12), None);
    assert_eq!(two_proportion_z_test(10, 10, 12, 12), None);
}

#[test]
fn welch_test_matches_python() {
    // means 100 and 130, variances 800/3 each; t = 30 / √(2 · (800/3) / 4) = 2.598, df = 6.
    let control = SampleSummary::of(&[100.0, 120.0, 80.0, 100.0]);
    let treatment = SampleSummary::of(&[130.0, 150.0, 110.0, 130.0]);
    let Some(outcome) = control
        .zip(treatment)
        .and_then(|(control, treatment)| welch_t_test(&control, &treatment))
    else {
        panic!("both samples have two values that vary");
    };
    assert_close(outcome.statistic, 2.5980762113533156, 1e-12);
    assert_close(outcome.degrees_of_freedom.unwrap_or(0.0), 6.0, 1e-12);
    assert_close(outcome.p_value, 0.04076740686323477, 1e-10);
}

#[test]
fn welch_test_needs_two_observations_and_some_variation() {
    let summary = |values: &[f64]| {
        SampleSummary::of(values).unwrap_or(SampleSummary {
            count: 0,
            mean: 0.0,
            variance: 0.0,
        })
    };
    assert_eq!(welch_t_test(&summary(&[1.0]), &summary(&[1.0, 2.0])), None);
    assert_eq!(
        welch_t_test(&summary(&[3.0, 3.0]), &summary(&[5.0, 5.0])),
        None
    );
    assert!(welch_t_test(&summary(&[3.0, 3.0]), &summary(&[5.0, 6.0])).is_some());
}

#[test]
fn sample_size_for_fifty_against_sixty_percent_is_the_textbook_387() {
    let Some(required) = proportions_sample_size(0.5, 0.6) else {
        panic!("the proportions differ");
    };
    assert_close(required, 387.33851669903584, 1e-9);
    assert_eq!(proportions_sample_size(0.3, 0.3), None);
}

#[test]
fn sample_size_for_a_difference_of_one_standard_deviation_is_about_sixteen() {
    // (1.95996 + 0.84162)² · (1 + 1) / 1² = 15.70.
    let control = SampleSummary {
        count: 10,
        mean: 0.0,
        variance: 1.0,
    };
    let treatment = SampleSummary {
        count: 10,
        mean: 1.0,
        variance: 1.0,
    };
    let Some(required) = means_sample_size(&control, &treatment) else {
        panic!("the means differ");
    };
    assert_close(required, 15.69776, 1e-5);
}

#[test]
fn nearest_rank_percentiles_match_the_worked_example() {
    // The usual five-value example: 30th → 20, 40th → 20, 50th → 35, 100th → 50.
    let values = [15.0, 20.0, 35.0, 40.0, 50.0];
    assert_eq!(nearest_rank(&values, 30), Some(20.0));
    assert_eq!(nearest_rank(&values, 40), Some(20.0));
    assert_eq!(nearest_rank(&values, 50), Some(35.0));
    assert_eq!(nearest_rank(&values, 100), Some(50.0));
    assert_eq!(nearest_rank(&[], 50), None);
}

#[test]
fn the_99th_percentile_of_a_hundred_values_is_the_99th_not_the_100th() {
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(nearest_rank(&values, 99), Some(99.0));
    assert_eq!(nearest_rank(&values, 95), Some(95.0));
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 8, minute, 0)
        .single()
        .unwrap_or_default()
}

fn request(id: &str, minute: u32, variant: &str, latency_ms: f64, cost_usd: f64) -> Request {
    Request {
        id: id.to_string(),
        timestamp: at(minute),
        key: vec![variant.to_string()],
        feature: "career_path_navigator".to_string(),
        experiment: Some("copy-test".to_string()),
        variant: variant.to_string(),
        version: if variant == "control" {
            "1.0.0"
        } else {
            "1.1.0"
        }
        .to_string(),
        provider: "openai".to_string(),
        model: "gpt-4o-mini".to_string(),
        failed: false,
        latency_ms: Some(latency_ms),
        cost_usd: Some(cost_usd),
        cost_estimated: false,
        input_tokens: 10,
        output_tokens: 5,
        cache_hit: None,
        cache_saved_usd: 0.0,
        cache_partition: None,
        stream: None,
        output: None,
    }
}

fn feedback(request_id: &str, minute: u32, value: FeedbackValue) -> Feedback {
    Feedback {
        request_id: request_id.to_string(),
        timestamp: at(minute),
        metric: "thumbs_up".to_string(),
        value,
    }
}

#[test]
fn since_drops_older_requests_with_their_feedback_and_counts_unknown_requests_apart() {
    let telemetry = Telemetry {
        files: Vec::new(),
        requests: vec![
            request("old", 1, "control", 100.0, 0.001),
            request("new", 5, "control", 100.0, 0.001),
        ],
        feedback: vec![
            feedback("old", 6, FeedbackValue::Boolean(true)),
            feedback("new", 6, FeedbackValue::Boolean(true)),
            feedback("elsewhere", 6, FeedbackValue::Boolean(true)),
            feedback("new", 4, FeedbackValue::Boolean(false)),
        ],
        answers: Vec::new(),
        evaluations: Vec::new(),
        evaluation_requests: 0,
    };
    let selection = select(telemetry, Some(at(5)));
    assert_eq!(selection.requests.len(), 1);
    assert_eq!(selection.feedback.len(), 1);
    assert_eq!(selection.feedback_unmatched, 1);
    // The old request, its feedback, and the feedback older than `since`.
    assert_eq!(selection.dropped_before_since, 3);
}

/// An experiment whose control and treatment have these latencies and costs.
fn experiment(control: &[(f64, f64)], treatment: &[(f64, f64)]) -> Selection {
    let mut requests = Vec::new();
    for (variant, samples) in [("control", control), ("treatment", treatment)] {
        for (index, (latency_ms, cost_usd)) in samples.iter().enumerate() {
            let id = format!("{variant}-{index}");
            requests.push(request(&id, 0, variant, *latency_ms, *cost_usd));
        }
    }
    Selection {
        requests,
        ..Selection::default()
    }
}

fn verdicts(selection: &Selection) -> Vec<String> {
    compare_experiments(selection)
        .iter()
        .flat_map(|experiment| &experiment.comparisons)
        .flat_map(|comparison| &comparison.metrics)
        .map(|metric| metric.verdict.clone())
        .collect()
}

#[test]
fn a_significant_slowdown_is_stated_with_its_size_and_p_value() {
    let selection = experiment(
        &[
            (100.0, 0.001),
            (120.0, 0.001),
            (80.0, 0.001),
            (100.0, 0.001),
        ],
        &[
            (130.0, 0.001),
            (150.0, 0.001),
            (110.0, 0.001),
            (130.0, 0.001),
        ],
    );
    assert_eq!(
        verdicts(&selection),
        [
            "no measurable difference in error rate",
            "treatment is 30% slower than control (p = 0.041)",
            "no measurable difference in cost",
        ]
    );
}

#[test]
fn means_that_differ_only_by_rounding_are_no_measurable_difference() {
    // 0.1 + 0.2 + 0.3 is 0.6000000000000001; 0.3 + 0.2 + 0.1 is 0.6.
    let selection = experiment(
        &[(0.1, 0.001), (0.2, 0.001), (0.3, 0.001)],
        &[(0.3, 0.001), (0.2, 0.001), (0.1, 0.001)],
    );
    let experiments = compare_experiments(&selection);
    let Some(latency) = experiments[0].comparisons[0].metric("latency_ms") else {
        panic!("latency is compared");
    };
    assert_eq!(latency.verdict, "no measurable difference in latency");
    assert_eq!(latency.required_per_variant, None);
}

#[test]
fn too_few_observations_to_test_are_called_that() {
    let selection = experiment(&[(100.0, 0.001), (120.0, 0.002)], &[(130.0, 0.001)]);
    let verdicts = verdicts(&selection);
    assert_eq!(
        verdicts[1],
        "not enough data yet to test latency: it needs two or more successful requests per variant, not all equal"
    );
}

#[test]
fn enough_observations_for_power_without_significance_is_said_plainly() {
    // n = 2 each, means 2 and 6, variances 2: the t-test (df = 2) gives p = 0.106 while the
    // normal-approximation sample size is 7.849 · 4 / 16 = 1.96, already met.
    let selection = experiment(&[(1.0, 0.001), (3.0, 0.001)], &[(5.0, 0.001), (7.0, 0.001)]);
    assert_eq!(
        verdicts(&selection)[1],
        "no significant difference in latency (p = 0.106) although each variant has the 2 successful requests that 80% power at alpha 0.05 needs for the observed difference"
    );
}

#[test]
fn the_control_is_the_first_variant_by_name_when_none_is_called_control() {
    let mut selection = experiment(
        &[(100.0, 0.001), (110.0, 0.001)],
        &[(100.0, 0.001), (110.0, 0.001)],
    );
    for request in &mut selection.requests {
        request.variant = request
            .variant
            .replace("control", "b-short")
            .replace("treatment", "a-long");
    }
    let experiments = compare_experiments(&selection);
    assert_eq!(experiments[0].control, "a-long");
    assert_eq!(experiments[0].comparisons[0].treatment, "b-short");
}

#[test]
fn boolean_feedback_becomes_a_rate_and_numeric_feedback_a_mean() {
    let mut selection = experiment(
        &[(100.0, 0.001), (110.0, 0.001)],
        &[(100.0, 0.001), (110.0, 0.001)],
    );
    let mut push = |index: usize, metric: &str, value: FeedbackValue| {
        let mut event = feedback("", 1, value);
        event.metric = metric.to_string();
        selection.feedback.push((index, event));
    };
    push(0, "thumbs_up", FeedbackValue::Boolean(true));
    push(2, "thumbs_up", FeedbackValue::Boolean(false));
    push(0, "rating", FeedbackValue::Number(4.0));
    push(2, "rating", FeedbackValue::Boolean(true));
    let experiments = compare_experiments(&selection);
    let comparison = &experiments[0].comparisons[0];
    let Some(thumbs_up) = comparison.metric("feedback.thumbs_up") else {
        panic!("thumbs_up is compared");
    };
    assert_eq!(thumbs_up.label, "thumbs_up rate");
    assert_eq!(thumbs_up.control_value, Some(1.0));
    assert_eq!(thumbs_up.treatment_value, Some(0.0));
    let Some(rating) = comparison.metric("feedback.rating") else {
        panic!("rating is compared");
    };
    assert_eq!(rating.label, "mean rating");
    assert_eq!(rating.treatment_value, Some(1.0));
}

// McNemar's test against tables worked by hand: b cases passed only on the first version, c
// only on the second. Below 25 discordant cases the p-value is the exact two-sided binomial
// tail at 1/2; from 25 on, the continuity-corrected chi-square (|b - c| - 1)^2 / (b + c) on one
// degree of freedom, whose tail is erfc(sqrt(x / 2)) (reference values from Python's
// `math.erfc`, exact to double precision).

#[test]
fn mcnemar_of_one_against_nine_is_the_exact_binomial_tail() {
    // 2 * (C(10,0) + C(10,1)) / 2^10 = 2 * 11 / 1024.
    assert_close(mcnemar(1, 9), 0.021484375, 1e-12);
    assert_close(mcnemar(9, 1), 0.021484375, 1e-12);
}

#[test]
fn mcnemar_of_three_against_thirteen_sums_four_binomial_terms() {
    // 2 * (1 + 16 + 120 + 560) / 2^16 = 1394 / 65536.
    assert_close(mcnemar(3, 13), 0.021270751953125, 1e-12);
}

#[test]
fn mcnemar_of_ten_against_twenty_five_is_the_corrected_chi_square() {
    // (|10 - 25| - 1)^2 / 35 = 196 / 35 = 5.6; P(chi2_1 >= 5.6) = erfc(sqrt(2.8)).
    let expected = 0.017960477526078766;
    assert_close(mcnemar(10, 25), expected, 1.2e-7 * expected);
    assert_close(mcnemar(25, 10), expected, 1.2e-7 * expected);
}

#[test]
fn mcnemar_switches_from_exact_to_chi_square_at_twenty_five_discordant_cases() {
    // 24 discordant: exact, 2 / 2^24. 25: (25 - 1)^2 / 25 = 23.04, erfc(sqrt(11.52)).
    assert_close(mcnemar(0, 24), 2.0 / 16_777_216.0, 1e-18);
    let chi_square = 1.5866563039511896e-06;
    assert_close(mcnemar(0, 25), chi_square, 1.2e-7 * chi_square);
}

#[test]
fn mcnemar_of_equal_counts_is_one_exact_or_chi_square() {
    // Exact: 2 * (1 + 10 + 45 + 120 + 210 + 252) / 1024 > 1, capped. Chi-square: the
    // correction takes |b - c| = 0 to a statistic of 0, whose tail is 1 (not 1 + 3e-8, the
    // erfc approximation's error at 0).
    assert_eq!(mcnemar(5, 5), 1.0);
    assert_eq!(mcnemar(20, 20), 1.0);
    assert_eq!(mcnemar(30, 31), 1.0);
}

#[test]
fn mcnemar_without_discordant_cases_is_one() {
    assert_eq!(mcnemar(0, 0), 1.0);
}
