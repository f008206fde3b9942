//! Bucket ranges, variation choice and namespaces, following the GrowthBook JS
//! SDK float-for-float so assignments agree across SDKs.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::hash::fnv1a_32_concat;

/// `n` equal weights of `1/n`; an empty list for zero variations.
pub fn equal_weights(n: usize) -> Vec<f64> {
    if n == 0 {
        return Vec::new();
    }
    // `usize as f64` is exact for any realistic variation count.
    vec![1.0 / n as f64; n]
}

/// The `[start, end)` range of each variation for the given coverage and weights.
pub fn bucket_ranges(
    num_variations: usize,
    coverage: Option<f64>,
    weights: Option<&[f64]>,
) -> Vec<(f64, f64)> {
    // Like JS's two comparisons, `clamp` lets a NaN coverage through unchanged.
    let coverage = coverage.unwrap_or(1.0).clamp(0.0, 1.0);

    let mut weights: Cow<'_, [f64]> = match weights {
        Some(w) if w.len() == num_variations => Cow::Borrowed(w),
        _ => Cow::Owned(equal_weights(num_variations)),
    };
    let total = weights.iter().fold(0.0, |sum, w| sum + w);
    // JS tests `total < 0.99 || total > 1.01`, so a NaN total is accepted as is.
    if !(total.is_nan() || (0.99..=1.01).contains(&total)) {
        weights = Cow::Owned(equal_weights(num_variations));
    }

    let mut cumulative = 0.0;
    weights
        .iter()
        .map(|&w| {
            let start = cumulative;
            // Slots advance by the full weight so raising coverage never reassigns anyone.
            cumulative += w;
            (start, start + coverage * w)
        })
        .collect()
}

/// Index of the first range containing `n`; `None` where JS returns -1 (not in the experiment).
pub fn choose_variation(n: f64, ranges: &[(f64, f64)]) -> Option<usize> {
    ranges.iter().position(|&range| in_range(n, range))
}

/// Whether `n` lies in the half-open range `[start, end)`.
pub fn in_range(n: f64, range: (f64, f64)) -> bool {
    n >= range.0 && n < range.1
}

/// A slice `[start, end)` of a namespace; experiments with disjoint slices never share users.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    /// Namespace name; part of the hash, so renaming it reshuffles users.
    pub id: String,
    /// Inclusive lower bound of the slice, in [0, 1].
    pub start: f64,
    /// Exclusive upper bound of the slice, in [0, 1].
    pub end: f64,
}

/// Whether the subject's namespace hash falls in the namespace's slice.
pub fn in_namespace(subject_id: &str, namespace: &Namespace) -> bool {
    // hash("__" + id, subject, v1): v1 hashes value then seed, i.e. subject + "__" + id.
    let h = fnv1a_32_concat(&[subject_id, "__", &namespace.id]);
    let n = f64::from(h % 1000) / 1000.0;
    in_range(n, (namespace.start, namespace.end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_hash_matches_the_worked_examples() {
        let ns1 = Namespace {
            id: "namespace1".into(),
            start: 0.68,
            end: 0.681,
        };
        assert!(in_namespace("1", &ns1));
        let ns2 = Namespace {
            id: "namespace2".into(),
            start: 0.335,
            end: 0.336,
        };
        assert!(in_namespace("3", &ns2));
    }

    #[test]
    fn empty_weights_list_falls_back_to_equal_weights() {
        assert_eq!(
            bucket_ranges(2, None, Some(&[])),
            vec![(0.0, 0.5), (0.5, 1.0)]
        );
        assert!(bucket_ranges(0, None, None).is_empty());
    }

    #[test]
    fn zero_width_ranges_never_match() {
        assert_eq!(choose_variation(0.5, &[(0.5, 0.5)]), None);
        assert_eq!(choose_variation(1.0, &[(0.0, 1.0)]), None);
    }
}
