//! The one softmax every kernel shares (SPEC C3, C6; edge cases E1, E2, E17).
//!
//! ```text
//! softmax(s)_j = exp(s_j − max s) / Σ_t exp(s_t − max s)
//! ```
//!
//! Masking is done by the caller *removing* entries (passing only the visible logits), never by
//! adding a finite "−∞" stand-in or multiplying by zero: a query that can see no key gets an
//! empty slice and therefore an all-zero row (C3), and a NaN in a masked-out key can never reach
//! a visible row (C6). Subtracting the row maximum keeps `exp` ≤ 1, so logits such as 100 and 90
//! never overflow (E17).

/// Normalises `logits` in place into probabilities. An empty slice stays empty (the caller's
/// output row stays zero, C3). A NaN logit makes the whole row NaN, as exact attention would.
///
/// Sums accumulate in f64 so that rows of any length sum to 1 within f32 rounding.
///
/// # Complexity
/// O(n) time, no allocation. Deterministic.
///
/// ```
/// let mut row = [100.0_f32, 90.0];
/// attnscope::attention::softmax::softmax_in_place(&mut row);
/// assert!((row[0] - 0.999_954_6).abs() < 1e-6);
/// ```
pub fn softmax_in_place(logits: &mut [f32]) {
    if logits.is_empty() {
        return;
    }
    let max = row_max(logits);
    let mut sum = 0.0_f64;
    for x in logits.iter_mut() {
        *x = (*x - max).exp();
        sum += f64::from(*x);
    }
    let inv = (1.0 / sum) as f32;
    for x in logits.iter_mut() {
        *x *= inv;
    }
}

/// Maximum of a slice, propagating NaN (so a NaN logit poisons its own row only).
pub fn row_max(xs: &[f32]) -> f32 {
    let mut max = f32::NEG_INFINITY;
    for &x in xs {
        if x.is_nan() {
            return f32::NAN;
        }
        if x > max {
            max = x;
        }
    }
    max
}

/// Streaming ("online", flash-style) softmax-weighted sum for one query row.
///
/// Feed logits with their value rows in any number of chunks; [`OnlineSoftmax::finish`] writes
/// `Σ_j softmax(s)_j · v_j`. A row that received nothing finishes as zeros (C3).
///
/// ```text
/// m' = max(m, s_j);  l' = l·e^(m−m') + e^(s_j−m');  acc' = acc·e^(m−m') + e^(s_j−m')·v_j
/// ```
///
/// # References
/// Milakov & Gimelshein, "Online normalizer calculation for softmax", arXiv 1805.02867.
#[derive(Debug, Clone)]
pub struct OnlineSoftmax {
    max: f32,
    sum: f64,
    acc: Vec<f64>,
    seen: bool,
}

impl OnlineSoftmax {
    /// A fresh accumulator for values of width `value_dim`.
    pub fn new(value_dim: usize) -> Self {
        Self {
            max: f32::NEG_INFINITY,
            sum: 0.0,
            acc: vec![0.0; value_dim],
            seen: false,
        }
    }

    /// Adds one logit with its value row.
    ///
    /// # Panics
    /// If `value.len()` differs from the `value_dim` given to [`OnlineSoftmax::new`].
    pub fn push(&mut self, logit: f32, value: &[f32]) {
        assert_eq!(value.len(), self.acc.len(), "value width mismatch");
        self.seen = true;
        if logit.is_nan() || self.max.is_nan() {
            self.max = f32::NAN;
            return;
        }
        if logit > self.max {
            let rescale = f64::from((self.max - logit).exp());
            self.sum *= rescale;
            for a in &mut self.acc {
                *a *= rescale;
            }
            self.max = logit;
        }
        let w = f64::from((logit - self.max).exp());
        self.sum += w;
        for (a, &x) in self.acc.iter_mut().zip(value) {
            *a += w * f64::from(x);
        }
    }

    /// Writes the normalised weighted sum into `out` (zeros if nothing was pushed, NaN if a
    /// NaN logit was pushed).
    pub fn finish(&self, out: &mut [f32]) {
        if !self.seen {
            out.iter_mut().for_each(|o| *o = 0.0);
        } else if self.max.is_nan() {
            out.iter_mut().for_each(|o| *o = f32::NAN);
        } else {
            for (o, a) in out.iter_mut().zip(&self.acc) {
                *o = (a / self.sum) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_row_stays_empty() {
        let mut row: [f32; 0] = [];
        softmax_in_place(&mut row);
        let mut online = OnlineSoftmax::new(2);
        let mut out = [7.0_f32, 7.0];
        online.finish(&mut out);
        assert_eq!(out, [0.0, 0.0]);
        online.push(1.0, &[1.0, 2.0]);
        online.finish(&mut out);
        assert_eq!(out, [1.0, 2.0]);
    }

    #[test]
    fn e17_softmax_overflow_logits_100_and_90() {
        let mut row = [100.0_f32, 90.0];
        softmax_in_place(&mut row);
        assert!((row[0] - 0.999_954_6).abs() < 1e-6, "{row:?}");
        let mut online = OnlineSoftmax::new(1);
        online.push(100.0, &[1.0]);
        online.push(90.0, &[0.0]);
        let mut out = [0.0_f32];
        online.finish(&mut out);
        assert!((out[0] - 0.999_954_6).abs() < 1e-6);
    }

    #[test]
    fn online_matches_two_pass() {
        let logits = [0.3_f32, -1.2, 2.5, 0.0, 1.1];
        let values = [1.0_f32, 2.0, 3.0, 4.0, 5.0];
        let mut p = logits;
        softmax_in_place(&mut p);
        let expect: f32 = p.iter().zip(values).map(|(a, b)| a * b).sum();
        let mut online = OnlineSoftmax::new(1);
        for (s, v) in logits.iter().zip(values) {
            online.push(*s, &[v]);
        }
        let mut out = [0.0_f32];
        online.finish(&mut out);
        assert!((out[0] - expect).abs() < 1e-6);
    }
}
