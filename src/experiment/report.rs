//! Sweep reports: the CSV stream (one row per point, written as points finish, with a
//! `# machine: …` first line) and the JSON report (machine, configuration, rows).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ExperimentError;
use super::progress::ProgressSink;
use super::sweep::{SweepConfig, SweepRow};

/// The machine a sweep ran on: CPU model (from `/proc/cpuinfo`), logical cores, OS and the
/// UTC date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineInfo {
    /// `model name` of the first CPU in `/proc/cpuinfo`, or `unknown`.
    pub cpu_model: String,
    /// Logical cores available to this process.
    pub logical_cores: usize,
    /// `std::env::consts::OS` / `ARCH`.
    pub os: String,
    /// UTC date and time, `YYYY-MM-DDTHH:MM:SSZ`.
    pub date_utc: String,
}

impl MachineInfo {
    /// Reads the machine description (never fails: unknown parts say `unknown`).
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let logical_cores = std::thread::available_parallelism()
            .map(std::num::NonZeroUsize::get)
            .unwrap_or(1);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            cpu_model,
            logical_cores,
            os: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
            date_utc: utc_timestamp(secs),
        }
    }

    /// The CSV comment line, e.g. `# machine: cpu=Intel(R) Xeon(R) …; cores=2; os=linux/x86_64;
    /// date=2026-11-29T13:40:00Z` (no trailing newline).
    pub fn comment_line(&self) -> String {
        format!(
            "# machine: cpu={}; cores={}; os={}; date={}",
            self.cpu_model.replace(['\n', '\r'], " "),
            self.logical_cores,
            self.os,
            self.date_utc
        )
    }
}

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC;
/// H. Hinnant's days-to-civil algorithm).
///
/// ```
/// use attnscope::experiment::report::utc_timestamp;
/// assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
/// assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
/// ```
pub fn utc_timestamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A CSV file written as the sweep runs: the machine comment line, the header (every
/// [`SweepRow`] field), then one flushed row per finished point — so a cancelled or crashed
/// sweep leaves every finished row on disk.
pub struct CsvStream {
    path: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
}

impl CsvStream {
    /// Creates (truncates) `path` and writes the machine line.
    ///
    /// # Errors
    /// [`ExperimentError::Io`] naming the path.
    pub fn create(path: &Path, machine: &MachineInfo) -> Result<Self, ExperimentError> {
        let io = |source| ExperimentError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = BufWriter::new(File::create(path).map_err(io)?);
        writeln!(file, "{}", machine.comment_line()).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: csv::Writer::from_writer(file),
        })
    }

    /// Appends one row and flushes.
    ///
    /// # Errors
    /// [`ExperimentError::Csv`] / [`ExperimentError::Io`] naming the path.
    pub fn write_row(&mut self, row: &SweepRow) -> Result<(), ExperimentError> {
        self.writer
            .serialize(row)
            .map_err(|source| ExperimentError::Csv {
                path: self.path.clone(),
                source,
            })?;
        self.writer.flush().map_err(|source| ExperimentError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl ProgressSink for CsvStream {
    fn point_done(&mut self, _index: usize, row: &SweepRow) -> Result<(), ExperimentError> {
        self.write_row(row)
    }
}

/// Reads a sweep CSV written by [`CsvStream`] (the `#` machine line is skipped).
///
/// # Errors
/// [`ExperimentError::Csv`] naming the path and the bad record.
pub fn read_csv(path: &Path) -> Result<Vec<SweepRow>, ExperimentError> {
    let csv_error = |source| ExperimentError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_path(path)
        .map_err(csv_error)?;
    reader
        .deserialize()
        .collect::<Result<Vec<SweepRow>, _>>()
        .map_err(csv_error)
}

/// Everything about one sweep, as written to the JSON report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    /// Where it ran.
    pub machine: MachineInfo,
    /// How peak memory was obtained.
    pub peak_memory_source: String,
    /// The grid and settings.
    pub config: SweepConfig,
    /// True when cancelled before the end.
    pub cancelled: bool,
    /// Grid size.
    pub total_points: usize,
    /// One entry per finished point.
    pub rows: Vec<SweepRow>,
}

/// Writes `report` as pretty JSON to `path`.
///
/// # Errors
/// [`ExperimentError::Io`] / [`ExperimentError::Json`] naming the path.
pub fn write_json(path: &Path, report: &SweepReport) -> Result<(), ExperimentError> {
    let io = |source| ExperimentError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = BufWriter::new(File::create(path).map_err(io)?);
    serde_json::to_writer_pretty(file, report).map_err(|source| ExperimentError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// The `peak_memory_source` text of runner reports.
pub const PEAK_MEMORY_SOURCE: &str = "estimate from the kernels' known buffer sizes (output, feature maps, per-worker scratch); not a measurement";
