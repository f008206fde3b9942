//! Money for people: budget messages print amounts with enough digits to be read (a $0.0043
//! limit is not "$0.00").

/// Significant digits [`format_usd`] keeps below a dollar.
const USD_SIGNIFICANT_DIGITS: i32 = 4;
/// The most decimals [`format_usd`] prints: a nano-dollar, the budgets' unit.
const USD_MAX_DECIMALS: i32 = 9;

/// A USD amount for people: `$20.00`, `$0.0043`, `$0.003779`, `$0.00`. Cents from a dollar up;
/// below, four significant digits (at most nine decimals, the nano-dollars budgets count in),
/// so a small limit never prints as `$0.00`. Trailing zeros past the cents are dropped.
pub(crate) fn format_usd(amount: f64) -> String {
    if !amount.is_finite() {
        return format!("${amount}");
    }
    let magnitude = amount.abs();
    let decimals = if magnitude >= 1.0 || magnitude == 0.0 {
        2
    } else {
        // log10 of a positive finite number below 1 is negative and at least about -324.
        let exponent = magnitude.log10().floor() as i32;
        (USD_SIGNIFICANT_DIGITS - 1 - exponent).clamp(2, USD_MAX_DECIMALS)
    };
    let mut text = format!("{amount:.*}", decimals as usize);
    if let Some(point) = text.find('.') {
        let keep = point + 3;
        while text.len() > keep && text.ends_with('0') {
            text.pop();
        }
    }
    if let Some(unsigned) = text.strip_prefix('-') {
        format!("-${unsigned}")
    } else {
        format!("${text}")
    }
}

#[cfg(test)]
mod tests {
    use super::format_usd;

    #[test]
    fn a_small_limit_keeps_its_significant_digits() {
        assert_eq!(format_usd(0.0043), "$0.0043");
        assert_eq!(format_usd(0.003_779_2), "$0.003779");
        assert_eq!(format_usd(0.000_546), "$0.000546");
    }

    #[test]
    fn dollars_print_with_cents() {
        assert_eq!(format_usd(20.0), "$20.00");
        assert_eq!(format_usd(1234.5678), "$1234.57");
        assert_eq!(format_usd(0.5), "$0.50");
        assert_eq!(format_usd(0.0), "$0.00");
    }

    #[test]
    fn a_nano_dollar_is_the_finest_amount_printed() {
        assert_eq!(format_usd(0.000_000_001), "$0.000000001");
        assert_eq!(format_usd(1e-12), "$0.00");
    }

    #[test]
    fn negative_and_non_finite_amounts_do_not_panic() {
        assert_eq!(format_usd(-0.0043), "-$0.0043");
        assert_eq!(format_usd(f64::NAN), "$NaN");
    }
}
