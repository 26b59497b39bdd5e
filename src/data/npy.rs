//! NumPy `.npy` / `.npz` reading, with every size checked before allocating.
//!
//! Format: NEP 1 (<https://numpy.org/neps/nep-0001-npy-format.html>), versions 1.0, 2.0 and
//! 3.0: magic `\x93NUMPY`, version, a little-endian header length, then a Python dict literal
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` and the raw data.
//!
//! Accepted dtypes: `f2` (float16), `f4`, `f8`, little (`<`), big (`>`) or native (`=`)
//! endian → f32. C and Fortran order of any rank (read into C order). Refused with a typed
//! error: object arrays `|O` (would need unpickling — never done), structured dtypes, any other
//! dtype (named in the error), a header whose `shape × itemsize` exceeds the bytes present
//! (checked before any allocation).
//!
//! The header parser is a small non-recursive scanner written here on purpose: general
//! Python-literal parsers allocate the declared header length before checking it and recurse
//! on nested brackets, which arbitrary input could exploit.

use std::io::Read;
use std::path::Path;

use half::f16;
use ndarray::{ArrayD, IxDyn, ShapeBuilder};

use super::{DataError, K_NAMES, Q_NAMES, RawQkv, V_NAMES, find_name};

/// Longest header accepted (numpy itself writes a few hundred bytes; it caps at 10 KiB when
/// reading by default).
pub const MAX_HEADER_LEN: usize = 1 << 20;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Byte order of the stored elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// `<` (or `|` / `=` on little-endian machines).
    Little,
    /// `>`.
    Big,
}

/// Element type of a supported array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatKind {
    /// IEEE binary16 (`f2`).
    F16,
    /// IEEE binary32 (`f4`).
    F32,
    /// IEEE binary64 (`f8`).
    F64,
}

impl FloatKind {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            FloatKind::F16 => 2,
            FloatKind::F32 => 4,
            FloatKind::F64 => 8,
        }
    }
}

/// A parsed, validated `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The `descr` string as written.
    pub descr: String,
    /// Element type.
    pub kind: FloatKind,
    /// Byte order.
    pub order: ByteOrder,
    /// `fortran_order`.
    pub fortran_order: bool,
    /// Shape as written.
    pub shape: Vec<usize>,
    /// Bytes before the data (magic, version, length field, header text).
    pub data_offset: usize,
}

#[derive(Debug)]
enum Value {
    Str(String),
    Bool(bool),
    Ints(Vec<u64>),
    Other(String),
}

/// Minimal scanner for the header dict. Non-recursive; every failure is a message.
struct Scanner<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn skip_ws(&mut self) {
        while self
            .text
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.text.get(self.pos).copied()
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(format!(
                "expected '{}' at header byte {}, found '{}'",
                c as char,
                self.pos,
                x.escape_ascii()
            )),
            None => Err(format!("expected '{}' but the header ended", c as char)),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(format!(
                    "expected a quoted string at header byte {}",
                    self.pos
                ));
            }
        };
        self.pos += 1;
        let start = self.pos;
        while let Some(&c) = self.text.get(self.pos) {
            if c == b'\\' {
                return Err(String::from(
                    "escape sequences are not allowed in the header",
                ));
            }
            if c == quote {
                let s = String::from_utf8_lossy(&self.text[start..self.pos]).into_owned();
                self.pos += 1;
                return Ok(s);
            }
            self.pos += 1;
        }
        Err(String::from("unterminated string in the header"))
    }
    fn word(&mut self) -> &'a [u8] {
        self.skip_ws();
        let start = self.pos;
        while self
            .text
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-' || *c == b'+')
        {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }
    /// Skips a bracketed value, returning its text. Iterative depth counting.
    fn skip_bracketed(&mut self) -> Result<String, String> {
        let start = self.pos;
        let mut depth: usize = 0;
        let mut quote: Option<u8> = None;
        while let Some(&c) = self.text.get(self.pos) {
            self.pos += 1;
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    b'\'' | b'"' => quote = Some(c),
                    b'(' | b'[' | b'{' => depth += 1,
                    b')' | b']' | b'}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Ok(
                                String::from_utf8_lossy(&self.text[start..self.pos]).into_owned()
                            );
                        }
                    }
                    _ => {}
                },
            }
        }
        Err(String::from("unbalanced brackets in the header"))
    }
    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'\'' | b'"') => self.string().map(Value::Str),
            Some(open @ (b'(' | b'[')) => {
                let save = self.pos;
                if let Ok(ints) = self.int_tuple(open) {
                    return Ok(Value::Ints(ints));
                }
                self.pos = save;
                self.skip_bracketed().map(Value::Other)
            }
            Some(b'{') => self.skip_bracketed().map(Value::Other),
            Some(_) => {
                let w = self.word();
                match w {
                    b"True" => Ok(Value::Bool(true)),
                    b"False" => Ok(Value::Bool(false)),
                    b"" => Err(format!("unexpected character at header byte {}", self.pos)),
                    other => Ok(Value::Other(String::from_utf8_lossy(other).into_owned())),
                }
            }
            None => Err(String::from("header ended where a value was expected")),
        }
    }
    fn int_tuple(&mut self, open: u8) -> Result<Vec<u64>, String> {
        let close = if open == b'(' { b')' } else { b']' };
        self.expect(open)?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) if c.is_ascii_digit() => {
                    let w = self.word();
                    let digits = w.strip_suffix(b"L").unwrap_or(w);
                    let n = std::str::from_utf8(digits)
                        .ok()
                        .and_then(|d| d.parse::<u64>().ok())
                        .ok_or_else(|| {
                            format!(
                                "dimension '{}' is not a non-negative integer",
                                w.escape_ascii()
                            )
                        })?;
                    out.push(n);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(c) if c == close => {}
                        _ => return Err(String::from("malformed shape tuple")),
                    }
                }
                _ => return Err(String::from("malformed shape tuple")),
            }
        }
    }
}

fn parse_dict(text: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let mut sc = Scanner { text, pos: 0 };
    sc.expect(b'{')?;
    let mut entries = Vec::new();
    loop {
        if sc.peek() == Some(b'}') {
            break;
        }
        let key = sc.string()?;
        sc.expect(b':')?;
        let value = sc.value()?;
        entries.push((key, value));
        match sc.peek() {
            Some(b',') => sc.pos += 1,
            Some(b'}') => {}
            _ => return Err(format!("expected ',' or '}}' at header byte {}", sc.pos)),
        }
    }
    Ok(entries)
}

/// Parses the fixed preamble and returns (header text length, bytes before the text).
fn preamble(bytes: &[u8]) -> Result<(usize, usize), String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(String::from(
            "missing the \\x93NUMPY magic (not an .npy file)",
        ));
    }
    let major = bytes[6];
    match major {
        1 => Ok((u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(String::from("file ends inside the header length"));
            }
            let n = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
            Ok((n, 12))
        }
        v => Err(format!("unsupported .npy format version {v}.{}", bytes[7])),
    }
}

/// Interprets the header text; `array` and `path` name the array in errors.
fn interpret(
    text: &[u8],
    data_offset: usize,
    array: &str,
    path: &Path,
) -> Result<NpyHeader, DataError> {
    let fmt_err = |r: String| DataError::format("npy", format!("array '{array}': {r}"), path);
    let entries = parse_dict(text).map_err(fmt_err)?;
    let get = |k: &str| entries.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Other(s)) => {
            if s.contains('O') {
                return Err(DataError::PickleRefused {
                    array: array.to_string(),
                    dtype: s.clone(),
                    path: path.to_path_buf(),
                });
            }
            return Err(DataError::UnsupportedDtype {
                array: array.to_string(),
                dtype: format!("structured {s}"),
                path: path.to_path_buf(),
            });
        }
        Some(_) => return Err(fmt_err(String::from("'descr' is not a string"))),
        None => return Err(fmt_err(String::from("header has no 'descr'"))),
    };
    let fortran_order = match get("fortran_order") {
        Some(Value::Bool(b)) => *b,
        _ => {
            return Err(fmt_err(String::from(
                "'fortran_order' missing or not True/False",
            )));
        }
    };
    let shape_u64 = match get("shape") {
        Some(Value::Ints(v)) => v.clone(),
        _ => {
            return Err(fmt_err(String::from(
                "'shape' missing or not a tuple of integers",
            )));
        }
    };
    let (order, kind) = parse_descr(&descr, array, path)?;
    let mut shape = Vec::with_capacity(shape_u64.len().min(64));
    for &d in &shape_u64 {
        shape.push(usize::try_from(d).map_err(|_| too_big(array, &shape_u64, 0, path))?);
    }
    Ok(NpyHeader {
        descr,
        kind,
        order,
        fortran_order,
        shape,
        data_offset,
    })
}

fn too_big(array: &str, shape: &[u64], available: u64, path: &Path) -> DataError {
    DataError::SizeMismatch {
        array: array.to_string(),
        shape: shape.to_vec(),
        claimed_elements: shape
            .iter()
            .try_fold(1u64, |a, &b| a.checked_mul(b))
            .unwrap_or(u64::MAX),
        claimed_bytes: u64::MAX,
        available_bytes: available,
        path: path.to_path_buf(),
    }
}

fn parse_descr(descr: &str, array: &str, path: &Path) -> Result<(ByteOrder, FloatKind), DataError> {
    let unsupported = || DataError::UnsupportedDtype {
        array: array.to_string(),
        dtype: descr.to_string(),
        path: path.to_path_buf(),
    };
    let bytes = descr.as_bytes();
    let (order_char, rest) = match bytes.first() {
        Some(c @ (b'<' | b'>' | b'=' | b'|')) => (*c, &descr[1..]),
        _ => (b'=', descr),
    };
    if rest.starts_with('O') {
        return Err(DataError::PickleRefused {
            array: array.to_string(),
            dtype: descr.to_string(),
            path: path.to_path_buf(),
        });
    }
    let kind = match rest {
        "f2" | "e" => FloatKind::F16,
        "f4" | "f" => FloatKind::F32,
        "f8" | "d" => FloatKind::F64,
        _ => return Err(unsupported()),
    };
    let order = match order_char {
        b'>' => ByteOrder::Big,
        b'<' => ByteOrder::Little,
        _ if cfg!(target_endian = "big") => ByteOrder::Big,
        _ => ByteOrder::Little,
    };
    Ok((order, kind))
}

/// Number of data bytes the header claims, or a [`DataError::SizeMismatch`] when that exceeds
/// `available` (or overflows).
fn claimed_bytes(
    h: &NpyHeader,
    available: u64,
    array: &str,
    path: &Path,
) -> Result<usize, DataError> {
    let shape64: Vec<u64> = h.shape.iter().map(|&d| d as u64).collect();
    let elements = h.shape.iter().try_fold(1usize, |a, &b| a.checked_mul(b));
    let bytes = elements.and_then(|e| e.checked_mul(h.kind.size()));
    match (elements, bytes) {
        (Some(_), Some(b)) if (b as u64) <= available => Ok(b),
        _ => Err(DataError::SizeMismatch {
            array: array.to_string(),
            claimed_elements: shape64
                .iter()
                .try_fold(1u64, |a, &b| a.checked_mul(b))
                .unwrap_or(u64::MAX),
            claimed_bytes: bytes.map(|b| b as u64).unwrap_or(u64::MAX),
            shape: shape64,
            available_bytes: available,
            path: path.to_path_buf(),
        }),
    }
}

/// Parses and validates the header of an in-memory `.npy`.
///
/// # Errors
/// [`DataError::Format`], [`DataError::UnsupportedDtype`], [`DataError::PickleRefused`].
pub fn parse_header(bytes: &[u8], array: &str, path: &Path) -> Result<NpyHeader, DataError> {
    let (len, offset) = preamble(bytes)
        .map_err(|r| DataError::format("npy", format!("array '{array}': {r}"), path))?;
    if len > MAX_HEADER_LEN || offset + len > bytes.len() {
        return Err(DataError::format(
            "npy",
            format!(
                "array '{array}': header length {len} exceeds the {} bytes present",
                bytes.len().saturating_sub(offset)
            ),
            path,
        ));
    }
    interpret(&bytes[offset..offset + len], offset + len, array, path)
}

/// Converts raw little/big-endian float bytes to f32 values (in storage order).
fn decode(data: &[u8], kind: FloatKind, order: ByteOrder) -> Vec<f32> {
    let big = order == ByteOrder::Big;
    match kind {
        FloatKind::F16 => data
            .chunks_exact(2)
            .map(|c| {
                let b = [c[0], c[1]];
                f16::from_bits(if big {
                    u16::from_be_bytes(b)
                } else {
                    u16::from_le_bytes(b)
                })
                .to_f32()
            })
            .collect(),
        FloatKind::F32 => data
            .chunks_exact(4)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3]];
                if big {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                }
            })
            .collect(),
        FloatKind::F64 => data
            .chunks_exact(8)
            .map(|c| {
                let b = [c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]];
                (if big {
                    f64::from_be_bytes(b)
                } else {
                    f64::from_le_bytes(b)
                }) as f32
            })
            .collect(),
    }
}

/// Builds a C-order array from storage-order values.
fn to_array(
    h: &NpyHeader,
    values: Vec<f32>,
    array: &str,
    path: &Path,
) -> Result<ArrayD<f32>, DataError> {
    let shape = IxDyn(&h.shape);
    let result = if h.fortran_order {
        ArrayD::from_shape_vec(shape.f(), values).map(|a| a.as_standard_layout().into_owned())
    } else {
        ArrayD::from_shape_vec(shape, values)
    };
    result.map_err(|e| DataError::format("npy", format!("array '{array}': {e}"), path))
}

/// Reads an in-memory `.npy` into a C-order f32 array with the file's shape.
/// `array` names it in errors ("q", "k", "v").
///
/// # Errors
/// [`DataError::Format`], [`DataError::UnsupportedDtype`], [`DataError::PickleRefused`],
/// [`DataError::SizeMismatch`] (before allocating). Never panics.
pub fn parse_npy(bytes: &[u8], array: &str, path: &Path) -> Result<ArrayD<f32>, DataError> {
    let h = parse_header(bytes, array, path)?;
    let data = &bytes[h.data_offset.min(bytes.len())..];
    let need = claimed_bytes(&h, data.len() as u64, array, path)?;
    let values = decode(&data[..need], h.kind, h.order);
    to_array(&h, values, array, path)
}

/// Reads a `.npy` from a stream whose data bytes are at most `declared_len` (the zip entry's
/// uncompressed size). The header is read first and checked against `declared_len`; the data
/// is then read incrementally, so memory follows the bytes actually present.
fn read_npy_stream(
    reader: &mut impl Read,
    declared_len: u64,
    array: &str,
    path: &Path,
) -> Result<ArrayD<f32>, DataError> {
    let io = |e: std::io::Error| DataError::format("npz", format!("array '{array}': {e}"), path);
    let mut pre = [0u8; 12];
    reader.read_exact(&mut pre[..10]).map_err(io)?;
    let ver = pre[6];
    let pre_len = if ver >= 2 { 12 } else { 10 };
    if pre_len == 12 {
        reader.read_exact(&mut pre[10..12]).map_err(io)?;
    }
    let (len, offset) = preamble(&pre[..pre_len])
        .map_err(|r| DataError::format("npy", format!("array '{array}': {r}"), path))?;
    if len > MAX_HEADER_LEN || (offset + len) as u64 > declared_len {
        return Err(DataError::format(
            "npy",
            format!(
                "array '{array}': header length {len} exceeds the entry's {declared_len} bytes"
            ),
            path,
        ));
    }
    let mut text = vec![0u8; len];
    reader.read_exact(&mut text).map_err(io)?;
    let h = interpret(&text, offset + len, array, path)?;
    let available = declared_len - (offset + len) as u64;
    let need = claimed_bytes(&h, available, array, path)?;
    let mut data = Vec::new();
    reader
        .take(need as u64)
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() != need {
        return Err(DataError::SizeMismatch {
            array: array.to_string(),
            shape: h.shape.iter().map(|&d| d as u64).collect(),
            claimed_elements: (need / h.kind.size()) as u64,
            claimed_bytes: need as u64,
            available_bytes: data.len() as u64,
            path: path.to_path_buf(),
        });
    }
    let values = decode(&data, h.kind, h.order);
    drop(data);
    to_array(&h, values, array, path)
}

/// Reads `q`, `k`, `v` (or `query`, `key`, `value`) from an in-memory `.npz` (stored or
/// deflate-compressed).
pub(crate) fn read_npz_qkv(bytes: &[u8], path: &Path) -> Result<RawQkv, DataError> {
    let zip_err = |e: zip::result::ZipError| DataError::format("npz", e.to_string(), path);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.map(|n| n.to_string()))
        .collect::<Result<_, _>>()
        .map_err(zip_err)?;
    let stems: Vec<&str> = names
        .iter()
        .map(|n| n.strip_suffix(".npy").unwrap_or(n))
        .collect();
    let mut read = |wanted: &[&str; 2]| -> Result<ArrayD<f32>, DataError> {
        let stem = find_name(&stems, wanted, path)?;
        let idx = stems.iter().position(|s| *s == stem).unwrap_or(0);
        let entry_name = names.get(idx).cloned().unwrap_or_default();
        let mut entry = archive.by_name(&entry_name).map_err(zip_err)?;
        let declared = entry.size();
        read_npy_stream(&mut entry, declared, wanted[0], path)
    };
    let q = read(&Q_NAMES)?;
    let k = read(&K_NAMES)?;
    let v = read(&V_NAMES)?;
    Ok(RawQkv { q, k, v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        let mut out = MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((header.len() as u16 + 1).to_le_bytes());
        out.extend(header.as_bytes());
        out.push(b'\n');
        out.extend(data);
        out
    }

    #[test]
    fn header_with_trailing_comma_and_one_dim() {
        let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let a = parse_npy(&npy("<f4", false, "(2,)", &data), "q", Path::new("x.npy")).unwrap();
        assert_eq!(a.shape(), &[2]);
        assert_eq!(a.as_slice().unwrap(), &[1.0, 2.0]);
    }

    #[test]
    fn scalar_shape_is_one_element() {
        let a = parse_npy(
            &npy("<f8", false, "()", &3.5f64.to_le_bytes()),
            "q",
            Path::new("x.npy"),
        )
        .unwrap();
        assert_eq!(a.ndim(), 0);
        assert_eq!(a.iter().copied().collect::<Vec<_>>(), vec![3.5]);
    }

    #[test]
    fn nested_brackets_in_descr_do_not_recurse() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let header = format!("{{'descr': {deep}, 'fortran_order': False, 'shape': (1,), }}");
        let mut out = MAGIC.to_vec();
        out.extend([2, 0]);
        out.extend((header.len() as u32).to_le_bytes());
        out.extend(header.as_bytes());
        let err = parse_npy(&out, "q", Path::new("x.npy")).unwrap_err();
        assert!(matches!(err, DataError::UnsupportedDtype { .. }), "{err}");
    }

    #[test]
    fn integer_dtype_is_refused_by_name() {
        let err =
            parse_npy(&npy("<i8", false, "(1,)", &[0; 8]), "k", Path::new("x.npy")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("<i8") && msg.contains("'k'") && msg.ends_with("x.npy"),
            "{msg}"
        );
    }
}
