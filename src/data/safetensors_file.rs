//! `.safetensors` reading through the `safetensors` crate (format:
//! <https://github.com/huggingface/safetensors>): an 8-byte little-endian header length, a JSON
//! header with per-tensor dtype/shape/offsets and an optional `__metadata__` string map, then
//! the little-endian data.
//!
//! Names `q`, `k`, `v` (aliases `query`, `key`, `value`); dtypes F32, F64, F16, BF16 → f32
//! (others refused by name). Metadata keys `tokens`, `key_tokens`, `layers_kept` (JSON arrays
//! in a string), `causal`, `scale` (JSON values in a string), `model`, `source` (plain strings)
//! fill the [`Sidecar`] where no sidecar file gives them.

use std::path::Path;

use half::{bf16, f16};
use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors};

use super::{DataError, K_NAMES, Q_NAMES, RawQkv, Sidecar, V_NAMES, find_name};

fn st_err(e: impl std::fmt::Display, path: &Path) -> DataError {
    DataError::format("safetensors", e.to_string(), path)
}

fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

fn element_size(dtype: Dtype) -> usize {
    match dtype {
        Dtype::F64 => 8,
        Dtype::F32 => 4,
        _ => 2,
    }
}

fn metadata_sidecar(
    meta: Option<&std::collections::HashMap<String, String>>,
    path: &Path,
) -> Result<Sidecar, DataError> {
    let mut out = Sidecar::default();
    let Some(meta) = meta else {
        return Ok(out);
    };
    let bad = |key: &str, e: serde_json::Error| DataError::Sidecar {
        reason: format!("safetensors metadata '{key}': {e}"),
        path: path.to_path_buf(),
    };
    if let Some(s) = meta.get("tokens") {
        out.tokens = Some(serde_json::from_str(s).map_err(|e| bad("tokens", e))?);
    }
    if let Some(s) = meta.get("key_tokens") {
        out.key_tokens = Some(serde_json::from_str(s).map_err(|e| bad("key_tokens", e))?);
    }
    if let Some(s) = meta.get("layers_kept") {
        out.layers_kept = Some(serde_json::from_str(s).map_err(|e| bad("layers_kept", e))?);
    }
    if let Some(s) = meta.get("causal") {
        out.causal = Some(serde_json::from_str(s).map_err(|e| bad("causal", e))?);
    }
    if let Some(s) = meta.get("scale") {
        let scale: f32 = serde_json::from_str(s).map_err(|e| bad("scale", e))?;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(DataError::Sidecar {
                reason: format!(
                    "safetensors metadata 'scale' {scale} is not a finite positive number"
                ),
                path: path.to_path_buf(),
            });
        }
        out.scale = Some(scale);
    }
    out.model = meta.get("model").cloned();
    out.source = meta.get("source").cloned();
    Ok(out)
}

/// Reads q/k/v and the metadata from an in-memory `.safetensors` file.
pub(crate) fn read_qkv(bytes: &[u8], path: &Path) -> Result<(RawQkv, Sidecar), DataError> {
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| st_err(e, path))?;
    let sidecar = metadata_sidecar(metadata.metadata().as_ref(), path)?;
    let tensors = SafeTensors::deserialize(bytes).map_err(|e| st_err(e, path))?;
    let mut names: Vec<&str> = tensors.names();
    names.sort_unstable();
    let read = |wanted: &[&str; 2]| -> Result<ArrayD<f32>, DataError> {
        let name = find_name(&names, wanted, path)?;
        let view = tensors.tensor(name).map_err(|e| st_err(e, path))?;
        let dtype = view.dtype();
        let shape = view.shape().to_vec();
        let expected = shape
            .iter()
            .try_fold(element_size(dtype), |a, &b| a.checked_mul(b));
        let data = view.data();
        let values = to_f32(dtype, data).ok_or_else(|| DataError::UnsupportedDtype {
            array: name.to_string(),
            dtype: format!("{dtype:?}"),
            path: path.to_path_buf(),
        })?;
        if expected != Some(data.len()) {
            return Err(DataError::SizeMismatch {
                array: name.to_string(),
                shape: shape.iter().map(|&d| d as u64).collect(),
                claimed_elements: shape
                    .iter()
                    .try_fold(1u64, |a, &b| a.checked_mul(b as u64))
                    .unwrap_or(u64::MAX),
                claimed_bytes: expected.map(|e| e as u64).unwrap_or(u64::MAX),
                available_bytes: data.len() as u64,
                path: path.to_path_buf(),
            });
        }
        ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| st_err(e, path))
    };
    let raw = RawQkv {
        q: read(&Q_NAMES)?,
        k: read(&K_NAMES)?,
        v: read(&V_NAMES)?,
    };
    Ok((raw, sidecar))
}
