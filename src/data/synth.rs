//! Seeded synthetic Q/K/V (SPEC §4, C7): gaussian, band-dominant ("local"), local with a few
//! global sink tokens ("local-global"), and band plus a smooth low-rank far field
//! ("low-rank-far").
//!
//! # Construction (scale `1/sqrt(head_dim)`, as C5)
//! * **positional part** — `pe(i) = [cos(ω_m i), sin(ω_m i)]_m` with frequencies `ω_m` drawn
//!   uniformly in `[0, π/4]`, so `pe(i)·pe(j) = Σ_m cos(ω_m (i−j))`: a sinc-like bump whose
//!   first zero is near `|i−j| = 4` and whose tail is small and irregular (random `ω`, no
//!   revivals). Queries and keys are `α·pe + 0.3·noise`, with `α` set so the diagonal logit is
//!   ≈ 8 (local): most attention mass lies within a few tokens of the diagonal.
//! * **sinks** (local-global) — the last feature is reserved: every query has `β` there and the
//!   sink keys (positions 0, L/4, L/2, 3L/4) have `β`, giving them a logit ≈ 9 from every
//!   query.
//! * **smooth far field** (low-rank-far) — half of the features carry `a·cos(π (c+1) i / L)`
//!   for `c < 4`, a rank-≤4 smooth logit term of size ≈ ±3; the other half a weaker band
//!   (diagonal logit ≈ 5).
//! * values are standard normal; gaussian draws q, k, v all standard normal.
//!
//! # Determinism and cost
//! ChaCha8 seeded with `seed`, one stream per head (`set_stream(head)`): bitwise reproducible,
//! independent of threads. Time O(H·L·d), memory O(H·L·d) (linear in L; L = 65,536 works).

use std::f32::consts::PI;

use ndarray::{Array4, ArrayViewMut2, s};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::{DataError, QkvSet, Sidecar, sha256_hex};

/// Largest `num_heads · seq_len · max(head_dim, 1)` accepted by [`SynthSpec::parse`]
/// (2^30 elements per tensor = 4 GiB).
pub const MAX_SYNTH_ELEMENTS: usize = 1 << 30;

/// Kind of synthetic input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthKind {
    /// q, k, v i.i.d. standard normal: attention close to uniform with noise.
    Gaussian,
    /// Band-dominant: most mass within a few tokens of the diagonal.
    Local,
    /// Band plus a few sink tokens every query attends to.
    LocalGlobal,
    /// A weaker band plus a smooth, low-rank far field.
    LowRankFar,
}

impl SynthKind {
    /// All kinds, in menu order.
    pub const ALL: [SynthKind; 4] = [
        SynthKind::Gaussian,
        SynthKind::Local,
        SynthKind::LocalGlobal,
        SynthKind::LowRankFar,
    ];

    /// The id used in source strings: `gaussian`, `local`, `local-global`, `low-rank-far`.
    pub fn id(self) -> &'static str {
        match self {
            SynthKind::Gaussian => "gaussian",
            SynthKind::Local => "local",
            SynthKind::LocalGlobal => "local-global",
            SynthKind::LowRankFar => "low-rank-far",
        }
    }
}

impl std::str::FromStr for SynthKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let norm = s.trim().to_ascii_lowercase().replace('_', "-");
        SynthKind::ALL
            .into_iter()
            .find(|k| k.id() == norm)
            .ok_or_else(|| {
                format!(
                    "unknown synthetic kind '{s}' (known: gaussian, local, local-global, low-rank-far)"
                )
            })
    }
}

/// Parameters of a synthetic input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthSpec {
    /// What structure to plant.
    pub kind: SynthKind,
    /// Tokens (queries = keys). Default 512.
    pub seq_len: usize,
    /// Query/key/value feature dimension. Default 64.
    pub head_dim: usize,
    /// Heads (each with its own random stream). Default 1.
    pub num_heads: usize,
    /// Seed (C7). Default 0.
    pub seed: u64,
}

impl Default for SynthSpec {
    fn default() -> Self {
        Self {
            kind: SynthKind::Local,
            seq_len: 512,
            head_dim: 64,
            num_heads: 1,
            seed: 0,
        }
    }
}

impl SynthSpec {
    /// The same parameters with another kind.
    pub fn with_kind(kind: SynthKind) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    /// Parses `synth:KIND[,L=..][,d=..][,heads=..][,seed=..]` (the `synth:` prefix is
    /// optional; `,` or spaces separate; keys `L`/`seq_len`, `d`/`head_dim`, `heads`/`H`,
    /// `seed`).
    ///
    /// # Errors
    /// [`DataError::BadSource`] for an unknown kind or key, a bad number, or a size over
    /// [`MAX_SYNTH_ELEMENTS`].
    pub fn parse(spec: &str) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::BadSource {
            spec: spec.to_string(),
            reason,
        };
        let body = spec.strip_prefix("synth:").unwrap_or(spec);
        let mut parts = body
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty());
        let kind: SynthKind = parts
            .next()
            .ok_or_else(|| bad(String::from("missing the kind")))?
            .parse()
            .map_err(bad)?;
        let mut out = SynthSpec::with_kind(kind);
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("'{part}' is not KEY=VALUE")))?;
            let num = |v: &str| {
                v.trim()
                    .replace('_', "")
                    .parse::<u64>()
                    .map_err(|_| bad(format!("'{v}' is not a non-negative integer for {key}")))
            };
            let as_usize =
                |n: u64| usize::try_from(n).map_err(|_| bad(format!("{key}={n} is too large")));
            match key.trim() {
                "L" | "l" | "seq_len" | "len" => out.seq_len = as_usize(num(value)?)?,
                "d" | "head_dim" => out.head_dim = as_usize(num(value)?)?,
                "heads" | "H" | "h" | "num_heads" => out.num_heads = as_usize(num(value)?)?,
                "seed" => out.seed = num(value)?,
                other => {
                    return Err(bad(format!(
                        "unknown key '{other}' (known: L, d, heads, seed)"
                    )));
                }
            }
        }
        let elements = out
            .num_heads
            .checked_mul(out.seq_len)
            .and_then(|x| x.checked_mul(out.head_dim.max(1)));
        match elements {
            Some(n) if n <= MAX_SYNTH_ELEMENTS => Ok(out),
            _ => Err(bad(format!(
                "heads·L·d = {}·{}·{} exceeds the limit of {MAX_SYNTH_ELEMENTS} elements",
                out.num_heads, out.seq_len, out.head_dim
            ))),
        }
    }

    /// The canonical source string, e.g. `synth:local L=512 d=64 heads=1 seed=0`.
    pub fn source(&self) -> String {
        format!(
            "synth:{} L={} d={} heads={} seed={}",
            self.kind.id(),
            self.seq_len,
            self.head_dim,
            self.num_heads,
            self.seed
        )
    }
}

/// Noise scale on positional queries/keys.
const NOISE: f32 = 0.3;

/// Adds `amp·pe(i)` over `dims` columns of `q` and `k` (same `pe` for both), with frequencies
/// drawn from `rng`. Column pairs (cos, sin); an odd last column is left untouched.
fn add_positional(
    rng: &mut ChaCha8Rng,
    mut q: ArrayViewMut2<f32>,
    mut k: ArrayViewMut2<f32>,
    dims: std::ops::Range<usize>,
    peak_logit: f32,
    head_dim: usize,
) {
    let pairs = dims.len() / 2;
    if pairs == 0 {
        return;
    }
    let omegas: Vec<f32> = (0..pairs).map(|_| rng.random::<f32>() * PI / 4.0).collect();
    // Diagonal logit = amp² · pairs / sqrt(head_dim).
    let amp = (peak_logit * (head_dim as f32).sqrt() / pairs as f32).sqrt();
    for i in 0..q.nrows() {
        for (m, &w) in omegas.iter().enumerate() {
            let (sin, cos) = (w * i as f32).sin_cos();
            let (c0, c1) = (dims.start + 2 * m, dims.start + 2 * m + 1);
            q[[i, c0]] += amp * cos;
            q[[i, c1]] += amp * sin;
            k[[i, c0]] += amp * cos;
            k[[i, c1]] += amp * sin;
        }
    }
}

fn fill_normal(rng: &mut ChaCha8Rng, mut a: ArrayViewMut2<f32>, sigma: f32) {
    for x in a.iter_mut() {
        let z: f32 = rng.sample(StandardNormal);
        *x = sigma * z;
    }
}

/// Sink positions for `local-global`: 0, L/4, L/2, 3L/4 (deduplicated, within `0..L`).
pub fn sink_positions(seq_len: usize) -> Vec<usize> {
    let mut s: Vec<usize> = [0, seq_len / 4, seq_len / 2, 3 * (seq_len / 4)]
        .into_iter()
        .filter(|&p| p < seq_len)
        .collect();
    s.dedup();
    s
}

/// Generates a synthetic input: `q`, `k`, `v` of shape `[1, num_heads, seq_len, head_dim]`,
/// `source` = [`SynthSpec::source`], checksum = SHA-256 of that string.
///
/// Deterministic: the same spec gives bitwise-identical arrays. Never panics (zero sizes give
/// empty arrays); the caller bounds the size (see [`SynthSpec::parse`]).
///
/// ```
/// use attnscope::data::{generate, SynthKind, SynthSpec};
/// let spec = SynthSpec { kind: SynthKind::Local, seq_len: 7, head_dim: 4, num_heads: 2, seed: 1 };
/// let a = generate(&spec);
/// assert_eq!(a.q.shape(), &[1, 2, 7, 4]);
/// assert_eq!(a.q, generate(&spec).q);
/// ```
pub fn generate(spec: &SynthSpec) -> QkvSet {
    let (h, l, d) = (spec.num_heads, spec.seq_len, spec.head_dim);
    let mut q = Array4::<f32>::zeros((1, h, l, d));
    let mut k = Array4::<f32>::zeros((1, h, l, d));
    let mut v = Array4::<f32>::zeros((1, h, l, d));
    for head in 0..h {
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        rng.set_stream(head as u64);
        let mut qh = q.slice_mut(s![0, head, .., ..]);
        let mut kh = k.slice_mut(s![0, head, .., ..]);
        match spec.kind {
            SynthKind::Gaussian => {
                fill_normal(&mut rng, qh.view_mut(), 1.0);
                fill_normal(&mut rng, kh.view_mut(), 1.0);
            }
            SynthKind::Local => {
                fill_normal(&mut rng, qh.view_mut(), NOISE);
                fill_normal(&mut rng, kh.view_mut(), NOISE);
                add_positional(&mut rng, qh.view_mut(), kh.view_mut(), 0..d, 8.0, d);
            }
            SynthKind::LocalGlobal => {
                fill_normal(&mut rng, qh.view_mut(), NOISE);
                fill_normal(&mut rng, kh.view_mut(), NOISE);
                if d > 0 {
                    add_positional(&mut rng, qh.view_mut(), kh.view_mut(), 0..d - 1, 8.0, d);
                    // Sink feature: logit β²/sqrt(d) ≈ 9 for every (query, sink key) pair.
                    let beta = (9.0 * (d as f32).sqrt()).sqrt();
                    let sinks = sink_positions(l);
                    for i in 0..l {
                        qh[[i, d - 1]] = beta;
                        kh[[i, d - 1]] = if sinks.contains(&i) { beta } else { 0.0 };
                    }
                }
            }
            SynthKind::LowRankFar => {
                fill_normal(&mut rng, qh.view_mut(), NOISE);
                fill_normal(&mut rng, kh.view_mut(), NOISE);
                let near = d / 2;
                add_positional(&mut rng, qh.view_mut(), kh.view_mut(), 0..near, 5.0, d);
                let rank = (d - near).min(4);
                if rank > 0 {
                    // Σ_c a_c b_c cos(π(c+1)i/L) cos(π(c+1)j/L): smooth, rank ≤ `rank`.
                    let total = 3.0 * (d as f32).sqrt();
                    let coeffs: Vec<(f32, f32)> = (0..rank)
                        .map(|_| {
                            let w = total / rank as f32;
                            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
                            (w.sqrt(), sign * w.sqrt())
                        })
                        .collect();
                    let denom = l.max(1) as f32;
                    for i in 0..l {
                        for (c, &(a, b)) in coeffs.iter().enumerate() {
                            let f = (PI * (c + 1) as f32 * i as f32 / denom).cos();
                            qh[[i, near + c]] += a * f;
                            kh[[i, near + c]] += b * f;
                        }
                    }
                }
            }
        }
        fill_normal(&mut rng, v.slice_mut(s![0, head, .., ..]), 1.0);
    }
    let source = spec.source();
    QkvSet {
        q,
        k,
        v,
        meta: Sidecar::default(),
        interpretation: format!(
            "synthetic {}: [layers=1, heads={h}, tokens={l}, head_dim={d}]",
            spec.kind.id()
        ),
        checksum: sha256_hex(&[source.as_bytes()]),
        source,
        non_finite: Vec::new(),
        non_finite_count: 0,
        warnings: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_defaults_and_keys() {
        let s = SynthSpec::parse("synth:local").unwrap();
        assert_eq!(s, SynthSpec::default());
        let s = SynthSpec::parse("synth:local-global,L=257,d=16,heads=3,seed=9").unwrap();
        assert_eq!(
            (s.kind, s.seq_len, s.head_dim, s.num_heads, s.seed),
            (SynthKind::LocalGlobal, 257, 16, 3, 9)
        );
        assert!(SynthSpec::parse("synth:nope").is_err());
        assert!(SynthSpec::parse("synth:local,x=3").is_err());
        assert!(SynthSpec::parse("synth:local,L=-1").is_err());
        assert!(SynthSpec::parse("synth:local,L=99999999999,d=9999999").is_err());
    }

    #[test]
    fn zero_sizes_give_empty_arrays() {
        for kind in SynthKind::ALL {
            for (l, d) in [(0, 4), (5, 0), (1, 1), (3, 2)] {
                let a = generate(&SynthSpec {
                    kind,
                    seq_len: l,
                    head_dim: d,
                    num_heads: 1,
                    seed: 0,
                });
                assert_eq!(a.q.shape(), &[1, 1, l, d]);
                assert!(a.q.iter().chain(a.k.iter()).all(|x| x.is_finite()));
            }
        }
    }
}
