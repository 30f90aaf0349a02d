//! The little floating-point maths `core` lacks without `libm`.

/// Rounds half away from zero and saturates to the `i32` range; NaN gives 0.
pub(crate) fn round_i32(x: f32) -> i32 {
    // `as` saturates and maps NaN to 0, so this never panics.
    if x >= 0.0 {
        (x + 0.5) as i32
    } else {
        (x - 0.5) as i32
    }
}

/// Square root by Newton's method from a bit-level first guess. Exact to a
/// few ULP for every finite positive input, which is all the RTD and tilt
/// maths need; negative input and NaN give NaN, +∞ gives +∞.
pub(crate) fn sqrt(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 || x == f32::INFINITY {
        return x;
    }
    // Halving the exponent gives a guess within a factor of ~1.4.
    let mut y = f32::from_bits((x.to_bits() >> 1) + 0x1fc0_0000);
    for _ in 0..4 {
        y = 0.5 * (y + x / y);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(round_i32(1.5), 2);
        assert_eq!(round_i32(-1.5), -2);
        assert_eq!(round_i32(1.49), 1);
        assert_eq!(round_i32(f32::NAN), 0);
        assert_eq!(round_i32(1e20), i32::MAX);
        assert_eq!(round_i32(-1e20), i32::MIN);
    }

    #[test]
    fn sqrt_edges() {
        assert_eq!(sqrt(0.0), 0.0);
        assert_eq!(sqrt(4.0), 2.0);
        assert!(sqrt(-1.0).is_nan());
        assert!(sqrt(f32::NAN).is_nan());
        assert_eq!(sqrt(f32::INFINITY), f32::INFINITY);
    }

    proptest! {
        #[test]
        fn sqrt_matches_std(x in 1e-30f32..1e30) {
            let ours = sqrt(x);
            let std = x.sqrt();
            prop_assert!((ours - std).abs() <= std * 4.0 * f32::EPSILON, "{x}: {ours} vs {std}");
        }
    }
}
