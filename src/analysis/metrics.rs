//! The C4 error measures between an exact result and an approximation.
//!
//! ```text
//! matrix relative Frobenius error   ‖Â − A‖_F / ‖A‖_F
//! output relative error             ‖Ô − O‖_F / ‖O‖_F
//! max absolute error                max |Â − A|
//! mean row KL(A‖Â)                  mean over rows that see a key of Σ_j A_ij ln(A_ij / Â_ij)
//! ```
//!
//! When a denominator is 0 the absolute error is reported and labelled ([`ErrorValue::Absolute`]).
//! KL is only defined where Â's rows are positive on A's support and sum to 1; otherwise
//! [`KlValue::NotApplicable`] says why (never NaN).

use ndarray::{Array2, Zip};
use serde::{Deserialize, Serialize};

/// A relative error, or the absolute error when the reference is all zeros.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum ErrorValue {
    /// `‖x̂ − x‖_F / ‖x‖_F`.
    Relative(f64),
    /// `‖x̂ − x‖_F` because `‖x‖_F = 0`.
    Absolute(f64),
    /// An input held NaN or infinity.
    NonFinite,
}

impl ErrorValue {
    /// The number, whichever kind (NaN for [`ErrorValue::NonFinite`]).
    pub fn value(&self) -> f64 {
        match *self {
            ErrorValue::Relative(x) | ErrorValue::Absolute(x) => x,
            ErrorValue::NonFinite => f64::NAN,
        }
    }
}

impl std::fmt::Display for ErrorValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorValue::Relative(x) => write!(f, "{x:.6}"),
            ErrorValue::Absolute(x) => write!(f, "{x:.6} (absolute: reference is zero)"),
            ErrorValue::NonFinite => f.write_str("n/a (non-finite values)"),
        }
    }
}

/// Mean row KL divergence, or why it is not defined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum KlValue {
    /// Mean over rows that see at least one key.
    Defined(f64),
    /// Not defined, with the reason.
    NotApplicable(String),
}

impl std::fmt::Display for KlValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KlValue::Defined(x) => write!(f, "{x:.6}"),
            KlValue::NotApplicable(why) => write!(f, "n/a ({why})"),
        }
    }
}

/// Every C4 measure for one approximation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorMetrics {
    /// `‖Â − A‖_F / ‖A‖_F`, when both matrices are available.
    pub matrix_rel_fro: Option<ErrorValue>,
    /// `‖Ô − O‖_F / ‖O‖_F`.
    pub output_rel: ErrorValue,
    /// `max |Â − A|`, when both matrices are available.
    pub matrix_max_abs: Option<f64>,
    /// `max |Ô − O|`.
    pub output_max_abs: f64,
    /// Mean row KL(A‖Â).
    pub mean_row_kl: KlValue,
}

/// `‖approx − exact‖_F / ‖exact‖_F` (f64 sums), absolute when `‖exact‖_F = 0`.
///
/// # Panics
/// If the shapes differ (a programming error, not an input error).
pub fn relative_frobenius(approx: &Array2<f32>, exact: &Array2<f32>) -> ErrorValue {
    assert_eq!(
        approx.dim(),
        exact.dim(),
        "relative_frobenius: shapes differ"
    );
    let (mut diff, mut norm) = (0.0_f64, 0.0_f64);
    Zip::from(approx).and(exact).for_each(|&a, &e| {
        let (a, e) = (f64::from(a), f64::from(e));
        diff += (a - e) * (a - e);
        norm += e * e;
    });
    if !diff.is_finite() || !norm.is_finite() {
        ErrorValue::NonFinite
    } else if norm == 0.0 {
        ErrorValue::Absolute(diff.sqrt())
    } else {
        ErrorValue::Relative(diff.sqrt() / norm.sqrt())
    }
}

/// `max |approx − exact|` (NaN if any difference is NaN).
pub fn max_abs(approx: &Array2<f32>, exact: &Array2<f32>) -> f64 {
    assert_eq!(approx.dim(), exact.dim(), "max_abs: shapes differ");
    let mut m = 0.0_f64;
    for (a, e) in approx.iter().zip(exact.iter()) {
        let d = (f64::from(*a) - f64::from(*e)).abs();
        if d.is_nan() {
            return f64::NAN;
        }
        m = m.max(d);
    }
    m
}

/// Mean row KL(A‖Â) over rows of A that see a key (C3 rows are skipped).
pub fn mean_row_kl(exact: &Array2<f32>, approx: &Array2<f32>) -> KlValue {
    assert_eq!(approx.dim(), exact.dim(), "mean_row_kl: shapes differ");
    let (mut total, mut rows) = (0.0_f64, 0usize);
    for (a_row, b_row) in exact.rows().into_iter().zip(approx.rows()) {
        let a_sum: f64 = a_row.iter().map(|&x| f64::from(x)).sum();
        if a_sum == 0.0 {
            continue;
        }
        if !a_sum.is_finite() || b_row.iter().any(|x| !x.is_finite()) {
            return KlValue::NotApplicable("non-finite values".into());
        }
        let b_sum: f64 = b_row.iter().map(|&x| f64::from(x)).sum();
        if (b_sum - 1.0).abs() > 1e-3 {
            return KlValue::NotApplicable(format!(
                "rows of Â do not sum to 1 (a row sums to {b_sum:.4})"
            ));
        }
        let mut kl = 0.0_f64;
        for (&p, &q) in a_row.iter().zip(b_row) {
            let (p, q) = (f64::from(p), f64::from(q));
            if p > 0.0 {
                if q <= 0.0 {
                    return KlValue::NotApplicable("Â is not positive where A is".into());
                }
                kl += p * (p / q).ln();
            }
        }
        total += kl;
        rows += 1;
    }
    if rows == 0 {
        KlValue::NotApplicable("no query sees a key".into())
    } else {
        KlValue::Defined(total / rows as f64)
    }
}

/// Compares an approximation with the exact result: outputs always, matrices when both are
/// given.
pub fn compare(
    exact_output: &Array2<f32>,
    approx_output: &Array2<f32>,
    exact_matrix: Option<&Array2<f32>>,
    approx_matrix: Option<&Array2<f32>>,
) -> ErrorMetrics {
    let (matrix_rel_fro, matrix_max_abs, mean_row_kl) = match (exact_matrix, approx_matrix) {
        (Some(a), Some(b)) => (
            Some(relative_frobenius(b, a)),
            Some(max_abs(b, a)),
            mean_row_kl(a, b),
        ),
        _ => (
            None,
            None,
            KlValue::NotApplicable("effective matrix not materialised".into()),
        ),
    };
    ErrorMetrics {
        matrix_rel_fro,
        output_rel: relative_frobenius(approx_output, exact_output),
        matrix_max_abs,
        output_max_abs: max_abs(approx_output, exact_output),
        mean_row_kl,
    }
}
