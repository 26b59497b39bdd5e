//! One numeric matrix per CSV file (SPEC §4, edge case E16).
//!
//! Rules:
//! * Delimiter: `,` if the first non-empty line holds one, else `;`, else runs of whitespace
//!   (spaces and tabs: `"1 2\n3 4\n"`).
//! * Optional header: the first row is a header if and only if one of its fields is not a
//!   number. A numeric first row is never a header.
//! * A trailing empty column present on every row (`"1,2,\n3,4,\n"`) is dropped; an empty field
//!   anywhere else is an error naming its line and column.
//! * Ragged rows (`"1,2\n3\n"`) are an error naming the line.
//! * Values parse as f32, including `nan`, `inf`, `-inf`. Empty lines are skipped.
//! * An empty file, or a header alone, gives a matrix with 0 rows.

use std::path::Path;

use ndarray::Array2;

use super::DataError;

/// A row of fields with its 1-based line number.
type Row = (u64, Vec<String>);

fn csv_error(
    line: u64,
    column: Option<usize>,
    reason: impl Into<String>,
    path: &Path,
) -> DataError {
    DataError::Csv {
        line,
        column,
        reason: reason.into(),
        path: path.to_path_buf(),
    }
}

fn split_rows(text: &str, path: &Path) -> Result<Vec<Row>, DataError> {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let delimiter = if first.contains(',') {
        Some(b',')
    } else if first.contains(';') {
        Some(b';')
    } else {
        None
    };
    let mut rows = Vec::new();
    match delimiter {
        None => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                rows.push((
                    i as u64 + 1,
                    line.split_whitespace().map(str::to_string).collect(),
                ));
            }
        }
        Some(d) => {
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(d)
                .has_headers(false)
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            for record in reader.records() {
                let record = record.map_err(|e| {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    csv_error(line, None, e.to_string(), path)
                })?;
                let line = record.position().map(|p| p.line()).unwrap_or(0);
                let fields: Vec<String> = record.iter().map(str::to_string).collect();
                if fields.iter().all(|f| f.is_empty()) {
                    continue;
                }
                rows.push((line, fields));
            }
        }
    }
    Ok(rows)
}

/// Parses a CSV matrix from bytes; `path` names the file in errors.
///
/// # Errors
/// [`DataError::Csv`] naming the line (and column) for ragged rows, empty or non-numeric fields,
/// invalid UTF-8 or malformed quoting. Never panics.
///
/// ```
/// use std::path::Path;
/// let m = attnscope::data::csv_matrix::parse_csv(b"q0,q1\n1,2\n3,4\n", Path::new("q.csv")).unwrap();
/// assert_eq!(m, ndarray::array![[1.0f32, 2.0], [3.0, 4.0]]);
/// ```
pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<Array2<f32>, DataError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1;
        csv_error(line, None, "not valid UTF-8 text", path)
    })?;
    let mut rows = split_rows(text, path)?;
    let mut header_width = 0;
    // Header: the first row is a header iff one of its fields is not a number.
    if let Some((_, first)) = rows.first()
        && first
            .iter()
            .any(|f| !f.is_empty() && f.parse::<f32>().is_err())
    {
        header_width = rows.remove(0).1.len();
    }
    // Trailing empty column on every row is dropped.
    if !rows.is_empty()
        && rows
            .iter()
            .all(|(_, f)| f.len() > 1 && f.last().is_some_and(|x| x.is_empty()))
    {
        for (_, f) in rows.iter_mut() {
            f.pop();
        }
    }
    let Some((first_line, first)) = rows.first() else {
        // Empty, or a header alone: zero rows of the header's width (e.g. Lk = 0 keys).
        return Ok(Array2::zeros((0, header_width)));
    };
    let (first_line, cols) = (*first_line, first.len());
    let mut values = Vec::with_capacity(rows.len().saturating_mul(cols));
    for (line, fields) in &rows {
        if fields.len() != cols {
            return Err(csv_error(
                *line,
                None,
                format!(
                    "row has {} field(s) but line {first_line} has {cols}",
                    fields.len()
                ),
                path,
            ));
        }
        for (c, field) in fields.iter().enumerate() {
            if field.is_empty() {
                return Err(csv_error(*line, Some(c + 1), "empty field", path));
            }
            let x = field.parse::<f32>().map_err(|_| {
                csv_error(
                    *line,
                    Some(c + 1),
                    format!("'{field}' is not a number"),
                    path,
                )
            })?;
            values.push(x);
        }
    }
    Array2::from_shape_vec((rows.len(), cols), values)
        .map_err(|e| csv_error(first_line, None, e.to_string(), path))
}
