//! Embedding lookup.

use ndarray::{Array2, ArrayRef2};

use super::NnError;

/// Rows of `table` picked by `ids` (PyTorch's `nn.Embedding`).
///
/// # Shapes
/// `table [vocab_size, features]`, `ids [seq_len]` → `[seq_len, features]`.
///
/// # Errors
/// [`NnError::TokenOutOfRange`] naming the first id that is not a row of `table`.
///
/// ```
/// use ndarray::array;
/// let table = array![[0.0_f32, 0.5], [1.0, 1.5], [2.0, 2.5]];
/// assert_eq!(attnscope::nn::embedding(&table, &[2, 0]).unwrap(), array![[2.0, 2.5], [0.0, 0.5]]);
/// assert!(attnscope::nn::embedding(&table, &[3]).is_err());
/// ```
pub fn embedding(table: &ArrayRef2<f32>, ids: &[u32]) -> Result<Array2<f32>, NnError> {
    let vocab_size = table.nrows();
    let mut out = Array2::<f32>::zeros((ids.len(), table.ncols()));
    for (position, (&id, mut row)) in ids.iter().zip(out.rows_mut()).enumerate() {
        let index = usize::try_from(id).ok().filter(|&i| i < vocab_size).ok_or(
            NnError::TokenOutOfRange {
                id,
                position,
                vocab_size,
            },
        )?;
        row.assign(&table.row(index));
    }
    Ok(out)
}
