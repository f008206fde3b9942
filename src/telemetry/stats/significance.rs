//! The statistics behind experiment verdicts, written out rather than pulled from a crate: the
//! normal distribution through a Chebyshev approximation of `erfc` (fractional error below
//! 1.2e-7), Student's t through the regularized incomplete beta function evaluated as a continued
//! fraction (modified Lentz), the two-proportion z-test, Welch's t-test, and the per-variant
//! sample sizes that give 80% power at a two-sided alpha of 0.05 for an observed difference.

/// The two-sided significance level verdicts use.
pub const ALPHA: f64 = 0.05;

/// The power sample-size estimates aim for.
#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
pub const POWER: f64 = 0.8;

/// The standard normal quantile at 1 - ALPHA / 2.
const Z_HALF_ALPHA: f64 = 1.959_963_984_540_054;

/// The standard normal quantile at POWER.
const Z_POWER: f64 = 0.841_621_233_572_914_3;

/// The complementary error function, with a fractional error below 1.2e-7 for every `x`.
pub fn erfc(x: f64) -> f64 {
    // Numerical Recipes' `erfcc`: a Chebyshev fit of exp(x^2) erfc(x), exact enough for p-values
    // and free of the cancellation `1 - erf(x)` suffers in the tails.
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let polynomial = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let tail = t * polynomial.exp();
    if x >= 0.0 { tail } else { 2.0 - tail }
}

/// The standard normal cumulative distribution function.
#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// The natural logarithm of the gamma function for `x > 0` (Lanczos, g = 7, about 15 digits).
pub fn ln_gamma(x: f64) -> f64 {
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // The series converges badly near zero; the reflection formula moves it to 1 - x.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let shifted = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (index, coefficient) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += coefficient / (shifted + index as f64);
    }
    let base = shifted + 7.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (shifted + 0.5) * base.ln() - base + sum.ln()
}

/// The regularized incomplete beta function I_x(a, b) for `a, b > 0` and `0 <= x <= 1`.
pub fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    // The continued fraction converges fast only below the mean of the distribution; above it,
    // the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) swaps the roles.
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_continued_fraction(a, b, x) / a
    } else {
        1.0 - front * beta_continued_fraction(b, a, 1.0 - x) / b
    }
}

/// The continued fraction of the incomplete beta function by the modified Lentz method.
fn beta_continued_fraction(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPSILON: f64 = 1e-15;
    // Convergence takes O(sqrt(max(a, b))) terms; this bound covers millions of observations.
    const MAX_TERMS: u32 = 100_000;
    let guard = |value: f64| if value.abs() < TINY { TINY } else { value };
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
    let mut fraction = d;
    for term in 1..=MAX_TERMS {
        let m = f64::from(term);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / guard(1.0 + even * d);
        c = guard(1.0 + even / c);
        fraction *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / guard(1.0 + odd * d);
        c = guard(1.0 + odd / c);
        let step = d * c;
        fraction *= step;
        if (step - 1.0).abs() < EPSILON {
            break;
        }
    }
    fraction
}

/// Student's t cumulative distribution function with `degrees_of_freedom > 0`.
#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
pub fn student_t_cdf(t: f64, degrees_of_freedom: f64) -> f64 {
    let tail = 0.5 * two_sided_t_p_value(t, degrees_of_freedom);
    if t > 0.0 { 1.0 - tail } else { tail }
}

/// P(|T| >= |t|) for Student's t with `degrees_of_freedom`.
fn two_sided_t_p_value(t: f64, degrees_of_freedom: f64) -> f64 {
    let x = degrees_of_freedom / (degrees_of_freedom + t * t);
    regularized_incomplete_beta(degrees_of_freedom / 2.0, 0.5, x)
}

/// A test's statistic and two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestOutcome {
    /// z or t, positive when the second sample is larger.
    pub statistic: f64,
    /// Welch–Satterthwaite degrees of freedom (t-tests only).
    pub degrees_of_freedom: Option<f64>,
    /// The two-sided p-value.
    pub p_value: f64,
}

/// The pooled two-proportion z-test of `successes_b / trials_b` against `successes_a / trials_a`;
/// `None` when a sample is empty or both proportions are 0 or both 1 (nothing varies).
pub fn two_proportion_z_test(
    successes_a: u64,
    trials_a: u64,
    successes_b: u64,
    trials_b: u64,
) -> Option<TestOutcome> {
    if trials_a == 0 || trials_b == 0 {
        return None;
    }
    let (successes_a, trials_a) = (successes_a as f64, trials_a as f64);
    let (successes_b, trials_b) = (successes_b as f64, trials_b as f64);
    let pooled = (successes_a + successes_b) / (trials_a + trials_b);
    let standard_error = (pooled * (1.0 - pooled) * (1.0 / trials_a + 1.0 / trials_b)).sqrt();
    if standard_error <= 0.0 {
        return None;
    }
    let statistic = (successes_b / trials_b - successes_a / trials_a) / standard_error;
    Some(TestOutcome {
        statistic,
        degrees_of_freedom: None,
        // The approximation overshoots 1 by up to 1.2e-7 near zero; a p-value cannot.
        p_value: erfc(statistic.abs() / std::f64::consts::SQRT_2).min(1.0),
    })
}

/// Count, mean and sample variance (n - 1 denominator) of a set of observations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSummary {
    /// How many observations.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// Their sample variance; 0 for a single observation.
    pub variance: f64,
}

impl SampleSummary {
    /// Summarizes `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<SampleSummary> {
        if values.is_empty() {
            return None;
        }
        let count = values.len() as f64;
        let mean = values.iter().sum::<f64>() / count;
        // Two passes: summing squares of deviations loses no precision to cancellation the way
        // E[x^2] - E[x]^2 does for costs around 1e-3.
        let squares: f64 = values.iter().map(|value| (value - mean).powi(2)).sum();
        let variance = if values.len() > 1 {
            squares / (count - 1.0)
        } else {
            0.0
        };
        Some(SampleSummary {
            count: values.len() as u64,
            mean,
            variance,
        })
    }
}

/// Welch's unequal-variance t-test of `b`'s mean against `a`'s; `None` when a sample has fewer
/// than two observations or neither varies.
pub fn welch_t_test(a: &SampleSummary, b: &SampleSummary) -> Option<TestOutcome> {
    if a.count < 2 || b.count < 2 {
        return None;
    }
    let (count_a, count_b) = (a.count as f64, b.count as f64);
    let share_a = a.variance / count_a;
    let share_b = b.variance / count_b;
    let squared_error = share_a + share_b;
    if squared_error <= 0.0 {
        return None;
    }
    let statistic = (b.mean - a.mean) / squared_error.sqrt();
    let degrees_of_freedom = squared_error.powi(2)
        / (share_a.powi(2) / (count_a - 1.0) + share_b.powi(2) / (count_b - 1.0));
    Some(TestOutcome {
        statistic,
        degrees_of_freedom: Some(degrees_of_freedom),
        p_value: two_sided_t_p_value(statistic, degrees_of_freedom),
    })
}

/// Observations per group for POWER at ALPHA to detect proportions `a` vs `b` (Fleiss, without
/// continuity correction); `None` when they are equal.
pub fn proportions_sample_size(a: f64, b: f64) -> Option<f64> {
    let difference = b - a;
    if difference == 0.0 {
        return None;
    }
    let average = (a + b) / 2.0;
    let spread = Z_HALF_ALPHA * (2.0 * average * (1.0 - average)).sqrt()
        + Z_POWER * (a * (1.0 - a) + b * (1.0 - b)).sqrt();
    Some(spread.powi(2) / difference.powi(2))
}

/// Observations per group for POWER at ALPHA to detect the difference between the means of `a`
/// and `b` with their variances (normal approximation); `None` when the means are equal or
/// neither sample varies.
pub fn means_sample_size(a: &SampleSummary, b: &SampleSummary) -> Option<f64> {
    let difference = b.mean - a.mean;
    let variance = a.variance + b.variance;
    if difference == 0.0 || variance <= 0.0 {
        return None;
    }
    Some((Z_HALF_ALPHA + Z_POWER).powi(2) * variance / difference.powi(2))
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `percent`% of
/// the values at or below it.
pub fn nearest_rank(sorted: &[f64], percent: u64) -> Option<f64> {
    // Integer arithmetic: `0.99 * 100.0` is not exactly 99 in floating point, and a rank off by
    // one picks a different value.
    let count = sorted.len() as u64;
    let rank = (percent * count).div_ceil(100).max(1);
    sorted.get(usize::try_from(rank - 1).ok()?).copied()
}

/// McNemar's test of paired pass/fail outcomes: of the pairs (cases) where the two sides
/// disagree, `b` passed only on the first side and `c` only on the second. Gives the two-sided
/// p-value of "both sides pass equally often": exact (twice the smaller binomial tail at
/// p = 1/2, capped at 1) when `b + c` is below 25, else the chi-square statistic with
/// Edwards' continuity correction, `(|b - c| - 1)^2 / (b + c)`, on one degree of freedom.
/// 1 when no pair disagrees. (McNemar 1947; the exact rule for small counts as in Fagerland,
/// Lydersen and Laake, BMC Medical Research Methodology 13:91, 2013.)
pub fn mcnemar(b: u64, c: u64) -> f64 {
    let discordant = b + c;
    if discordant == 0 {
        return 1.0;
    }
    if discordant < 25 {
        let n = discordant as f64;
        let tail: f64 = (0..=b.min(c))
            .map(|i| {
                let i = i as f64;
                (ln_gamma(n + 1.0) - ln_gamma(i + 1.0) - ln_gamma(n - i + 1.0)
                    - n * std::f64::consts::LN_2)
                    .exp()
            })
            .sum();
        return (2.0 * tail).min(1.0);
    }
    let difference = (b as f64 - c as f64).abs() - 1.0;
    let statistic = difference.max(0.0).powi(2) / discordant as f64;
    // The chi-square tail with one degree of freedom is erfc(sqrt(x / 2)); the approximation
    // overshoots 1 by up to 1.2e-7 near zero (|b - c| <= 1), and a p-value cannot.
    erfc((statistic / 2.0).sqrt()).min(1.0)
}
