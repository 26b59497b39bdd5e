//! The one gateway to faer's SIMD routines: clears the upper halves of the AVX registers after a
//! faer call (`vzeroupper`). Without it, code compiled for the default target that runs after a
//! faer matmul or SVD can run ~40× slower on this CPU (see `performance_notes.md` §3).

/// Runs `f` (which calls faer) and then issues `vzeroupper` where AVX is available.
pub fn with_faer<T>(f: impl FnOnce() -> T) -> T {
    let out = f();
    zero_upper();
    out
}

/// Issues `vzeroupper` on x86-64 CPUs with AVX; does nothing elsewhere.
pub fn zero_upper() {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU supports AVX (checked just above), the only requirement of
            // `_mm256_zeroupper`.
            unsafe { zero_upper_avx() }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zero_upper_avx() {
    std::arch::x86_64::_mm256_zeroupper();
}
