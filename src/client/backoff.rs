//! Retry timing: how long to wait before a retry (exponential backoff with full jitter) and how
//! long a provider asked us to wait (`retry-after-ms`, `Retry-After`). Both are pure functions of
//! their inputs; time and randomness come in as arguments so tests are deterministic.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};

use super::clock::Random;
use crate::config::RetrySettings;

/// The wait before retry `retry_number` (1 is the first retry): a uniform random share of
/// `min(max_delay, base * 2^(retry_number - 1))`, so concurrent clients spread out.
pub fn backoff_delay(settings: &RetrySettings, retry_number: u32, random: &dyn Random) -> Duration {
    let ceiling = Duration::from_millis(backoff_ceiling_ms(settings, retry_number));
    let share = random.next_f64();
    // A misbehaving source must not panic the caller nor wait past the ceiling.
    let share = if share.is_nan() {
        0.0
    } else {
        share.clamp(0.0, 1.0)
    };
    Duration::try_from_secs_f64(ceiling.as_secs_f64() * share).unwrap_or(ceiling)
}

/// The upper bound of the jittered delay, saturating instead of overflowing for large numbers.
fn backoff_ceiling_ms(settings: &RetrySettings, retry_number: u32) -> u64 {
    let exponent = retry_number.saturating_sub(1);
    let factor = 1u64.checked_shl(exponent).unwrap_or(u64::MAX);
    settings
        .base_delay_ms
        .saturating_mul(factor)
        .min(settings.max_delay_ms)
}

/// The wait a provider asked for: `retry-after-ms` (float milliseconds, OpenAI) when usable,
/// else `Retry-After` (delta-seconds or an HTTP-date; a past date gives zero); None when neither
/// header is present and valid.
pub fn parse_retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    // An unusable `retry-after-ms` should not hide a valid `Retry-After` sent alongside it.
    retry_after_ms
        .and_then(parse_milliseconds)
        .or_else(|| retry_after.and_then(|value| parse_retry_after_header(value, now)))
}

fn parse_milliseconds(value: &str) -> Option<Duration> {
    parse_non_negative_decimal(value).map(|milliseconds| seconds_to_duration(milliseconds / 1000.0))
}

fn parse_retry_after_header(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Some(seconds) = parse_non_negative_decimal(value) {
        return Some(seconds_to_duration(seconds));
    }
    let date = parse_http_date(value, now)?;
    // A date already past means "now"; servers and clocks are never perfectly in sync.
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

/// Digits with at most one decimal point: `f64::from_str` alone would also accept signs,
/// exponents, `inf` and `NaN`, none of which a header may carry.
fn parse_non_negative_decimal(value: &str) -> Option<f64> {
    let value = value.trim();
    let mut digits = 0usize;
    let mut points = 0usize;
    for character in value.chars() {
        match character {
            '0'..='9' => digits += 1,
            '.' => points += 1,
            _ => return None,
        }
    }
    if digits == 0 || points > 1 {
        return None;
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|number| number.is_finite())
}

/// Saturates rather than failing: an absurdly long wait is still a valid (refusable) answer.
fn seconds_to_duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
}

const SHORT_DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// The three HTTP-date forms of RFC 9110 §5.6.7. The day name must be a real one but is not
/// checked against the date: senders get it wrong, and the date is what matters.
fn parse_http_date(value: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some((day_name, rest)) = value.split_once(", ") {
        if SHORT_DAY_NAMES.contains(&day_name) {
            return NaiveDateTime::parse_from_str(rest, "%d %b %Y %H:%M:%S GMT")
                .ok()
                .map(|date| date.and_utc());
        }
        if LONG_DAY_NAMES.contains(&day_name) {
            let date = NaiveDateTime::parse_from_str(rest, "%d-%b-%y %H:%M:%S GMT").ok()?;
            return with_rfc850_century(date, now);
        }
        return None;
    }
    let (day_name, rest) = value.split_once(' ')?;
    if !SHORT_DAY_NAMES.contains(&day_name) {
        return None;
    }
    NaiveDateTime::parse_from_str(rest.trim_start(), "%b %e %H:%M:%S %Y")
        .ok()
        .map(|date| date.and_utc())
}

/// RFC 9110: a two-digit year that looks more than 50 years ahead is the most recent past year
/// with those digits; chrono's fixed 1970-2069 pivot would drift from that over time.
fn with_rfc850_century(date: NaiveDateTime, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let two_digits = date.year().rem_euclid(100);
    let current_year = now.year();
    let mut year = current_year - current_year.rem_euclid(100) + two_digits;
    if year > current_year + 50 {
        year -= 100;
    }
    date.with_year(year).map(|date| date.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::clock::SeededRandom;
    use chrono::TimeZone;

    #[derive(Debug)]
    struct FixedRandom(f64);

    impl Random for FixedRandom {
        fn next_f64(&self) -> f64 {
            self.0
        }
    }

    fn settings() -> RetrySettings {
        RetrySettings {
            base_delay_ms: 250,
            max_delay_ms: 8_000,
            ..RetrySettings::default()
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
            .single()
            .expect("valid date")
    }

    #[test]
    fn first_retry_is_bounded_by_the_base_delay() {
        let delay = backoff_delay(&settings(), 1, &FixedRandom(0.999_999));
        assert!(delay < Duration::from_millis(250));
        assert!(delay > Duration::from_millis(249));
    }

    #[test]
    fn ceiling_doubles_with_each_retry() {
        let ceilings: Vec<u64> = (1..=6)
            .map(|retry| backoff_ceiling_ms(&settings(), retry))
            .collect();
        assert_eq!(ceilings, vec![250, 500, 1_000, 2_000, 4_000, 8_000]);
    }

    #[test]
    fn ceiling_caps_at_the_maximum_delay() {
        assert_eq!(backoff_ceiling_ms(&settings(), 7), 8_000);
        let delay = backoff_delay(&settings(), 12, &FixedRandom(0.999_999));
        assert!(delay < Duration::from_millis(8_000));
        assert!(delay > Duration::from_millis(7_990));
    }

    #[test]
    fn large_retry_numbers_do_not_overflow() {
        let huge = RetrySettings {
            base_delay_ms: u64::MAX / 2,
            max_delay_ms: u64::MAX,
            ..RetrySettings::default()
        };
        assert_eq!(backoff_ceiling_ms(&huge, u32::MAX), u64::MAX);
        assert_eq!(backoff_ceiling_ms(&settings(), u32::MAX), 8_000);
        let delay = backoff_delay(&huge, u32::MAX, &FixedRandom(0.5));
        assert!(delay > Duration::ZERO);
    }

    #[test]
    fn zero_random_gives_no_delay() {
        assert_eq!(
            backoff_delay(&settings(), 3, &FixedRandom(0.0)),
            Duration::ZERO
        );
    }

    #[test]
    fn retry_number_zero_is_treated_as_the_first_retry() {
        assert_eq!(backoff_ceiling_ms(&settings(), 0), 250);
    }

    #[test]
    fn out_of_range_random_values_stay_within_bounds() {
        let ceiling = Duration::from_millis(500);
        assert_eq!(backoff_delay(&settings(), 2, &FixedRandom(7.0)), ceiling);
        assert_eq!(
            backoff_delay(&settings(), 2, &FixedRandom(-1.0)),
            Duration::ZERO
        );
        assert_eq!(
            backoff_delay(&settings(), 2, &FixedRandom(f64::NAN)),
            Duration::ZERO
        );
    }

    #[test]
    fn seeded_jitter_stays_within_each_retrys_ceiling() {
        let random = SeededRandom::new(42);
        for retry in 1..=10 {
            let ceiling = Duration::from_millis(backoff_ceiling_ms(&settings(), retry));
            for _ in 0..200 {
                let delay = backoff_delay(&settings(), retry, &random);
                assert!(delay < ceiling, "retry {retry}: {delay:?} >= {ceiling:?}");
            }
        }
    }

    #[test]
    fn seeded_jitter_spreads_over_the_range() {
        let random = SeededRandom::new(7);
        let delays: Vec<Duration> = (0..500)
            .map(|_| backoff_delay(&settings(), 5, &random))
            .collect();
        let shortest = delays.iter().min().copied().unwrap_or_default();
        let longest = delays.iter().max().copied().unwrap_or_default();
        assert!(shortest < Duration::from_millis(400));
        assert!(longest > Duration::from_millis(3_600));
    }

    #[test]
    fn retry_after_ms_is_parsed_as_fractional_milliseconds() {
        assert_eq!(
            parse_retry_after(Some("1500.5"), None, now()),
            Some(Duration::from_micros(1_500_500))
        );
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        assert_eq!(
            parse_retry_after(Some("20"), Some("7"), now()),
            Some(Duration::from_millis(20))
        );
    }

    #[test]
    fn invalid_retry_after_ms_falls_back_to_retry_after() {
        assert_eq!(
            parse_retry_after(Some("soon"), Some("7"), now()),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn retry_after_delta_seconds_are_parsed() {
        assert_eq!(
            parse_retry_after(None, Some(" 30 "), now()),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_fractional_seconds_are_parsed() {
        assert_eq!(
            parse_retry_after(None, Some("1.25"), now()),
            Some(Duration::from_millis(1_250))
        );
    }

    #[test]
    fn retry_after_imf_fixdate_is_parsed() {
        assert_eq!(
            parse_retry_after(None, Some("Fri, 27 Nov 2026 12:00:45 GMT"), now()),
            Some(Duration::from_secs(45))
        );
    }

    #[test]
    fn retry_after_rfc850_date_is_parsed() {
        assert_eq!(
            parse_retry_after(None, Some("Friday, 27-Nov-26 12:01:00 GMT"), now()),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn rfc850_two_digit_years_far_ahead_belong_to_the_past_century() {
        let date = NaiveDateTime::parse_from_str("01-Jan-99 00:00:00", "%d-%b-%y %H:%M:%S")
            .expect("valid date");
        let resolved = with_rfc850_century(date, now()).expect("valid year");
        assert_eq!(resolved.year(), 1999);
        let date = NaiveDateTime::parse_from_str("01-Jan-70 00:00:00", "%d-%b-%y %H:%M:%S")
            .expect("valid date");
        let resolved = with_rfc850_century(date, now()).expect("valid year");
        assert_eq!(resolved.year(), 2070);
    }

    #[test]
    fn retry_after_asctime_date_is_parsed() {
        assert_eq!(
            parse_retry_after(None, Some("Fri Nov 27 12:00:10 2026"), now()),
            Some(Duration::from_secs(10))
        );
        let single_digit_day = Utc
            .with_ymd_and_hms(2026, 11, 6, 8, 49, 30)
            .single()
            .expect("valid date");
        assert_eq!(
            parse_retry_after(None, Some("Fri Nov  6 08:49:37 2026"), single_digit_day),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn retry_after_past_date_gives_zero() {
        assert_eq!(
            parse_retry_after(None, Some("Sun, 06 Nov 1994 08:49:37 GMT"), now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_gives_none() {
        for garbage in [
            "",
            "soon",
            "1e3",
            "inf",
            "NaN",
            "1.2.3",
            ".",
            "Fri, 27 Nov 2026 12:00:45 PST",
            "Someday, 27-Nov-26 12:01:00 GMT",
            "Fri, 31 Feb 2026 12:00:45 GMT",
        ] {
            assert_eq!(
                parse_retry_after(Some(garbage), None, now()),
                None,
                "{garbage:?}"
            );
            assert_eq!(
                parse_retry_after(None, Some(garbage), now()),
                None,
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn negative_values_give_none() {
        assert_eq!(parse_retry_after(Some("-5"), Some("-5"), now()), None);
        assert_eq!(parse_retry_after(None, Some("-0.5"), now()), None);
    }

    #[test]
    fn absent_headers_give_none() {
        assert_eq!(parse_retry_after(None, None, now()), None);
    }

    #[test]
    fn huge_delta_seconds_saturate() {
        assert_eq!(
            parse_retry_after(None, Some("99999999999999999999999"), now()),
            Some(Duration::MAX)
        );
    }
}
