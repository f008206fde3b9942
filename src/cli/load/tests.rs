//! The load command's parsers and throughput rule.

use super::*;

#[test]
fn durations_take_milliseconds_seconds_minutes_and_hours() {
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
}

#[test]
fn durations_of_zero_negative_unknown_units_or_past_a_day_are_refused() {
    for bad in [
        "0s",
        "0",
        "-1s",
        "5 parsecs",
        "s",
        "",
        "1d",
        "25h",
        "nan",
        "inf",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn throughput_counts_answers_between_the_first_and_the_last_answer() {
    let start = Instant::now();
    let last = start + Duration::from_secs(2);
    // 21 answers 100 ms apart, the first one after a second of latency: 10 per second.
    let rate = throughput(21, Some(start), Some(last), Duration::from_secs(3));
    assert!((rate - 10.0).abs() < 1e-9, "{rate}");
    assert_eq!(
        throughput(1, Some(start), Some(start), Duration::from_secs(2)),
        0.5
    );
    assert_eq!(throughput(0, None, None, Duration::from_secs(2)), 0.0);
}

#[test]
fn rates_must_be_positive_finite_and_bounded() {
    assert_eq!(parse_rps("0.5"), Ok(0.5));
    for bad in ["0", "-5", "abc", "NaN", "inf", "1e9"] {
        assert!(parse_rps(bad).is_err(), "{bad}");
    }
    assert!(parse_rps("1e9").unwrap_err().contains("at most"));
}

proptest::proptest! {
    #[test]
    fn any_whole_duration_reads_the_same_in_every_unit(seconds in 1u64..=86_400) {
        let expected = Ok(Duration::from_secs(seconds));
        proptest::prop_assert_eq!(parse_duration(&format!("{seconds}s")), expected.clone());
        proptest::prop_assert_eq!(parse_duration(&format!("{}ms", seconds * 1000)), expected);
    }

    #[test]
    fn the_parsers_never_panic_on_any_text(text in ".{0,12}") {
        let _ = (parse_duration(&text), parse_rps(&text), parse_concurrency(&text));
    }
}
