//! Experiment comparisons: each variant against the control (the variant named `control`, else
//! the first by name) on error rate and boolean feedback rates (two-proportion z-test), and on
//! mean latency, mean cost and numeric feedback means (Welch's t-test), each with a verdict.

use std::collections::{BTreeMap, BTreeSet};

use super::read::{FeedbackValue, Selection};
use super::report::{
    ExperimentComparison, MetricComparison, StatisticalTest, VariantComparison, VariantSummary,
};
use super::significance::{
    self, ALPHA, SampleSummary, TestOutcome, means_sample_size, proportions_sample_size,
};
use super::text::{format_p, percent};

/// What one variant of an experiment collects.
#[derive(Default)]
struct VariantData {
    versions: BTreeSet<String>,
    requests: u64,
    errors: u64,
    latencies_ms: Vec<f64>,
    costs_usd: Vec<f64>,
    feedback: BTreeMap<String, Vec<FeedbackValue>>,
}

/// One comparison per experiment found on requests, sorted by feature and experiment.
pub(super) fn compare_experiments(selection: &Selection) -> Vec<ExperimentComparison> {
    type Variants<'a> = BTreeMap<&'a str, VariantData>;
    let mut experiments: BTreeMap<(&str, &str), Variants<'_>> = BTreeMap::new();
    for request in &selection.requests {
        let Some(experiment) = &request.experiment else {
            continue;
        };
        let variant = experiments
            .entry((request.feature.as_str(), experiment.as_str()))
            .or_default()
            .entry(request.variant.as_str())
            .or_default();
        variant.versions.insert(request.version.clone());
        variant.requests += 1;
        if request.failed {
            // As in groups: latency and cost compare successful answers; errors have their rate.
            variant.errors += 1;
            continue;
        }
        variant.latencies_ms.extend(request.latency_ms);
        variant.costs_usd.extend(request.cost_usd);
    }
    for (index, feedback) in &selection.feedback {
        // The request, not the feedback line's own copy of feature and variant, decides.
        let Some(request) = selection.requests.get(*index) else {
            continue;
        };
        let Some(experiment) = &request.experiment else {
            continue;
        };
        let variant = experiments
            .get_mut(&(request.feature.as_str(), experiment.as_str()))
            .and_then(|variants| variants.get_mut(request.variant.as_str()));
        if let Some(variant) = variant
            && feedback.value != FeedbackValue::Ignored
        {
            variant
                .feedback
                .entry(feedback.metric.clone())
                .or_default()
                .push(feedback.value);
        }
    }
    experiments
        .into_iter()
        .map(|((feature, experiment), variants)| compare_experiment(feature, experiment, &variants))
        .collect()
}

fn compare_experiment(
    feature: &str,
    experiment: &str,
    variants: &BTreeMap<&str, VariantData>,
) -> ExperimentComparison {
    let control = if variants.contains_key("control") {
        "control"
    } else {
        variants.keys().next().copied().unwrap_or("control")
    };
    let comparisons = match variants.get(control) {
        Some(control_data) => variants
            .iter()
            .filter(|(name, _)| **name != control)
            .map(|(name, data)| VariantComparison {
                treatment: name.to_string(),
                metrics: compare_variants(
                    Names {
                        control,
                        treatment: name,
                    },
                    control_data,
                    data,
                ),
            })
            .collect(),
        None => Vec::new(),
    };
    ExperimentComparison {
        feature: feature.to_string(),
        experiment: experiment.to_string(),
        control: control.to_string(),
        variants: variants
            .iter()
            .map(|(name, data)| VariantSummary {
                variant: name.to_string(),
                versions: data.versions.iter().cloned().collect(),
                requests: data.requests,
                errors: data.errors,
            })
            .collect(),
        comparisons,
    }
}

/// The variant names verdicts mention.
#[derive(Clone, Copy)]
struct Names<'a> {
    control: &'a str,
    treatment: &'a str,
}

/// What is compared, for identifiers and wording.
enum Metric<'a> {
    ErrorRate,
    Latency,
    Cost,
    FeedbackRate(&'a str),
    FeedbackMean(&'a str),
}

impl Metric<'_> {
    fn id(&self) -> String {
        match self {
            Metric::ErrorRate => "error_rate".to_string(),
            Metric::Latency => "latency_ms".to_string(),
            Metric::Cost => "cost_usd".to_string(),
            Metric::FeedbackRate(name) | Metric::FeedbackMean(name) => format!("feedback.{name}"),
        }
    }

    fn label(&self) -> String {
        match self {
            Metric::ErrorRate => "error rate".to_string(),
            Metric::Latency => "latency".to_string(),
            Metric::Cost => "cost".to_string(),
            Metric::FeedbackRate(name) => format!("{name} rate"),
            Metric::FeedbackMean(name) => format!("mean {name}"),
        }
    }

    /// What one observation of the metric is.
    fn unit(&self) -> String {
        match self {
            Metric::ErrorRate => "requests".to_string(),
            Metric::Latency | Metric::Cost => "successful requests".to_string(),
            Metric::FeedbackRate(name) | Metric::FeedbackMean(name) => {
                format!("{name} feedback events")
            }
        }
    }
}

fn compare_variants(
    names: Names<'_>,
    control: &VariantData,
    treatment: &VariantData,
) -> Vec<MetricComparison> {
    let mut metrics = vec![
        proportion(
            &Metric::ErrorRate,
            (control.errors, control.requests),
            (treatment.errors, treatment.requests),
            names,
        ),
        means(
            &Metric::Latency,
            &control.latencies_ms,
            &treatment.latencies_ms,
            names,
        ),
        means(
            &Metric::Cost,
            &control.costs_usd,
            &treatment.costs_usd,
            names,
        ),
    ];
    let feedback_metrics: BTreeSet<&String> = control
        .feedback
        .keys()
        .chain(treatment.feedback.keys())
        .collect();
    for name in feedback_metrics {
        let values = |data: &VariantData| data.feedback.get(name).cloned().unwrap_or_default();
        let (control_values, treatment_values) = (values(control), values(treatment));
        let all = || control_values.iter().chain(&treatment_values);
        if all().all(|value| matches!(value, FeedbackValue::Boolean(_))) {
            let counts = |values: &[FeedbackValue]| {
                let successes = values
                    .iter()
                    .filter(|value| **value == FeedbackValue::Boolean(true))
                    .count();
                (successes as u64, values.len() as u64)
            };
            metrics.push(proportion(
                &Metric::FeedbackRate(name),
                counts(&control_values),
                counts(&treatment_values),
                names,
            ));
        } else {
            let numbers = |values: &[FeedbackValue]| {
                values
                    .iter()
                    .filter_map(|value| value.number())
                    .collect::<Vec<_>>()
            };
            metrics.push(means(
                &Metric::FeedbackMean(name),
                &numbers(&control_values),
                &numbers(&treatment_values),
                names,
            ));
        }
    }
    metrics
}

/// Compares `(successes, trials)` of the control and the treatment.
fn proportion(
    metric: &Metric<'_>,
    control: (u64, u64),
    treatment: (u64, u64),
    names: Names<'_>,
) -> MetricComparison {
    let rate =
        |(successes, trials): (u64, u64)| (trials > 0).then(|| successes as f64 / trials as f64);
    let (control_rate, treatment_rate) = (rate(control), rate(treatment));
    let outcome =
        significance::two_proportion_z_test(control.0, control.1, treatment.0, treatment.1);
    let required = control_rate
        .zip(treatment_rate)
        .and_then(|(control_rate, treatment_rate)| {
            proportions_sample_size(control_rate, treatment_rate)
        });
    build(
        metric,
        StatisticalTest::TwoProportionZ,
        [(control.1, control_rate), (treatment.1, treatment_rate)],
        outcome,
        required,
        names,
    )
}

/// Compares the means of the control's and the treatment's observations.
fn means(
    metric: &Metric<'_>,
    control: &[f64],
    treatment: &[f64],
    names: Names<'_>,
) -> MetricComparison {
    let summaries = SampleSummary::of(control).zip(SampleSummary::of(treatment));
    let outcome =
        summaries.and_then(|(control, treatment)| significance::welch_t_test(&control, &treatment));
    let required =
        summaries.and_then(|(control, treatment)| means_sample_size(&control, &treatment));
    let mean = |values: &[f64]| SampleSummary::of(values).map(|summary| summary.mean);
    build(
        metric,
        StatisticalTest::WelchT,
        [
            (control.len() as u64, mean(control)),
            (treatment.len() as u64, mean(treatment)),
        ],
        outcome,
        required,
        names,
    )
}

/// Assembles a comparison from `[(count, value)]` of the control and the treatment.
fn build(
    metric: &Metric<'_>,
    test: StatisticalTest,
    [
        (control_count, control_value),
        (treatment_count, treatment_value),
    ]: [(u64, Option<f64>); 2],
    outcome: Option<TestOutcome>,
    required: Option<f64>,
    names: Names<'_>,
) -> MetricComparison {
    let difference = control_value
        .zip(treatment_value)
        .map(|(control, treatment)| {
            // Equal samples summed in another order can differ in the last bit; that is no
            // difference, and a sample size computed from it would be astronomical.
            let scale = control.abs().max(treatment.abs());
            let difference = treatment - control;
            if difference.abs() <= scale * 1e-12 {
                0.0
            } else {
                difference
            }
        });
    let required = required.filter(|_| difference != Some(0.0));
    let p_value = outcome.map(|outcome| outcome.p_value);
    let mut comparison = MetricComparison {
        metric: metric.id(),
        label: metric.label(),
        test,
        control_count,
        control_value,
        treatment_count,
        treatment_value,
        difference,
        relative_difference: difference
            .zip(control_value)
            .and_then(|(difference, control)| (control != 0.0).then(|| difference / control)),
        statistic: outcome.map(|outcome| outcome.statistic),
        degrees_of_freedom: outcome.and_then(|outcome| outcome.degrees_of_freedom),
        p_value,
        significant: p_value.is_some_and(|p_value| p_value < ALPHA),
        // `as` saturates, which is the honest answer for a difference too small to ever detect.
        required_per_variant: required.map(|required| required.ceil() as u64),
        verdict: String::new(),
    };
    comparison.verdict = verdict(metric, &comparison, names);
    comparison
}

fn verdict(metric: &Metric<'_>, comparison: &MetricComparison, names: Names<'_>) -> String {
    let label = metric.label();
    let unit = metric.unit();
    let (Some(control), Some(treatment), Some(difference)) = (
        comparison.control_value,
        comparison.treatment_value,
        comparison.difference,
    ) else {
        return format!("not enough data yet to compare {label}: a variant has no {unit}");
    };
    if difference == 0.0 {
        return format!("no measurable difference in {label}");
    }
    let Some(p_value) = comparison.p_value else {
        return format!(
            "not enough data yet to test {label}: it needs two or more {unit} per variant, not all equal"
        );
    };
    let p_text = format_p(p_value);
    if comparison.significant {
        return significant_verdict(
            metric,
            [control, treatment],
            comparison.relative_difference,
            &p_text,
            names,
        );
    }
    let Some(required) = comparison.required_per_variant else {
        return format!("no significant difference yet in {label} ({p_text})");
    };
    let have = comparison.control_count.min(comparison.treatment_count);
    if required > have {
        format!(
            "no significant difference yet in {label} ({p_text}); about {} more {unit} per variant needed for 80% power at alpha 0.05",
            required - have
        )
    } else {
        // Power is a probability: an effect as large as observed is missed one time in five.
        format!(
            "no significant difference in {label} ({p_text}) although each variant has the {required} {unit} that 80% power at alpha 0.05 needs for the observed difference"
        )
    }
}

fn significant_verdict(
    metric: &Metric<'_>,
    [control, treatment]: [f64; 2],
    relative_difference: Option<f64>,
    p_text: &str,
    names: Names<'_>,
) -> String {
    let Names {
        control: control_name,
        treatment: treatment_name,
    } = names;
    let higher = treatment > control;
    let more_or_less = |more: &'static str, less: &'static str| if higher { more } else { less };
    match metric {
        Metric::ErrorRate | Metric::FeedbackRate(_) => format!(
            "{treatment_name} has a {} {} than {control_name}: {} vs {} ({p_text})",
            more_or_less("higher", "lower"),
            metric.label(),
            percent(treatment),
            percent(control)
        ),
        Metric::FeedbackMean(name) => format!(
            "{treatment_name} has a {} mean {name} than {control_name}: {treatment:.2} vs {control:.2} ({p_text})",
            more_or_less("higher", "lower")
        ),
        Metric::Latency | Metric::Cost => {
            let comparative = match metric {
                Metric::Latency => more_or_less("slower", "faster"),
                _ => more_or_less("more expensive", "cheaper"),
            };
            match relative_difference {
                Some(relative) => format!(
                    "{treatment_name} is {} {comparative} than {control_name} ({p_text})",
                    relative_percent(relative)
                ),
                None => format!(
                    "{treatment_name} is {comparative} than {control_name}: {treatment} vs {control} per request ({p_text})"
                ),
            }
        }
    }
}

/// `12%`, or `0.4%` where whole percents would round a real difference to nothing.
fn relative_percent(relative: f64) -> String {
    let percent = relative.abs() * 100.0;
    if percent < 10.0 {
        format!("{percent:.1}%")
    } else {
        format!("{percent:.0}%")
    }
}
