//! Shared parameter flags (SPEC §5 names) and their conversion to [`MethodParams`].

use anyhow::{Result, bail};
use attnscope::attention::{
    FeatureMap, MatrixBudget, MethodParams, Normalization,
    method::{KeyRow, Pooling, Projection},
};
use attnscope::render::{Colormap, PoolMode, ValueScale};
use clap::Args;

/// Method parameters, named as everywhere else in attnscope.
#[derive(Debug, Clone, Args)]
pub struct ParamArgs {
    /// Causal attention (bottom-right aligned); default: the input's sidecar, else bidirectional.
    #[arg(long)]
    pub causal: bool,
    /// Force bidirectional attention even if the sidecar says causal.
    #[arg(long, conflicts_with = "causal")]
    pub bidirectional: bool,
    /// Scale of q·k (default: sidecar, else 1/sqrt(head_dim)).
    #[arg(long)]
    pub scale: Option<f32>,
    /// Near-field bandwidth b: keeps |i−j| ≤ b (causal: i−b ≤ j ≤ i). FMMformer diag_size = b+1.
    #[arg(long, default_value_t = 4)]
    pub bandwidth: usize,
    /// Rank r (far-field truncation, svd).
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// Feature map(s): elu, elu-neg, tanh (repeat or comma-separate for several kernels).
    #[arg(long = "feature-map", value_delimiter = ',', default_value = "elu")]
    pub feature_map: Vec<String>,
    /// Normalisation of feature-map attention: row or none (LRA code).
    #[arg(long, default_value = "row")]
    pub normalization: String,
    /// FMMformer near-field weight.
    #[arg(long, default_value_t = 0.5)]
    pub w1: f32,
    /// FMMformer far-field weight.
    #[arg(long, default_value_t = 0.5)]
    pub w2: f32,
    /// Fit (w1, w2) by least squares against exact attention.
    #[arg(long)]
    pub fit: bool,
    /// Performer random features.
    #[arg(long, default_value_t = 64)]
    pub num_features: usize,
    /// Nyström landmarks.
    #[arg(long, default_value_t = 16)]
    pub num_landmarks: usize,
    /// Nyström: exact pseudo-inverse instead of the 6-step iteration.
    #[arg(long)]
    pub exact_pinv: bool,
    /// Linformer projected length.
    #[arg(long, default_value_t = 16)]
    pub proj_dim: usize,
    /// Linformer projection: mean-pool or gaussian.
    #[arg(long, default_value = "mean-pool")]
    pub projection: String,
    /// Combiner block size (default ⌈√L⌉).
    #[arg(long)]
    pub block: Option<usize>,
    /// Combiner pooling: max or mean.
    #[arg(long, default_value = "max")]
    pub pooling: String,
    /// Combiner-Axial summary key: wsum or none.
    #[arg(long, default_value = "wsum")]
    pub key_row: String,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Largest L×L matrix to materialise, in MiB (C8).
    #[arg(long, default_value_t = 256)]
    pub budget_mib: usize,
}

impl ParamArgs {
    /// The method parameters these flags describe.
    ///
    /// # Errors
    /// An unknown enum spelling, naming the flag and the allowed values.
    pub fn method_params(&self) -> Result<MethodParams> {
        let feature_maps = self
            .feature_map
            .iter()
            .map(|s| FeatureMap::parse(s.trim()).map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()?;
        let normalization = match self.normalization.as_str() {
            "row" => Normalization::Row,
            "none" => Normalization::None,
            other => bail!("--normalization: unknown value '{other}' (row, none)"),
        };
        let projection = match self.projection.as_str() {
            "mean-pool" => Projection::MeanPool,
            "gaussian" => Projection::Gaussian,
            other => bail!("--projection: unknown value '{other}' (mean-pool, gaussian)"),
        };
        let pooling = match self.pooling.as_str() {
            "max" => Pooling::Max,
            "mean" => Pooling::Mean,
            other => bail!("--pooling: unknown value '{other}' (max, mean)"),
        };
        let key_row = match self.key_row.as_str() {
            "wsum" => KeyRow::Wsum,
            "none" => KeyRow::None,
            other => bail!("--key-row: unknown value '{other}' (wsum, none)"),
        };
        Ok(MethodParams {
            bandwidth: self.bandwidth,
            rank: self.rank,
            feature_maps,
            normalization,
            w1: self.w1,
            w2: self.w2,
            lambdas: None,
            fit: self.fit,
            num_features: self.num_features,
            num_landmarks: self.num_landmarks,
            exact_pinv: self.exact_pinv,
            proj_dim: self.proj_dim,
            projection,
            block: self.block,
            pooling,
            key_row,
            seed: self.seed,
        })
    }

    /// The C8 budget.
    pub fn budget(&self) -> MatrixBudget {
        MatrixBudget {
            bytes: self.budget_mib.saturating_mul(1024 * 1024),
        }
    }

    /// Causality: the flags, else the input's default.
    pub fn causal_or(&self, input_default: bool) -> bool {
        if self.causal {
            true
        } else if self.bidirectional {
            false
        } else {
            input_default
        }
    }
}

/// How heatmaps are drawn.
#[derive(Debug, Clone, Args)]
pub struct DisplayArgs {
    /// Colormap: viridis, magma, cividis.
    #[arg(long, default_value = "viridis")]
    pub colormap: String,
    /// Value scale: linear, log, power.
    #[arg(long = "color-scale", default_value = "linear")]
    pub color_scale: String,
    /// Nearest-neighbour upscaling of each cell.
    #[arg(long, default_value_t = 2)]
    pub upscale: usize,
    /// Largest side in cells before pooling.
    #[arg(long, default_value_t = 4096)]
    pub max_side: usize,
    /// Pooling above max-side: max or mean.
    #[arg(long = "pool", default_value = "max")]
    pub pool: String,
}

impl DisplayArgs {
    /// Parsed colormap, value scale and pooling.
    ///
    /// # Errors
    /// An unknown spelling, naming the flag.
    pub fn parse(&self) -> Result<(Colormap, ValueScale, PoolMode)> {
        let colormap = match self.colormap.as_str() {
            "viridis" => Colormap::Viridis,
            "magma" => Colormap::Magma,
            "cividis" => Colormap::Cividis,
            other => bail!("--colormap: unknown value '{other}' (viridis, magma, cividis)"),
        };
        let scale = match self.color_scale.as_str() {
            "linear" => ValueScale::Linear,
            "log" => ValueScale::Log { decades: 4.0 },
            "power" => ValueScale::Power { gamma: 0.5 },
            other => bail!("--color-scale: unknown value '{other}' (linear, log, power)"),
        };
        let pool = match self.pool.as_str() {
            "max" => PoolMode::Max,
            "mean" => PoolMode::Mean,
            other => bail!("--pool: unknown value '{other}' (max, mean)"),
        };
        Ok((colormap, scale, pool))
    }
}
