//! Vectorised building blocks of the dense softmax: the row maximum and `exp(x − shift)` with
//! its sum. (The `vzeroupper` guard after faer calls is [`crate::zero_upper`].)
//!
//! `f32::exp`, `fold(f32::max)` and `iter().sum()` do not vectorise (strict IEEE semantics), so
//! these kernels keep 16 (AVX-512F) or 8 (AVX2 + FMA) lane accumulators and are chosen at run
//! time with `is_x86_feature_detected!`; other CPUs use a scalar fallback. The same masking rule
//! as [`super::softmax`] applies: callers pass only the visible logits of a row.
//!
//! # The exponential
//! `exp(x) = 2ⁿ · e^r` with `n = round(x·log₂e)` and `r = x − n·ln 2` (Cody–Waite split of
//! ln 2), `e^r ≈ 1 + r + r²·P(r)` with the degree-5 minimax polynomial of Cephes `expf`. `n` is
//! rounded with the magic number `1.5·2²³` and `2ⁿ` is built from the bits of the rounded value
//! (no float→int conversion in the vector code).
//!
//! Domain and accuracy (checked against f64 in the unit tests):
//! * `x ∈ [−87.33, 88]`: relative error ≤ [`EXP_REL_ERROR`] (4 ulp-sized steps of f32 ε);
//! * `x < −87.33` (including −∞) gives exactly `0` (the true value is subnormal, < 1.2·10⁻³⁸);
//! * `x > 88` gives `+∞` (the true value overflows at 88.72, so this flags overflow ~0.7 early);
//! * NaN gives NaN.
//!
//! The softmax only evaluates `x = s − max s ≤ 0`, well inside the domain.
//!
//! # References
//! S. L. Moshier, Cephes Mathematical Library, `expf.c`; W. J. Cody and W. Waite, "Software
//! Manual for the Elementary Functions", 1980 (argument reduction).

use std::sync::OnceLock;

/// Bound on the relative error of the vectorised `exp` on `[−87.33, 88]`: `4·ε_f32`.
pub const EXP_REL_ERROR: f32 = 4.0 * f32::EPSILON;

/// Instruction-set level a kernel runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F, 16 lanes.
    Avx512,
    /// AVX2 with FMA, 8 lanes.
    Avx2Fma,
    /// Portable scalar code (`f32::exp`).
    Scalar,
}

impl Isa {
    /// The best level this CPU supports (detected once, then cached).
    pub fn detected() -> Isa {
        static LEVEL: OnceLock<Isa> = OnceLock::new();
        *LEVEL.get_or_init(|| {
            [Isa::Avx512, Isa::Avx2Fma]
                .into_iter()
                .find(|isa| isa.is_available())
                .unwrap_or(Isa::Scalar)
        })
    }

    /// Whether this CPU can run the level.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every level this CPU can run (for tests and benchmarks).
    pub fn available() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2Fma, Isa::Scalar]
            .into_iter()
            .filter(|isa| isa.is_available())
            .collect()
    }

    /// `self` if available, else [`Isa::Scalar`].
    fn or_scalar(self) -> Isa {
        if self.is_available() {
            self
        } else {
            Isa::Scalar
        }
    }
}

/// Maximum of `xs`; NaN if any element is NaN; `−∞` for an empty slice.
///
/// # Complexity
/// O(n), no allocation; deterministic for a given CPU.
///
/// ```
/// use attnscope::attention::simd::row_max;
/// assert_eq!(row_max(&[1.0, 7.0, -3.0]), 7.0);
/// assert!(row_max(&[1.0, f32::NAN]).is_nan());
/// ```
pub fn row_max(xs: &[f32]) -> f32 {
    row_max_with(Isa::detected(), xs)
}

/// [`row_max`] at a chosen instruction-set level (falls back to scalar when unavailable).
pub fn row_max_with(isa: Isa, xs: &[f32]) -> f32 {
    match isa.or_scalar() {
        // SAFETY: `or_scalar` checked that the CPU supports AVX-512F.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::row_max_avx512(xs) },
        // SAFETY: `or_scalar` checked that the CPU supports AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => unsafe { x86::row_max_avx2(xs) },
        _ => row_max_scalar(xs),
    }
}

/// Replaces every `x` in `xs` by `exp(x − shift)` and returns the sum of the new values.
///
/// The sum uses 16 or 8 f32 lane accumulators (combined in a fixed order), so its relative
/// error is at most about `(n/lanes + 4)·ε_f32` for non-negative terms.
///
/// # Complexity
/// O(n), no allocation; deterministic for a given CPU.
///
/// ```
/// use attnscope::attention::simd::exp_shifted_sum;
/// let mut row = [0.0_f32, 0.0, 2.0_f32.ln()];
/// let sum = exp_shifted_sum(&mut row, 2.0_f32.ln());
/// assert!((row[2] - 1.0).abs() < 1e-6 && (sum - 2.0).abs() < 1e-6);
/// ```
pub fn exp_shifted_sum(xs: &mut [f32], shift: f32) -> f32 {
    exp_shifted_sum_with(Isa::detected(), xs, shift)
}

/// [`exp_shifted_sum`] at a chosen instruction-set level (falls back to scalar when
/// unavailable).
pub fn exp_shifted_sum_with(isa: Isa, xs: &mut [f32], shift: f32) -> f32 {
    match isa.or_scalar() {
        // SAFETY: `or_scalar` checked that the CPU supports AVX-512F.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::exp_shifted_sum_avx512(xs, shift) },
        // SAFETY: `or_scalar` checked that the CPU supports AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma => unsafe { x86::exp_shifted_sum_avx2(xs, shift) },
        _ => exp_shifted_sum_scalar(xs, shift),
    }
}

fn row_max_scalar(xs: &[f32]) -> f32 {
    let mut max = f32::NEG_INFINITY;
    for &x in xs {
        if x.is_nan() {
            return f32::NAN;
        }
        max = max.max(x);
    }
    max
}

fn exp_shifted_sum_scalar(xs: &mut [f32], shift: f32) -> f32 {
    let mut sum = 0.0_f32;
    for x in xs.iter_mut() {
        *x = (*x - shift).exp();
        sum += *x;
    }
    sum
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    const LOG2E: f32 = std::f32::consts::LOG2_E;
    /// `1.5·2²³`: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    /// ln 2 split so that `n·LN2_HI` is exact for |n| ≤ 2⁸.
    const LN2_HI: f32 = 355.0 / 512.0;
    const LN2_LO: f32 = -2.121_944_4e-4;
    /// Below this, `2ⁿ` would leave the normal range: the result is flushed to 0.
    const EXP_LO: f32 = -87.336_55;
    /// Above this, the result is +∞.
    const EXP_HI: f32 = 88.0;
    /// Cephes `expf` polynomial P(r), highest degree first; e^r ≈ 1 + r + r²·P(r).
    const P: [f32; 6] = [
        1.987_569_2e-4,
        1.398_2e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ];

    // ---------------- AVX-512F ----------------

    #[target_feature(enable = "avx512f")]
    fn exp512(x: __m512) -> __m512 {
        // max/min return their second operand when either is NaN: x stays NaN.
        let xc = _mm512_min_ps(
            _mm512_set1_ps(EXP_HI),
            _mm512_max_ps(_mm512_set1_ps(EXP_LO), x),
        );
        let magic = _mm512_set1_ps(MAGIC);
        let t = _mm512_fmadd_ps(xc, _mm512_set1_ps(LOG2E), magic);
        let n = _mm512_sub_ps(t, magic);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), xc);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
        let mut p = _mm512_set1_ps(P[0]);
        for &c in &P[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let r2 = _mm512_mul_ps(r, r);
        let er = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0)));
        // bits(t) = 0x4B40_0000 + n; (bits + 127) << 23 keeps only (n + 127) << 23 = bits(2ⁿ).
        let pow2n = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(
            _mm512_castps_si512(t),
            _mm512_set1_epi32(127),
        )));
        let y = _mm512_mul_ps(er, pow2n);
        let under = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm512_set1_ps(EXP_LO));
        let y = _mm512_mask_blend_ps(under, y, _mm512_setzero_ps());
        let over = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(x, _mm512_set1_ps(EXP_HI));
        _mm512_mask_blend_ps(over, y, _mm512_set1_ps(f32::INFINITY))
    }

    #[target_feature(enable = "avx512f")]
    fn load16(chunk: &[f32; 16]) -> __m512 {
        // SAFETY: `chunk` is 16 readable f32; loadu has no alignment requirement.
        unsafe { _mm512_loadu_ps(chunk.as_ptr()) }
    }

    #[target_feature(enable = "avx512f")]
    fn store16(chunk: &mut [f32; 16], v: __m512) {
        // SAFETY: `chunk` is 16 writable f32; storeu has no alignment requirement.
        unsafe { _mm512_storeu_ps(chunk.as_mut_ptr(), v) }
    }

    /// Caller must ensure AVX-512F is available.
    #[target_feature(enable = "avx512f")]
    pub(super) fn row_max_avx512(xs: &[f32]) -> f32 {
        let mut acc = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut nan: __mmask16 = 0;
        let (chunks, tail) = xs.as_chunks::<16>();
        for chunk in chunks {
            let x = load16(chunk);
            nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
            acc = _mm512_max_ps(acc, x);
        }
        let mut buf = [f32::NEG_INFINITY; 16];
        buf[..tail.len()].copy_from_slice(tail);
        let x = load16(&buf);
        nan |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
        acc = _mm512_max_ps(acc, x);
        if nan != 0 {
            return f32::NAN;
        }
        store16(&mut buf, acc);
        buf.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }

    /// Caller must ensure AVX-512F is available.
    #[target_feature(enable = "avx512f")]
    pub(super) fn exp_shifted_sum_avx512(xs: &mut [f32], shift: f32) -> f32 {
        let sh = _mm512_set1_ps(shift);
        let mut acc = _mm512_setzero_ps();
        let (chunks, tail) = xs.as_chunks_mut::<16>();
        for chunk in chunks {
            let y = exp512(_mm512_sub_ps(load16(chunk), sh));
            store16(chunk, y);
            acc = _mm512_add_ps(acc, y);
        }
        let n = tail.len();
        if n > 0 {
            // Padding lanes hold −∞, whose exp is exactly 0 and adds nothing to the sum.
            let mut buf = [f32::NEG_INFINITY; 16];
            buf[..n].copy_from_slice(tail);
            let y = exp512(_mm512_sub_ps(load16(&buf), sh));
            store16(&mut buf, y);
            tail.copy_from_slice(&buf[..n]);
            acc = _mm512_add_ps(acc, y);
        }
        let mut lanes = [0.0_f32; 16];
        store16(&mut lanes, acc);
        lanes.iter().sum()
    }

    // ---------------- AVX2 + FMA ----------------

    #[target_feature(enable = "avx2,fma")]
    fn exp256(x: __m256) -> __m256 {
        let xc = _mm256_min_ps(
            _mm256_set1_ps(EXP_HI),
            _mm256_max_ps(_mm256_set1_ps(EXP_LO), x),
        );
        let magic = _mm256_set1_ps(MAGIC);
        let t = _mm256_fmadd_ps(xc, _mm256_set1_ps(LOG2E), magic);
        let n = _mm256_sub_ps(t, magic);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), xc);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut p = _mm256_set1_ps(P[0]);
        for &c in &P[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let r2 = _mm256_mul_ps(r, r);
        let er = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0)));
        let pow2n = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_castps_si256(t),
            _mm256_set1_epi32(127),
        )));
        let y = _mm256_mul_ps(er, pow2n);
        let under = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_LO));
        let y = _mm256_andnot_ps(under, y);
        let over = _mm256_cmp_ps::<_CMP_GT_OQ>(x, _mm256_set1_ps(EXP_HI));
        _mm256_blendv_ps(y, _mm256_set1_ps(f32::INFINITY), over)
    }

    #[target_feature(enable = "avx2,fma")]
    fn load8(chunk: &[f32; 8]) -> __m256 {
        // SAFETY: `chunk` is 8 readable f32; loadu has no alignment requirement.
        unsafe { _mm256_loadu_ps(chunk.as_ptr()) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn store8(chunk: &mut [f32; 8], v: __m256) {
        // SAFETY: `chunk` is 8 writable f32; storeu has no alignment requirement.
        unsafe { _mm256_storeu_ps(chunk.as_mut_ptr(), v) }
    }

    /// Caller must ensure AVX2 and FMA are available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn row_max_avx2(xs: &[f32]) -> f32 {
        let mut acc = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut nan = _mm256_setzero_ps();
        let (chunks, tail) = xs.as_chunks::<8>();
        let mut buf = [f32::NEG_INFINITY; 8];
        buf[..tail.len()].copy_from_slice(tail);
        for chunk in chunks.iter().chain(std::iter::once(&buf)) {
            let x = load8(chunk);
            nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x));
            acc = _mm256_max_ps(acc, x);
        }
        if _mm256_movemask_ps(nan) != 0 {
            return f32::NAN;
        }
        let mut lanes = [0.0_f32; 8];
        store8(&mut lanes, acc);
        lanes.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }

    /// Caller must ensure AVX2 and FMA are available.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn exp_shifted_sum_avx2(xs: &mut [f32], shift: f32) -> f32 {
        let sh = _mm256_set1_ps(shift);
        let mut acc = _mm256_setzero_ps();
        let (chunks, tail) = xs.as_chunks_mut::<8>();
        for chunk in chunks {
            let y = exp256(_mm256_sub_ps(load8(chunk), sh));
            store8(chunk, y);
            acc = _mm256_add_ps(acc, y);
        }
        let n = tail.len();
        if n > 0 {
            let mut buf = [f32::NEG_INFINITY; 8];
            buf[..n].copy_from_slice(tail);
            let y = exp256(_mm256_sub_ps(load8(&buf), sh));
            store8(&mut buf, y);
            tail.copy_from_slice(&buf[..n]);
            acc = _mm256_add_ps(acc, y);
        }
        let mut lanes = [0.0_f32; 8];
        store8(&mut lanes, acc);
        lanes.iter().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rel_err(got: f32, want: f64) -> f64 {
        if want == 0.0 {
            f64::from(got).abs()
        } else {
            ((f64::from(got) - want) / want).abs()
        }
    }

    #[test]
    fn exp_matches_f64_over_the_domain_every_isa() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        // Up to 80 so that the f32 sum of ~4100 terms stays finite.
        let mut xs: Vec<f32> = (0..4099)
            .map(|_| rng.random_range(-87.0_f32..80.0))
            .collect();
        xs.extend([0.0, -0.0, 1.0, -1.0, 80.0, -87.3, 0.346_573_6, -0.346_573_6]);
        for isa in Isa::available() {
            let mut top = [88.0_f32, 87.9, -87.33];
            exp_shifted_sum_with(isa, &mut top, 0.0);
            for (&x, &y) in [88.0_f32, 87.9, -87.33].iter().zip(&top) {
                let want = f64::from(x).exp();
                assert!(
                    rel_err(y, want) <= f64::from(EXP_REL_ERROR),
                    "{isa:?}: exp({x}) = {y}"
                );
            }
            let mut ys = xs.clone();
            let sum = exp_shifted_sum_with(isa, &mut ys, 0.0);
            let mut want_sum = 0.0_f64;
            for (&x, &y) in xs.iter().zip(&ys) {
                let want = f64::from(x).exp();
                want_sum += want;
                assert!(
                    rel_err(y, want) <= f64::from(EXP_REL_ERROR),
                    "{isa:?}: exp({x}) = {y}, want {want}"
                );
            }
            // Lane sums: relative error ≤ (n/8 + 4)·ε (terms positive).
            let bound = (xs.len() as f64 / 8.0 + 4.0) * f64::from(f32::EPSILON);
            assert!(
                rel_err(sum, want_sum) <= bound,
                "{isa:?}: sum {sum} vs {want_sum}"
            );
        }
    }

    #[test]
    fn exp_edge_values_every_isa() {
        let xs = [
            f32::NEG_INFINITY,
            -1000.0,
            -87.5,
            f32::NAN,
            89.0,
            f32::INFINITY,
            0.0,
        ];
        for isa in Isa::available() {
            let mut ys = xs;
            let sum = exp_shifted_sum_with(isa, &mut ys, 0.0);
            // Vector levels flush to exactly 0; the scalar level returns f32::exp's subnormal.
            assert!(
                ys[..3].iter().all(|&y| (0.0..1.2e-38).contains(&y)),
                "{isa:?}: {ys:?}"
            );
            if isa != Isa::Scalar {
                assert_eq!(
                    &ys[..3],
                    &[0.0, 0.0, 0.0],
                    "{isa:?}: underflow flushes to 0"
                );
            }
            assert!(ys[3].is_nan(), "{isa:?}: NaN stays NaN");
            assert_eq!(ys[4], f32::INFINITY, "{isa:?}");
            assert_eq!(ys[5], f32::INFINITY, "{isa:?}");
            assert_eq!(ys[6], 1.0, "{isa:?}: exp(0) = 1 exactly");
            assert!(sum.is_nan(), "{isa:?}: a NaN term makes the sum NaN");
        }
    }

    #[test]
    fn shifted_softmax_rows_of_every_tail_length() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for n in 0..70 {
            let xs: Vec<f32> = (0..n).map(|_| rng.random_range(-30.0_f32..30.0)).collect();
            let max64 = xs
                .iter()
                .map(|&x| f64::from(x))
                .fold(f64::NEG_INFINITY, f64::max);
            for isa in Isa::available() {
                let m = row_max_with(isa, &xs);
                assert_eq!(f64::from(m), max64, "{isa:?} n={n}");
                if n == 0 {
                    continue;
                }
                let mut ys = xs.clone();
                let sum = exp_shifted_sum_with(isa, &mut ys, m);
                let want: f64 = xs.iter().map(|&x| (f64::from(x) - max64).exp()).sum();
                let bound = (n as f64 / 8.0 + 4.0) * f64::from(f32::EPSILON);
                assert!(
                    rel_err(sum, want) <= bound,
                    "{isa:?} n={n}: {sum} vs {want}"
                );
            }
        }
    }

    #[test]
    fn row_max_propagates_nan_anywhere_every_isa() {
        for n in 1..40 {
            for pos in [0, n / 2, n - 1] {
                let mut xs = vec![1.0_f32; n];
                xs[pos] = f32::NAN;
                for isa in Isa::available() {
                    assert!(row_max_with(isa, &xs).is_nan(), "{isa:?} n={n} pos={pos}");
                }
            }
        }
        for isa in Isa::available() {
            assert_eq!(row_max_with(isa, &[]), f32::NEG_INFINITY);
        }
    }

    #[test]
    fn detected_level_is_available() {
        assert!(Isa::detected().is_available());
        assert!(Isa::available().contains(&Isa::Scalar));
        crate::zero_upper();
    }
}
