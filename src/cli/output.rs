//! Everything the command line writes. No write may panic (`println!` does on a closed pipe or
//! a full disk): stdout failures are remembered and turn a successful exit into a quiet one
//! (0 for a reader that went away, 1 for any other failure), stderr failures are ignored since
//! there is nowhere left to report them. JSON output has its floating-point noise rounded off.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use serde::Serialize;
use serde_json::{Map, Value, json};

/// stdout is fine.
const STDOUT_OK: u8 = 0;
/// The reader of stdout went away (`| head`): stop writing, exit as if all was read.
const STDOUT_GONE: u8 = 1;
/// stdout failed otherwise (`> /dev/full`): stop writing, exit 1.
const STDOUT_FAILED: u8 = 2;

static STDOUT: AtomicU8 = AtomicU8::new(STDOUT_OK);

/// Writes one line to stdout unless an earlier write failed.
pub fn write_line(arguments: std::fmt::Arguments<'_>) {
    write_stdout(format_args!("{arguments}\n"));
}

/// Writes `text` to stdout as it is (no newline added) and flushes it, so a streamed answer
/// shows as it arrives. Returns whether stdout still works: a streaming command stops its
/// stream when the reader went away.
pub fn write_text(text: &str) -> bool {
    write_stdout(format_args!("{text}"));
    STDOUT.load(Ordering::Relaxed) == STDOUT_OK
}

/// Whether the reader of stdout went away (`| head`): the command may end quietly.
pub fn stdout_gone() -> bool {
    STDOUT.load(Ordering::Relaxed) == STDOUT_GONE
}

fn write_stdout(arguments: std::fmt::Arguments<'_>) {
    if STDOUT.load(Ordering::Relaxed) != STDOUT_OK {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    let result = stdout.write_fmt(arguments).and_then(|()| stdout.flush());
    if let Err(error) = result {
        let state = if error.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_GONE
        } else {
            STDOUT_FAILED
        };
        STDOUT.store(state, Ordering::Relaxed);
    }
}

/// Writes text to stderr, ignoring failure: a closed or full stderr has nobody to tell.
pub fn write_error(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = stderr.write_all(b"\n");
    }
    let _ = stderr.flush();
}

/// The exit code after a command returned `code`: a failed stdout turns success into 1.
pub fn final_code(code: i32) -> i32 {
    if code == 0 && STDOUT.load(Ordering::Relaxed) == STDOUT_FAILED {
        1
    } else {
        code
    }
}

/// Prints `value` as pretty JSON with its numbers rounded (see [`round_numbers`]).
pub fn print_json(value: &impl Serialize) {
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    round_numbers(&mut value, Precision::Significant);
    say!(
        "{}",
        serde_json::to_string_pretty(&value).unwrap_or_default()
    );
}

/// Prints `value` as one line of compact JSON (a JSON Lines record) with its numbers rounded as
/// [`print_json`] rounds them. Returns whether stdout still works.
pub fn print_json_line(value: &impl Serialize) -> bool {
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    round_numbers(&mut value, Precision::Significant);
    write_text(&format!(
        "{}\n",
        serde_json::to_string(&value).unwrap_or_default()
    ))
}

/// The JSON form of an error: `{"error": {"kind", "message", "details"}}`.
pub fn error_json(kind: &str, message: &str, details: &Value) -> Value {
    json!({"error": {"kind": kind, "message": message, "details": details}})
}

/// How a number is rounded, from the name of the field that holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Precision {
    /// Milliseconds (`*_ms` and everything inside such a field): 3 decimals, a microsecond.
    Milliseconds,
    /// US dollars (`*usd*`): 8 decimals, far below a token's price.
    Dollars,
    /// Anything else (rates, p-values, means): 6 significant digits.
    Significant,
}

impl Precision {
    fn of(key: &str, inherited: Precision) -> Precision {
        if key.ends_with("_ms") {
            Precision::Milliseconds
        } else if key.contains("usd") {
            Precision::Dollars
        } else {
            inherited
        }
    }

    fn round(self, number: f64) -> f64 {
        if !number.is_finite() || number == 0.0 {
            return number;
        }
        match self {
            Precision::Milliseconds => (number * 1e3).round() / 1e3,
            Precision::Dollars => (number * 1e8).round() / 1e8,
            Precision::Significant => format!("{number:.5e}").parse().unwrap_or(number),
        }
    }
}

/// Rounds every non-integer number in `value` to the precision its field name calls for, so
/// `1684.0000000000002` ms prints as `1684.0`. Integers are left exactly as they are.
fn round_numbers(value: &mut Value, precision: Precision) {
    match value {
        Value::Number(number) if number.is_f64() => {
            if let Some(rounded) = number
                .as_f64()
                .map(|float| precision.round(float))
                .and_then(serde_json::Number::from_f64)
            {
                *number = rounded;
            }
        }
        Value::Array(items) => {
            for item in items {
                round_numbers(item, precision);
            }
        }
        Value::Object(map) => round_map(map, precision),
        _ => {}
    }
}

fn round_map(map: &mut Map<String, Value>, precision: Precision) {
    for (key, item) in map.iter_mut() {
        round_numbers(item, Precision::of(key, precision));
    }
}

/// [`round_numbers`] as JSON output applies it, for the property tests.
#[cfg(test)]
pub fn round_for_test(value: &mut Value) {
    round_numbers(value, Precision::Significant);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounded(value: Value) -> Value {
        let mut value = value;
        round_numbers(&mut value, Precision::Significant);
        value
    }

    #[test]
    fn milliseconds_keep_three_decimals() {
        let value = rounded(json!({"latency_ms": 1684.0000000000002, "wait_ms": 12.34567}));
        assert_eq!(value, json!({"latency_ms": 1684.0, "wait_ms": 12.346}));
    }

    #[test]
    fn fields_inside_a_milliseconds_field_are_milliseconds() {
        let value = rounded(json!({"latency_ms": {"p50": 0.1 + 0.2, "p99": 250.00000000001}}));
        assert_eq!(value, json!({"latency_ms": {"p50": 0.3, "p99": 250.0}}));
    }

    #[test]
    fn dollars_keep_eight_decimals() {
        let value = rounded(json!({"cost_usd": 0.000123456789, "mean_cost_usd": 0.1 + 0.7}));
        assert_eq!(value, json!({"cost_usd": 0.00012346, "mean_cost_usd": 0.8}));
    }

    #[test]
    fn other_floats_keep_six_significant_digits_and_integers_stay_exact() {
        let value = rounded(json!({"p_value": 0.012345678, "error_rate": 1e-12 + 0.5,
                                    "requests": 18446744073709551615u64, "bucket": 0.7484}));
        assert_eq!(
            value,
            json!({"p_value": 0.0123457, "error_rate": 0.5,
                   "requests": 18446744073709551615u64, "bucket": 0.7484})
        );
    }
}
