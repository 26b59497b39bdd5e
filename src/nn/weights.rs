//! Named model weights read from one or more `.safetensors` files (a single
//! `model.safetensors` or the shards of a sharded checkpoint), converted to f32 on request.
//!
//! The header of each file is parsed and validated once by the `safetensors` crate (offsets
//! contiguous and inside the file, sizes matching shapes and dtypes) before any tensor is
//! read, so no tensor read can go past the bytes present. Tensors are converted one at a time
//! when the model asks for them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use ndarray::{Array1, Array2, ArrayD, IxDyn};
use safetensors::tensor::Metadata;
use safetensors::{Dtype, SafeTensors};

use super::NnError;

/// One `.safetensors` file held in memory with its parsed header.
#[derive(Debug)]
struct WeightFile {
    path: PathBuf,
    bytes: Vec<u8>,
    /// Byte offset of the data section (8 + header length).
    data_start: usize,
    metadata: Metadata,
}

/// Named tensors from one or more `.safetensors` files.
#[derive(Debug, Default)]
pub struct WeightStore {
    files: Vec<WeightFile>,
    /// Tensor name → index into `files`.
    index: HashMap<String, usize>,
}

impl WeightStore {
    /// A store holding the tensors of one file.
    ///
    /// # Errors
    /// [`NnError::WeightsFormat`] for a malformed file.
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, NnError> {
        let mut store = Self::default();
        store.add_file(bytes, path)?;
        Ok(store)
    }

    /// Adds the tensors of another file (a shard).
    ///
    /// # Errors
    /// [`NnError::WeightsFormat`] for a malformed file, [`NnError::DuplicateTensor`] when a
    /// tensor name is already present.
    pub fn add_file(&mut self, bytes: Vec<u8>, path: &Path) -> Result<(), NnError> {
        let (header_len, metadata) =
            SafeTensors::read_metadata(&bytes).map_err(|e| NnError::WeightsFormat {
                reason: e.to_string(),
                path: path.to_path_buf(),
            })?;
        let file_index = self.files.len();
        let mut names: Vec<(String, &_)> = metadata.tensors().into_iter().collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, _) in &names {
            if let Some(&other) = self.index.get(name) {
                return Err(NnError::DuplicateTensor {
                    name: name.clone(),
                    first: self.files[other].path.clone(),
                    second: path.to_path_buf(),
                });
            }
        }
        for (name, _) in names {
            self.index.insert(name, file_index);
        }
        self.files.push(WeightFile {
            path: path.to_path_buf(),
            bytes,
            data_start: 8 + header_len,
            metadata,
        });
        Ok(())
    }

    /// The weight files, in the order they were added.
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path.as_path()).collect()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when the store holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.index.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// True when a tensor of this name exists.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        let file = &self.files[*self.index.get(name)?];
        file.metadata.info(name).map(|i| i.shape.as_slice())
    }

    /// Dtype name of a tensor (`"F32"`, `"BF16"`, …), if present.
    pub fn dtype(&self, name: &str) -> Option<String> {
        let file = &self.files[*self.index.get(name)?];
        file.metadata.info(name).map(|i| format!("{:?}", i.dtype))
    }

    /// The `__metadata__` string map of the first file.
    pub fn metadata(&self) -> Option<&HashMap<String, String>> {
        self.files
            .first()
            .and_then(|f| f.metadata.metadata().as_ref())
    }

    /// The file(s) for error messages: one path, or the first shard's folder.
    fn describe(&self) -> PathBuf {
        match self.files.as_slice() {
            [one] => one.path.clone(),
            [first, ..] => first
                .path
                .parent()
                .map_or_else(PathBuf::new, Path::to_path_buf),
            [] => PathBuf::new(),
        }
    }

    fn missing(&self, name: &str) -> NnError {
        let names = self.names();
        NnError::MissingTensor {
            name: name.to_string(),
            count: names.len(),
            examples: names.iter().take(4).copied().collect::<Vec<_>>().join(", "),
            path: self.describe(),
        }
    }

    /// A tensor converted to f32 (from F32, F16, BF16 or F64), checked for non-finite values.
    ///
    /// # Errors
    /// [`NnError::MissingTensor`], [`NnError::UnsupportedDtype`], [`NnError::NonFiniteWeights`].
    pub fn tensor(&self, name: &str) -> Result<ArrayD<f32>, NnError> {
        let file = &self.files[*self.index.get(name).ok_or_else(|| self.missing(name))?];
        let info = file.metadata.info(name).ok_or_else(|| self.missing(name))?;
        let (start, end) = info.data_offsets;
        // `read_metadata` checked that the offsets are contiguous and end at the file's end.
        let data = &file.bytes[file.data_start + start..file.data_start + end];
        let values = to_f32(info.dtype, data).ok_or_else(|| NnError::UnsupportedDtype {
            name: name.to_string(),
            dtype: format!("{:?}", info.dtype),
            path: file.path.clone(),
        })?;
        let mut bad = values.iter().enumerate().filter(|(_, v)| !v.is_finite());
        if let Some((first, _)) = bad.next() {
            return Err(NnError::NonFiniteWeights {
                name: name.to_string(),
                count: 1 + bad.count(),
                first,
                path: file.path.clone(),
            });
        }
        ArrayD::from_shape_vec(IxDyn(&info.shape), values).map_err(|e| NnError::WeightsFormat {
            reason: format!("tensor '{name}': {e}"),
            path: file.path.clone(),
        })
    }

    fn check_shape(&self, name: &str, expected: &[usize]) -> Result<(), NnError> {
        let found = self.shape(name).ok_or_else(|| self.missing(name))?;
        if found != expected {
            let file = &self.files[self.index[name]];
            return Err(NnError::TensorShape {
                name: name.to_string(),
                expected: expected.to_vec(),
                found: found.to_vec(),
                path: file.path.clone(),
            });
        }
        Ok(())
    }

    /// A 2-D tensor of exactly `[rows, cols]` (checked before converting).
    ///
    /// # Errors
    /// As [`tensor`](WeightStore::tensor), plus [`NnError::TensorShape`].
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Array2<f32>, NnError> {
        self.check_shape(name, &[rows, cols])?;
        let t = self.tensor(name)?;
        t.into_dimensionality().map_err(|e| NnError::WeightsFormat {
            reason: format!("tensor '{name}': {e}"),
            path: self.describe(),
        })
    }

    /// A 1-D tensor of exactly `len` entries (checked before converting).
    ///
    /// # Errors
    /// As [`tensor`](WeightStore::tensor), plus [`NnError::TensorShape`].
    pub fn vector(&self, name: &str, len: usize) -> Result<Array1<f32>, NnError> {
        self.check_shape(name, &[len])?;
        let t = self.tensor(name)?;
        t.into_dimensionality().map_err(|e| NnError::WeightsFormat {
            reason: format!("tensor '{name}': {e}"),
            path: self.describe(),
        })
    }
}

/// Little-endian F32/F16/BF16/F64 bytes to f32; `None` for any other dtype.
pub fn to_f32(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn file(tensors: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn store_reads_converts_and_checks_shapes() {
        let half: Vec<u8> = [1.5_f32, -2.0]
            .iter()
            .flat_map(|&x| f16::from_f32(x).to_le_bytes())
            .collect();
        let bytes = file(&[
            (
                "a.weight",
                Dtype::F32,
                vec![2, 3],
                f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            ),
            ("a.bias", Dtype::F16, vec![2], half),
            ("ids", Dtype::I64, vec![1], vec![0; 8]),
        ]);
        let store = WeightStore::from_bytes(bytes, Path::new("m.safetensors")).unwrap();
        assert_eq!(store.names(), vec!["a.bias", "a.weight", "ids"]);
        assert_eq!(store.matrix("a.weight", 2, 3).unwrap()[[1, 2]], 6.0);
        assert_eq!(store.vector("a.bias", 2).unwrap().to_vec(), vec![1.5, -2.0]);
        let err = store.matrix("a.weight", 3, 2).unwrap_err().to_string();
        assert!(
            err.contains("'a.weight' has shape [2, 3], the configuration implies [3, 2]"),
            "{err}"
        );
        let err = store.tensor("ids").unwrap_err().to_string();
        assert!(err.contains("dtype I64"), "{err}");
        let err = store.vector("nope", 2).unwrap_err().to_string();
        assert!(
            err.contains("missing tensor 'nope'") && err.contains("m.safetensors"),
            "{err}"
        );
    }

    #[test]
    fn store_refuses_truncated_files_duplicates_and_non_finite_weights() {
        let bytes = file(&[("w", Dtype::F32, vec![2], f32_bytes(&[1.0, f32::NAN]))]);
        let store = WeightStore::from_bytes(bytes.clone(), Path::new("x.safetensors")).unwrap();
        let err = store.vector("w", 2).unwrap_err().to_string();
        assert!(
            err.contains("1 non-finite values (first at flat index 1)"),
            "{err}"
        );
        let truncated = bytes[..bytes.len() - 1].to_vec();
        let err = WeightStore::from_bytes(truncated, Path::new("t.safetensors")).unwrap_err();
        assert!(matches!(err, NnError::WeightsFormat { .. }), "{err}");
        for garbage in [
            vec![],
            vec![0xff; 8],
            b"\x10\0\0\0\0\0\0\0{not json}".to_vec(),
        ] {
            assert!(WeightStore::from_bytes(garbage, Path::new("g")).is_err());
        }
        let mut sharded = WeightStore::from_bytes(bytes.clone(), Path::new("a")).unwrap();
        let err = sharded
            .add_file(bytes, Path::new("b"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'w' appears in two weight files: a and b"),
            "{err}"
        );
    }
}
