//! The method registry: ids, parameters (SPEC §5 names), properties and one dispatch function
//! shared by the CLI, the sweeps and the GUI.

use ndarray::{Array2, ArrayView3, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::combiner::{self, Variant};
use super::{
    AttentionError, HeadInput, MatrixBudget, band, dense, fmm, linear, linformer, nystrom,
    performer, svd,
};

/// Method ids as in SPEC §3 (`full`, `band`, `linear`, `fmm`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodId {
    /// Exact softmax attention.
    Full,
    /// FMMformer near field (banded softmax).
    Band,
    /// Feature-map (linear) attention, the FMMformer far field.
    Linear,
    /// FMMformer blend `w1·near + w2·Σ_l λ_l far_l`.
    Fmm,
    /// Performer FAVOR+ positive orthogonal random features.
    Performer,
    /// Nyströmformer segment-mean landmarks (bidirectional only).
    Nystrom,
    /// Linformer length projection (bidirectional only).
    Linformer,
    /// Optimal rank-r approximation of the exact matrix (Eckart–Young; analysis only).
    Svd,
    /// Combiner-Fixed (combiner.md §3.1).
    CombinerFixed,
    /// Combiner-Logsparse (combiner.md §3.2).
    CombinerLogsparse,
    /// Combiner-Axial, rowmajor (combiner.md §3.3a).
    CombinerAxial,
    /// Combiner-Mixture (combiner.md §3.4a).
    CombinerMixture,
}

impl MethodId {
    /// Every method, in display order.
    pub const ALL: &'static [MethodId] = &[
        MethodId::Full,
        MethodId::Band,
        MethodId::Linear,
        MethodId::Fmm,
        MethodId::Performer,
        MethodId::Nystrom,
        MethodId::Linformer,
        MethodId::Svd,
        MethodId::CombinerFixed,
        MethodId::CombinerLogsparse,
        MethodId::CombinerAxial,
        MethodId::CombinerMixture,
    ];

    /// The id string used everywhere (CLI, CSV, notebook).
    pub fn as_str(self) -> &'static str {
        match self {
            MethodId::Full => "full",
            MethodId::Band => "band",
            MethodId::Linear => "linear",
            MethodId::Fmm => "fmm",
            MethodId::Performer => "performer",
            MethodId::Nystrom => "nystrom",
            MethodId::Linformer => "linformer",
            MethodId::Svd => "svd",
            MethodId::CombinerFixed => "combiner-fixed",
            MethodId::CombinerLogsparse => "combiner-logsparse",
            MethodId::CombinerAxial => "combiner-axial",
            MethodId::CombinerMixture => "combiner-mixture",
        }
    }

    /// Parses an id string (exact SPEC spelling).
    ///
    /// # Errors
    /// A message listing the known ids.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|m| m.as_str()).collect();
                format!("unknown method '{s}' (known: {})", known.join(", "))
            })
    }

    /// Properties of this method with these parameters on inputs of this head_dim.
    pub fn properties(self, params: &MethodParams, head_dim: usize) -> MethodProperties {
        match self {
            MethodId::Full => MethodProperties {
                rank_bound: None,
                rank_note: "full rank".into(),
                non_negative: true,
                rows_sum_to_one: true,
                supports_causal: true,
                supports_bidirectional: true,
                cost: "O(L²·d)",
            },
            MethodId::Band => MethodProperties {
                rank_bound: None,
                rank_note: format!("banded, bandwidth {}", params.bandwidth),
                non_negative: true,
                rows_sum_to_one: true,
                supports_causal: true,
                supports_bidirectional: true,
                cost: "O(L·b·d)",
            },
            MethodId::Linear => MethodProperties {
                rank_bound: Some(head_dim),
                rank_note: format!("≤ head_dim = {head_dim}"),
                non_negative: true,
                rows_sum_to_one: params.normalization == Normalization::Row,
                supports_causal: true,
                supports_bidirectional: true,
                cost: "O(L·d·d_v)",
            },
            MethodId::Fmm => {
                let kernels = params.feature_maps.len().max(1);
                let lambdas = fmm::lambdas(params);
                let non_negative =
                    params.w1 >= 0.0 && params.w2 >= 0.0 && lambdas.iter().all(|l| *l >= 0.0);
                let total = params.w1 + params.w2 * lambdas.iter().sum::<f32>();
                MethodProperties {
                    rank_bound: None,
                    rank_note: format!(
                        "band (bandwidth {}) + far field of rank ≤ {}",
                        params.bandwidth,
                        kernels * head_dim
                    ),
                    non_negative,
                    rows_sum_to_one: params.normalization == Normalization::Row
                        && (total - 1.0).abs() < 1e-6,
                    supports_causal: true,
                    supports_bidirectional: true,
                    cost: "O(L·(b + r·d)·d)",
                }
            }
            MethodId::Performer => MethodProperties {
                rank_bound: Some(params.num_features),
                rank_note: format!("≤ num_features = {}", params.num_features),
                non_negative: true,
                rows_sum_to_one: true,
                supports_causal: true,
                supports_bidirectional: true,
                cost: "O(L·m·d)",
            },
            MethodId::Nystrom => MethodProperties {
                rank_bound: Some(params.num_landmarks),
                rank_note: format!("≤ num_landmarks = {}", params.num_landmarks),
                non_negative: false,
                // Exactly with the exact pseudo-inverse (A_S⁻¹1 = 1); approximately with the
                // 6-step iteration.
                rows_sum_to_one: params.exact_pinv,
                supports_causal: false,
                supports_bidirectional: true,
                cost: "O(L·m·d + m³)",
            },
            MethodId::Linformer => MethodProperties {
                rank_bound: Some(params.proj_dim),
                rank_note: format!("≤ proj_dim = {}", params.proj_dim),
                non_negative: params.projection == Projection::MeanPool,
                rows_sum_to_one: params.projection == Projection::MeanPool,
                supports_causal: false,
                supports_bidirectional: true,
                cost: "O(L·k·d)",
            },
            MethodId::Svd => MethodProperties {
                rank_bound: Some(params.rank),
                rank_note: format!("= rank {} (optimal, Eckart–Young)", params.rank),
                non_negative: false,
                rows_sum_to_one: false,
                supports_causal: true,
                supports_bidirectional: true,
                cost: "O(L³) (analysis only; needs the exact A)",
            },
            MethodId::CombinerFixed
            | MethodId::CombinerLogsparse
            | MethodId::CombinerAxial
            | MethodId::CombinerMixture => MethodProperties {
                rank_bound: None,
                rank_note: "full rank on direct blocks; rank 1 on every shared region".into(),
                non_negative: true,
                rows_sum_to_one: true,
                supports_causal: true,
                supports_bidirectional: true,
                cost: if self == MethodId::CombinerLogsparse {
                    "O(L·log L·d)"
                } else {
                    "O(L·√L·d)"
                },
            },
        }
    }
}

impl std::fmt::Display for MethodId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Feature maps φ of linear attention and the FMMformer far field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureMap {
    /// φ1(x) = elu(x) + 1.
    Elu,
    /// φ2(x) = elu(−x) + 1.
    EluNeg,
    /// φ3(x) = tanh(x) + 1.
    Tanh,
}

impl FeatureMap {
    /// Every feature map, in FMMformer's kernel order.
    pub const ALL: &'static [FeatureMap] = &[FeatureMap::Elu, FeatureMap::EluNeg, FeatureMap::Tanh];

    /// Applies φ to one number.
    pub fn apply(self, x: f32) -> f32 {
        let elu1 = |t: f32| if t > 0.0 { t + 1.0 } else { t.exp() };
        match self {
            FeatureMap::Elu => elu1(x),
            FeatureMap::EluNeg => elu1(-x),
            FeatureMap::Tanh => x.tanh() + 1.0,
        }
    }

    /// CLI spelling: `elu`, `elu-neg`, `tanh`.
    pub fn as_str(self) -> &'static str {
        match self {
            FeatureMap::Elu => "elu",
            FeatureMap::EluNeg => "elu-neg",
            FeatureMap::Tanh => "tanh",
        }
    }

    /// Parses the CLI spelling.
    ///
    /// # Errors
    /// A message naming the allowed values.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .copied()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown feature map '{s}' (elu, elu-neg, tanh)"))
    }
}

/// Normalisation of feature-map attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalization {
    /// Rows normalised to sum to 1 (paper / linear attention; default).
    Row,
    /// LRA code: `φ(Q)φ(K)ᵀ/√d`, rows do not sum to 1.
    None,
}

/// Linformer projection along the length axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Projection {
    /// Mean-pool contiguous segments.
    MeanPool,
    /// Seeded Gaussian projection.
    Gaussian,
}

/// Pooling of Combiner summary keys / queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// Elementwise max (official default).
    Max,
    /// Elementwise mean.
    Mean,
}

/// Combiner-Axial summary key of a row abstraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRow {
    /// Weighted sum of the row's keys (default).
    Wsum,
    /// The key at the summary query's position, `k_{r',c}` (TF `row_summary='none'`).
    None,
}

/// Every method parameter, with the SPEC §5 names. Methods read the fields they use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MethodParams {
    /// Near-field bandwidth b (C2).
    pub bandwidth: usize,
    /// Rank r (SVD, far-field truncation).
    pub rank: usize,
    /// Feature maps of the far field (1–3 kernels).
    pub feature_maps: Vec<FeatureMap>,
    /// Normalisation of feature-map attention.
    pub normalization: Normalization,
    /// FMMformer near-field weight.
    pub w1: f32,
    /// FMMformer far-field weight.
    pub w2: f32,
    /// Per-kernel far-field weights λ_l (default 1/kernels each).
    pub lambdas: Option<Vec<f32>>,
    /// Fit (w1, w2) by least squares against the exact matrix.
    pub fit: bool,
    /// Performer random features m.
    pub num_features: usize,
    /// Nyström landmarks m.
    pub num_landmarks: usize,
    /// Nyström: exact pseudo-inverse instead of the 6-step iteration.
    pub exact_pinv: bool,
    /// Linformer projected length k.
    pub proj_dim: usize,
    /// Linformer projection.
    pub projection: Projection,
    /// Combiner block size s (default ⌈√L⌉).
    pub block: Option<usize>,
    /// Combiner pooling.
    pub pooling: Pooling,
    /// Combiner-Axial summary key.
    pub key_row: KeyRow,
    /// Seed of every random choice (C7).
    pub seed: u64,
}

impl Default for MethodParams {
    fn default() -> Self {
        Self {
            bandwidth: 4,
            rank: 8,
            feature_maps: vec![FeatureMap::Elu],
            normalization: Normalization::Row,
            w1: 0.5,
            w2: 0.5,
            lambdas: None,
            fit: false,
            num_features: 64,
            num_landmarks: 16,
            exact_pinv: false,
            proj_dim: 16,
            projection: Projection::MeanPool,
            block: None,
            pooling: Pooling::Max,
            key_row: KeyRow::Wsum,
            seed: 0,
        }
    }
}

/// What a method guarantees about its effective matrix Â (shown in the UI and reports).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodProperties {
    /// Upper bound on rank(Â); `None` when Â can have full rank.
    pub rank_bound: Option<usize>,
    /// Human-readable rank statement.
    pub rank_note: String,
    /// Every entry of Â is ≥ 0.
    pub non_negative: bool,
    /// Every visible row of Â sums to 1.
    pub rows_sum_to_one: bool,
    /// Causal attention is defined.
    pub supports_causal: bool,
    /// Bidirectional attention is defined.
    pub supports_bidirectional: bool,
    /// Time cost in L.
    pub cost: &'static str,
}

/// One head's result of [`compute`].
#[derive(Debug, Clone)]
pub struct MethodResult {
    /// Output `[seq_len_q, value_dim]`.
    pub output: Array2<f32>,
    /// Effective matrix Â `[seq_len_q, seq_len_kv]`, when requested and within budget.
    pub matrix: Option<Array2<f32>>,
    /// Why the matrix is missing although requested (C8), if so.
    pub matrix_note: Option<String>,
    /// Properties of the method with the parameters used.
    pub properties: MethodProperties,
    /// Parameters actually used (after fitting / clamping).
    pub params: MethodParams,
    /// Notes about clamped or fitted parameters.
    pub notes: Vec<String>,
}

/// Runs `method` on one head: the output always, and the effective matrix Â when
/// `want_matrix` and it fits `budget` (otherwise `matrix_note` says why it is missing).
///
/// # Errors
/// [`AttentionError`] for invalid parameters, unsupported causality, or (FMMformer `fit`)
/// when the exact matrix needed for the fit exceeds the budget.
///
/// # Complexity
/// That of the method (see each kernel); Â adds O(Lq·Lk) memory.
pub fn compute(
    method: MethodId,
    params: &MethodParams,
    head: &HeadInput<'_>,
    want_matrix: bool,
    budget: MatrixBudget,
) -> Result<MethodResult, AttentionError> {
    let mut params = params.clone();
    let mut notes = Vec::new();
    let properties_for = |p: &MethodParams| method.properties(p, head.head_dim());
    let (output, matrix) = match method {
        MethodId::Full => {
            let (out, m) = match dense::full_attention(head, want_matrix, budget) {
                Ok(r) => r,
                Err(AttentionError::OverBudget { .. }) if want_matrix => {
                    (dense::full_attention(head, false, budget)?.0, None)
                }
                Err(e) => return Err(e),
            };
            (out, m)
        }
        MethodId::Band => {
            let out = band::band_attention(head, params.bandwidth);
            let m = if want_matrix {
                band::band_matrix(head, params.bandwidth, budget).ok()
            } else {
                None
            };
            (out, m)
        }
        MethodId::Linear => {
            let map = *params.feature_maps.first().unwrap_or(&FeatureMap::Elu);
            let out = linear::linear_attention(head, map, params.normalization);
            let m = if want_matrix {
                linear::linear_matrix(head, map, params.normalization, budget).ok()
            } else {
                None
            };
            (out, m)
        }
        MethodId::Fmm => {
            fmm::validate(&params)?;
            if params.fit {
                let (w1, w2) = fmm::fit_weights(head, &params, budget)?;
                notes.push(format!(
                    "fitted w1 = {w1:.6}, w2 = {w2:.6} (least squares against exact A)"
                ));
                params.w1 = w1;
                params.w2 = w2;
            }
            let out = fmm::fmm_attention(head, &params);
            let m = if want_matrix {
                fmm::fmm_matrix(head, &params, budget).ok()
            } else {
                None
            };
            (out, m)
        }
        MethodId::Performer => {
            if params.num_features > performer::MAX_FEATURES {
                notes.push(format!(
                    "num_features {} clamped to {}",
                    params.num_features,
                    performer::MAX_FEATURES
                ));
                params.num_features = performer::MAX_FEATURES;
            }
            let out = performer::performer_attention(head, params.num_features, params.seed)?;
            let m = if want_matrix {
                performer::performer_matrix(head, params.num_features, params.seed, budget).ok()
            } else {
                None
            };
            (out, m)
        }
        MethodId::Nystrom => {
            let max = head.seq_len_q().min(head.seq_len_kv());
            if !head.causal && max > 0 && params.num_landmarks > max {
                notes.push(format!(
                    "num_landmarks {} clamped to min(seq_len_q, seq_len_kv) = {max}",
                    params.num_landmarks
                ));
                params.num_landmarks = max;
            }
            let out = nystrom::nystrom_attention(head, params.num_landmarks, params.exact_pinv)?;
            let m = if want_matrix {
                nystrom::nystrom_matrix(head, params.num_landmarks, params.exact_pinv, budget).ok()
            } else {
                None
            };
            (out, m)
        }
        MethodId::Linformer => {
            let max = head.seq_len_kv();
            if !head.causal && max > 0 && params.proj_dim > max {
                notes.push(format!(
                    "proj_dim {} clamped to seq_len_kv = {max}",
                    params.proj_dim
                ));
                params.proj_dim = max;
            }
            let (k, proj, seed) = (params.proj_dim, params.projection, params.seed);
            let out = linformer::linformer_attention(head, k, proj, seed)?;
            let m = if want_matrix {
                linformer::linformer_matrix(head, k, proj, seed, budget).ok()
            } else {
                None
            };
            (out, m)
        }
        MethodId::Svd => {
            let (rank, note) =
                crate::analysis::svd::clamp_rank(params.rank, head.seq_len_q(), head.seq_len_kv());
            if rank > 0 || params.rank == 0 {
                notes.extend(note);
                params.rank = rank;
            }
            let r = svd::svd_approximation(head, params.rank, budget)?;
            (r.output, want_matrix.then_some(r.matrix))
        }
        MethodId::CombinerFixed => combiner::compute_for_method(
            Variant::Fixed,
            head,
            &mut params,
            &mut notes,
            want_matrix,
            budget,
        )?,
        MethodId::CombinerLogsparse => combiner::compute_for_method(
            Variant::Logsparse,
            head,
            &mut params,
            &mut notes,
            want_matrix,
            budget,
        )?,
        MethodId::CombinerAxial => combiner::compute_for_method(
            Variant::Axial,
            head,
            &mut params,
            &mut notes,
            want_matrix,
            budget,
        )?,
        MethodId::CombinerMixture => combiner::compute_for_method(
            Variant::Mixture,
            head,
            &mut params,
            &mut notes,
            want_matrix,
            budget,
        )?,
    };
    let matrix_note = (want_matrix && matrix.is_none()).then(|| {
        let bytes = head.seq_len_q().saturating_mul(head.seq_len_kv()).saturating_mul(4);
        format!(
            "effective matrix not materialised: {}×{} needs {bytes} bytes, over the {} byte budget (C8)",
            head.seq_len_q(),
            head.seq_len_kv(),
            budget.bytes
        )
    });
    Ok(MethodResult {
        output,
        matrix,
        matrix_note,
        properties: properties_for(&params),
        params,
        notes,
    })
}

/// Runs [`compute`] on every head of `[num_heads, seq_len, dim]` arrays, in parallel over heads
/// (each head sees the same parameters and seed, so a head's result does not depend on the
/// others, E9).
///
/// # Errors
/// The first head's error, if any; shape errors from [`HeadInput::new`].
#[allow(clippy::too_many_arguments)]
pub fn compute_heads(
    method: MethodId,
    params: &MethodParams,
    q: ArrayView3<'_, f32>,
    k: ArrayView3<'_, f32>,
    v: ArrayView3<'_, f32>,
    scale: Option<f32>,
    causal: bool,
    want_matrix: bool,
    budget: MatrixBudget,
) -> Result<Vec<MethodResult>, AttentionError> {
    let heads = q.len_of(Axis(0));
    (0..heads)
        .into_par_iter()
        .map(|h| {
            let head = HeadInput::new(
                q.index_axis(Axis(0), h),
                k.index_axis(Axis(0), h),
                v.index_axis(Axis(0), h),
                scale,
                causal,
            )?;
            compute(method, params, &head, want_matrix, budget)
        })
        .collect()
}
