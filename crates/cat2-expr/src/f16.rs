//! IEEE binary16 (`float16`) conversions.
//!
//! NumPy has no float16 arithmetic of its own: each float16 loop converts to float32,
//! computes, and rounds back. The evaluator does the same, keeping float16 columns as `f32`
//! values that are always exactly representable in float16, so only these conversions are
//! needed (no `half` dependency).

/// Rounds an `f64` to the nearest float16 (ties to even), as NumPy's `npy_double_to_half`.
pub(crate) fn f64_to_bits(x: f64) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 48) & 0x8000) as u16;
    let exp = ((bits >> 52) & 0x7ff) as i64;
    let man = bits & 0x000f_ffff_ffff_ffff;
    if exp == 0x7ff {
        if man == 0 {
            return sign | 0x7c00;
        }
        // Keep the top payload bits, and make sure the result is still a NaN.
        let payload = (man >> 42) as u16;
        return sign | 0x7c00 | if payload == 0 { 0x200 } else { payload };
    }
    // Biased float16 exponent of the value.
    let e = exp - 1023 + 15;
    if e >= 31 {
        return sign | 0x7c00;
    }
    let (m, shift) = if e <= 0 {
        // Subnormal float16 (or underflow to zero): include the implicit bit.
        if exp == 0 {
            return sign;
        }
        let shift = 42 + (1 - e);
        if shift > 53 {
            return sign;
        }
        (man | (1 << 52), shift as u32)
    } else {
        (((e as u64) << 52) | man, 42)
    };
    let half = 1u64 << (shift - 1);
    let rest = m & ((1u64 << shift) - 1);
    let mut out = m >> shift;
    if rest > half || (rest == half && out & 1 == 1) {
        // A carry out of the mantissa correctly bumps the exponent (up to infinity).
        out += 1;
    }
    sign | out as u16
}

/// Widens a float16 to `f32` (exact).
pub(crate) fn bits_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    let bits = match exp {
        0 => {
            if man == 0 {
                sign
            } else {
                // Subnormal: man * 2^-24.
                let v = man as f32 * f32::from_bits(0x3380_0000);
                return if sign != 0 { -v } else { v };
            }
        }
        0x1f => sign | 0x7f80_0000 | (man << 13),
        _ => sign | ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(bits)
}

/// Rounds an `f32` to the nearest float16 value, kept as `f32`.
#[inline]
pub(crate) fn round(x: f32) -> f32 {
    bits_to_f32(f64_to_bits(f64::from(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(f64_to_bits(1.0), 0x3c00);
        assert_eq!(f64_to_bits(-2.0), 0xc000);
        assert_eq!(f64_to_bits(65504.0), 0x7bff);
        assert_eq!(f64_to_bits(65519.0), 0x7bff);
        assert_eq!(f64_to_bits(65520.0), 0x7c00);
        assert_eq!(f64_to_bits(f64::INFINITY), 0x7c00);
        assert_eq!(f64_to_bits(5.960464477539063e-8), 0x0001);
        assert_eq!(f64_to_bits(2f64.powi(-25)), 0x0000); // halfway: to even (0)
        assert_eq!(f64_to_bits(2.99e-8), 0x0001);
        assert_eq!(f64_to_bits(6.097555160522461e-5), 0x03ff);
        assert_eq!(f64_to_bits(0.1), 0x2e66);
        assert_eq!(f64_to_bits(1.0 + 1.0 / 2048.0), 0x3c00); // tie to even
        assert_eq!(f64_to_bits(1.0 + 3.0 / 2048.0), 0x3c02);
        assert!(bits_to_f32(f64_to_bits(f64::NAN)).is_nan());
        assert_eq!(f64_to_bits(-0.0), 0x8000);
    }

    #[test]
    fn round_trips_every_half() {
        for h in 0..=u16::MAX {
            let f = bits_to_f32(h);
            if f.is_nan() {
                continue;
            }
            assert_eq!(f64_to_bits(f64::from(f)), h, "{h:#x}");
        }
    }
}
