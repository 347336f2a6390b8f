//! Numbers as text, for people and for SVG attributes: fixed decimals done with integer
//! arithmetic. The browser bundle then carries none of the standard library's float
//! formatting (tens of kilobytes of WebAssembly) for what is always a few digits.

/// `v` with exactly `decimals` decimals (at most 6), rounded half away from zero.
pub fn fixed(v: f64, decimals: u32) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let decimals = decimals.min(6);
    let scale = 10u64.pow(decimals);
    // `as` saturates: absurd values print as the largest, never panic
    let n = (v.abs() * scale as f64 + 0.5) as u64;
    let (int, frac) = (n / scale, n % scale);
    let mut s = String::with_capacity(12);
    if v < 0.0 && n != 0 {
        s.push('-');
    }
    s.push_str(&int.to_string());
    if decimals > 0 {
        s.push('.');
        let f = frac.to_string();
        for _ in f.len()..decimals as usize {
            s.push('0');
        }
        s.push_str(&f);
    }
    s
}

/// Up to `max_decimals` decimals, trailing zeros dropped (`0.25`, `3`, `0.1235`).
pub fn compact(v: f64, max_decimals: u32) -> String {
    let s = fixed(v, max_decimals);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_decimals_round_half_away_from_zero() {
        assert_eq!(fixed(3.14159, 2), "3.14");
        assert_eq!(fixed(2.5, 0), "3");
        assert_eq!(fixed(-2.5, 0), "-3");
        assert_eq!(fixed(0.05, 1), "0.1");
        assert_eq!(fixed(12.0, 1), "12.0");
        assert_eq!(fixed(0.007, 2), "0.01");
        assert_eq!(fixed(-0.0001, 1), "0.0", "no negative zero");
        assert_eq!(fixed(1234.5678, 3), "1234.568");
        assert_eq!(fixed(f64::NAN, 2), "0");
        assert_eq!(fixed(1e300, 1), "1844674407370955161.5", "saturates, does not panic");
    }

    #[test]
    fn compact_drops_trailing_zeros() {
        assert_eq!(compact(0.25, 4), "0.25");
        assert_eq!(compact(3.0, 4), "3");
        assert_eq!(compact(0.123456, 4), "0.1235");
        assert_eq!(compact(-1.5, 2), "-1.5");
    }
}
