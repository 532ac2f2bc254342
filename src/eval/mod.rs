//! `relearn eval`: runs one CSV stream (or JSON lines, `json_view`, or ARFF) through the
//! daemon's own path (file source, pipeline,
//! RocksDB in a temporary directory, the loop) once per strategy, and reports prequential
//! accuracy, Cohen's kappa, the temporal kappa against no-change, promotions, training FLOPs
//! and wall time, as a markdown table and JSON. A user judges relearn on their own stream with
//! it before deploying.

use std::collections::{BTreeSet, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod json_view;
pub mod progress;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::app::{self, AppError, Summary};
use crate::config::{Config, Format, Task};
use crate::ingest::time::{self, Civil, TimeField, TimePart};
use crate::learner::state::Curve;

/// What failed in an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Schema { path: PathBuf, reason: String },
    #[error("unknown strategy `{0}`; known: default, full, none, no-change, majority")]
    Strategy(String),
    #[error("strategy {strategy}: {source}")]
    Run {
        strategy: String,
        #[source]
        source: AppError,
    },
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A way to run the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The config as given (defaults: partial retrains and the challenger).
    Default,
    /// Every retrain and the challenger train every layer, and the challenger learns from
    /// every record (`challenger.fitted_loss = 0`).
    Full,
    /// The first model only: no challenger, no triggered retrain.
    None,
    /// The previous label (on the records the default run scored).
    NoChange,
    /// The most frequent label so far (on the records the default run scored).
    Majority,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::Default,
        Strategy::Full,
        Strategy::None,
        Strategy::NoChange,
        Strategy::Majority,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Default => "default",
            Strategy::Full => "full",
            Strategy::None => "none",
            Strategy::NoChange => "no-change",
            Strategy::Majority => "majority",
        }
    }

    pub fn parse(s: &str) -> Result<Strategy, EvalError> {
        Strategy::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| EvalError::Strategy(s.to_string()))
    }

    /// The config this strategy runs with, from the user's.
    fn apply(self, base: &Config) -> Config {
        let mut c = base.clone();
        match self {
            Strategy::Full => {
                c.retrain.mode = crate::retrain::RetrainMode::Full;
                c.challenger.layers = crate::challenger::ChallengerLayers::All;
                c.challenger.fitted_loss = Some(0.0);
            }
            Strategy::None => {
                c.challenger.enabled = false;
                c.triggers.drift_detectors.clear();
                c.triggers.accuracy_drop = 0.0;
                c.triggers.accuracy_below = 0.0;
                c.triggers.every_labeled = 0;
                c.triggers.interval = None;
            }
            Strategy::Default | Strategy::NoChange | Strategy::Majority => {}
        }
        c
    }
}

/// One strategy's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    pub strategy: Strategy,
    /// Labeled records scored (after the first model).
    pub scored: u64,
    pub labeled: u64,
    /// Accuracy over the scored records.
    pub accuracy: f64,
    /// Accuracy over every labeled record, those before the first model counted as errors.
    pub accuracy_all: f64,
    pub kappa: Option<f64>,
    pub kappa_temporal: Option<f64>,
    pub promoted: u64,
    pub rejected: u64,
    pub challenger_promotions: u64,
    /// The challenger's own prequential accuracy (what serving it directly would score).
    pub challenger_accuracy: f64,
    /// Estimated training FLOPs (retrains + online steps).
    pub train_flops: f64,
    /// Errors of a regression target (`None` for classification; the accuracy fields then
    /// count predictions within half a target standard deviation).
    pub regression: Option<RegressionRow>,
    pub wall_seconds: f64,
    pub records_per_second: f64,
    /// The scores over the stream (`None` for the baselines), which `relearn-bench plot`
    /// draws.
    #[serde(default)]
    pub curve: Option<Curve>,
}

/// Prequential errors on a regression target, in the target's unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionRow {
    /// Mean absolute error over every labeled record; records before the first model are
    /// charged with the running mean's error.
    pub mae_all: Option<f64>,
    /// Over the scored records.
    pub mae: Option<f64>,
    pub rmse: Option<f64>,
    pub r2: Option<f64>,
    /// The challenger's own MAE on the records it scored.
    pub challenger_mae: Option<f64>,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub file: String,
    pub records: u64,
    pub label: String,
    pub features: Vec<String>,
    pub categorical: Vec<String>,
    /// The fields read as times (`schema.time`).
    #[serde(default)]
    pub time: Vec<TimeField>,
    pub classes: Vec<String>,
    pub task: Task,
    pub rows: Vec<EvalRow>,
    /// Default's training FLOPs over full's, when both ran.
    pub cost_ratio: Option<f64>,
}

/// Fills the schema from the file's header when the user left it out: features are every
/// column but the label whose first 1,000 values are numbers (or missing), categorical fields
/// every other column but identifiers (unless the features or the categorical fields were
/// given; an identifier, [`IDENTIFIER_DISTINCT`], is returned as left out), classes are the
/// label's distinct values in sorted order. Features given without categorical or time
/// fields are sorted by kind: those that hold strings become categorical fields or time
/// fields (an identifier too: it was named).
///
/// `task`: the task when the user named it; `None` infers it: a label whose values are all
/// numbers (at most 1% of them not) with more than [`REGRESSION_DISTINCT`] distinct values
/// is a regression target.
pub fn infer_schema(
    config: &mut Config,
    path: &Path,
    task: Option<Task>,
) -> Result<Vec<LeftOut>, EvalError> {
    if let Some(t) = task {
        config.schema.task = t;
    }
    let read = |source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    };
    if config.schema.delimiter == "," {
        if let Some(d) = sniff_delimiter(path).map_err(read)? {
            config.schema.delimiter = d.to_string();
        }
    }
    let schema_err = |reason: String| EvalError::Schema {
        path: path.to_path_buf(),
        reason,
    };
    // A CSV file without a header line (`file.header = false`, `--columns`): its columns are
    // `schema.columns` and its first line is a record.
    let headerless = !config.file.header && !is_json_file(path).map_err(read)?;
    if headerless && config.schema.columns.is_empty() {
        return Err(schema_err(
            "a file without a header line needs its column names (--columns, schema.columns)"
                .into(),
        ));
    }
    if headerless {
        let mut first = open_csv(path, &config.schema.delimiter, false).map_err(read)?;
        if let Some(Ok(row)) = first.records().next() {
            if row.len() != config.schema.columns.len() {
                return Err(schema_err(format!(
                    "the first line has {} fields and schema.columns (--columns) names {}",
                    row.len(),
                    config.schema.columns.len()
                )));
            }
        }
    }
    let mut csv = open_csv(path, &config.schema.delimiter, !headerless).map_err(read)?;
    let header: Vec<String> = if headerless {
        config.schema.columns.clone()
    } else {
        csv.headers()
            .map_err(|e| schema_err(format!("no CSV header: {e}")))?
            .iter()
            // Trimmed, as the file source reads a header (`a, b, c`).
            .map(|h| h.trim().to_string())
            .collect()
    };
    let label = config
        .schema
        .label
        .clone()
        .ok_or_else(|| schema_err("no label column: give --label (schema.label)".into()))?;
    let label_at = header.iter().position(|h| *h == label).ok_or_else(|| {
        // A file without a header line: its first record was read as column names.
        let headless = !header.is_empty() && header.iter().all(|h| h.parse::<f64>().is_ok());
        schema_err(format!(
            "no column `{label}` (schema.label); columns are {header:?}{}",
            if headless {
                ": the first line holds numbers, not column names; name the columns of a file without a header line with --columns (schema.columns, file.header = false)"
            } else {
                ""
            }
        ))
    })?;
    let need_features = config.schema.features.is_empty();
    let need_categorical = need_features && config.schema.categorical.is_empty();
    // Features named without their kinds (no categorical or time fields given): each named
    // column that holds strings is sorted as an inferred one would be, a categorical input
    // or a time field, instead of failing every record as not a number.
    let named =
        (!need_features && config.schema.categorical.is_empty() && config.schema.time.is_empty())
            .then(|| config.schema.features.clone());
    if let Some(named) = &named {
        if let Some(missing) = named.iter().find(|f| !header.contains(f)) {
            return Err(schema_err(format!(
                "no column `{missing}` (schema.features, --features); columns are {header:?}"
            )));
        }
    }
    let need_classes =
        config.schema.classes.is_empty() && config.schema.task == Task::Classification;
    let Scan {
        numeric,
        distinct,
        filled,
        times,
        numbers,
        civil,
        classes,
        label_values,
        label_non_numeric,
    } = Scan::read(
        &mut csv,
        header.len(),
        (
            need_features || named.is_some(),
            need_classes.then_some(label_at),
        ),
        &config.schema.missing_tokens,
    )
    .map_err(|(row, e)| schema_err(format!("row {row}: {e}")))?;
    // The key and the timestamp are never inputs.
    let not_input = [config.schema.key.clone(), config.schema.timestamp.clone()];
    let input = |h: &String| !not_input.iter().flatten().any(|n| n == h);
    if need_features {
        let given: BTreeSet<&String> = config.schema.categorical.iter().collect();
        config.schema.features = header
            .iter()
            .enumerate()
            .filter(|&(j, h)| j != label_at && numeric[j] && !given.contains(h) && input(h))
            .map(|(_, h)| h.clone())
            .collect();
    }
    if let Some(named) = &named {
        config.schema.features = named
            .iter()
            .filter(|f| {
                header
                    .iter()
                    .position(|h| h == *f)
                    .is_some_and(|j| numeric[j])
            })
            .cloned()
            .collect();
    }
    let mut left_out = Vec::new();
    if need_categorical || named.is_some() {
        let mut categorical = Vec::new();
        let infer_time = config.schema.time.is_empty();
        let numeric_inputs: Vec<&[Option<f32>]> = header
            .iter()
            .zip(&numbers)
            .filter(|(h, _)| config.schema.features.contains(h))
            .map(|(_, v)| v.as_slice())
            .collect();
        for (j, h) in header.iter().enumerate() {
            if j == label_at || numeric[j] || !input(h) {
                continue;
            }
            if named.as_ref().is_some_and(|n| !n.contains(h)) {
                continue;
            }
            let (d, rows) = (distinct[j].len(), filled[j]);
            let reason = if rows > 0 && times[j] {
                let parts = time_parts(&civil[j], &numeric_inputs);
                if infer_time && !parts.is_empty() {
                    config.schema.time.push(TimeField {
                        field: h.clone(),
                        parts,
                    });
                    continue;
                }
                Some(LeftOutReason::TimeStamp)
            } else if named.is_none() && d > IDENTIFIER_DISTINCT && 2 * d > rows {
                Some(LeftOutReason::Identifier)
            } else {
                None
            };
            match reason {
                Some(reason) => left_out.push(LeftOut {
                    column: h.clone(),
                    reason,
                    distinct: d,
                    rows,
                }),
                None => categorical.push(h.clone()),
            }
        }
        config.schema.categorical = categorical;
    }
    // A few bad values in a numeric target are dead letters, not a reason to read it as
    // classes.
    let label_numeric = label_non_numeric * 100 <= label_values;
    // An ARFF file declares a nominal label's classes: a class label even when its values
    // are numbers and many (a sensor's 54 ids), and every declared class has an output.
    let declared = arff_classes(path, &label).map_err(read)?;
    let mut classes = classes;
    if let Some(declared) = &declared {
        classes.extend(declared.iter().cloned());
    }
    if need_classes
        && task.is_none()
        && declared.is_none()
        && label_numeric
        && classes.len() > REGRESSION_DISTINCT
    {
        config.schema.task = Task::Regression;
    } else if need_classes {
        if classes.len() > 1000 {
            return Err(schema_err(format!(
                "`{label}` has more than 1000 distinct values, not all numbers: not a class label"
            )));
        }
        config.schema.classes = classes.into_iter().collect();
    }
    // JSON lines are decoded as JSON by the run (fields by name); the rest as CSV.
    config.schema.format = if is_json_file(path).map_err(read)? {
        Format::Json
    } else {
        Format::Csv
    };
    if !headerless {
        config.schema.columns.clear();
    }
    Ok(left_out)
}

/// A CSV file (gzip-compressed when it ends in `.gz`), with a header line or not, fields
/// split at the first byte of `delimiter`.
fn open_csv(
    path: &Path,
    delimiter: &str,
    header: bool,
) -> std::io::Result<csv::Reader<Box<dyn BufRead>>> {
    let reader = open_lines(path)?;
    Ok(csv::ReaderBuilder::new()
        .delimiter(delimiter.as_bytes().first().copied().unwrap_or(b','))
        .has_headers(header)
        .flexible(true)
        .from_reader(reader))
}

/// What `infer_schema` reads from the rows: which columns hold only numbers (or gaps) in the
/// first 1,000 rows, and the label column's distinct values and how many are not numbers.
struct Scan {
    numeric: Vec<bool>,
    /// Each column's distinct strings (values that are not numbers) in the rows read for the
    /// kinds (at most `IDENTIFIER_ROWS + 1` kept) and how many of those rows had a value.
    distinct: Vec<HashSet<String>>,
    filled: Vec<usize>,
    /// Whether every value read for the kinds is a date or a time of day.
    times: Vec<bool>,
    /// Each column's numbers in the rows read for the kinds (None: missing or not a number).
    numbers: Vec<Vec<Option<f32>>>,
    /// Each column's dates and times in those rows while `times` holds (emptied when not).
    civil: Vec<Vec<Option<Civil>>>,
    classes: BTreeSet<String>,
    label_values: u64,
    label_non_numeric: u64,
}

impl Scan {
    /// Reads the rows: the columns' kinds when `features`, the label at `label` through the
    /// whole file when given. An unreadable row is `(its line number, the error)`.
    fn read(
        csv: &mut csv::Reader<Box<dyn BufRead>>,
        columns: usize,
        (features, label): (bool, Option<usize>),
        tokens: &[String],
    ) -> Result<Scan, (usize, csv::Error)> {
        let mut scan = Scan {
            numeric: vec![true; columns],
            distinct: vec![HashSet::new(); columns],
            filled: vec![0; columns],
            times: vec![true; columns],
            numbers: vec![Vec::new(); columns],
            civil: vec![Vec::new(); columns],
            classes: BTreeSet::new(),
            label_values: 0,
            label_non_numeric: 0,
        };
        for (i, row) in csv.records().enumerate() {
            let row = row.map_err(|e| (i + 2, e))?;
            if features && i < IDENTIFIER_ROWS {
                for j in 0..columns {
                    let v = row.get(j).map_or("", str::trim);
                    let missing = v.is_empty() || tokens.iter().any(|t| t == v);
                    let number = crate::ingest::decode::number_text(v)
                        .map(|x| x as f32)
                        .filter(|_| !missing);
                    scan.numbers[j].push(number);
                    let time = (!missing && number.is_none())
                        .then(|| time::parse(v))
                        .flatten();
                    if missing {
                        if scan.times[j] {
                            scan.civil[j].push(None);
                        }
                        continue;
                    }
                    scan.filled[j] += 1;
                    scan.times[j] &= time.is_some();
                    if scan.times[j] {
                        scan.civil[j].push(time);
                    } else if !scan.civil[j].is_empty() {
                        scan.civil[j] = Vec::new();
                    }
                    if number.is_some() {
                        continue;
                    }
                    // Only strings are counted: a numeric column keeps no values.
                    scan.numeric[j] = false;
                    if scan.distinct[j].len() <= IDENTIFIER_ROWS {
                        scan.distinct[j].insert(v.to_string());
                    }
                }
            }
            let Some(at) = label else {
                if i >= IDENTIFIER_ROWS {
                    break;
                }
                continue;
            };
            // Trimmed, as the decoder reads a label.
            if let Some(t) = row.get(at).map(str::trim).filter(|v| !v.is_empty()) {
                if !tokens.iter().any(|m| m == t) {
                    scan.label_values += 1;
                    scan.label_non_numeric += u64::from(
                        !crate::ingest::decode::number_text(t).is_some_and(f64::is_finite),
                    );
                }
                if scan.classes.len() <= 1000 {
                    scan.classes.insert(t.to_string());
                }
            }
        }
        Ok(scan)
    }
}

/// Standard input (`relearn eval -`) copied into a file in `dir`, which the schema inference
/// and each strategy's run then read: named `stdin.gz` when it starts with gzip's magic
/// bytes, `stdin.arff[.gz]` when its text starts as ARFF does (JSON lines are recognised by
/// their first byte, CSV is the rest).
pub fn stdin_file(dir: &Path) -> Result<PathBuf, EvalError> {
    let raw = dir.join("stdin");
    let write = |source| EvalError::Write {
        path: raw.clone(),
        source,
    };
    let mut file = std::fs::File::create(&raw).map_err(write)?;
    std::io::copy(&mut std::io::stdin().lock(), &mut file).map_err(write)?;
    drop(file);
    let read = |source| EvalError::Read {
        path: PathBuf::from("-"),
        source,
    };
    let mut head = [0u8; 2];
    let n = std::io::Read::read(&mut std::fs::File::open(&raw).map_err(read)?, &mut head)
        .map_err(read)?;
    let gz = n == 2 && head == [0x1f, 0x8b];
    let mut text = decompressed(std::fs::File::open(&raw).map_err(read)?, gz);
    let mut name = if gz { "stdin.gz" } else { "stdin" };
    if crate::ingest::arff::looks_like_arff(text.fill_buf().map_err(read)?) {
        name = if gz { "stdin.arff.gz" } else { "stdin.arff" };
    }
    let path = dir.join(name);
    if path != raw {
        std::fs::rename(&raw, &path).map_err(write)?;
    }
    Ok(path)
}

/// The file's bytes, decompressed when it ends in `.gz`.
fn open_raw(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let gz = path.extension().is_some_and(|e| e == "gz");
    Ok(decompressed(std::fs::File::open(path)?, gz))
}

/// `file`'s bytes, decompressed when `gz`.
fn decompressed(file: std::fs::File, gz: bool) -> Box<dyn BufRead> {
    if gz {
        Box::new(std::io::BufReader::new(flate2::read::MultiGzDecoder::new(
            file,
        )))
    } else {
        Box::new(std::io::BufReader::new(file))
    }
}

/// The file's text, decompressed when it ends in `.gz`; an ARFF file's or JSON lines' as CSV.
fn open_lines(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let mut reader = open_raw(path)?;
    Ok(if crate::ingest::arff::is_arff_path(path) {
        Box::new(crate::ingest::arff::ArffCsv::text(reader)?)
    } else if json_view::is_json_lines(path, reader.fill_buf()?) {
        Box::new(json_view::JsonCsv::text(reader)?)
    } else {
        reader
    })
}

/// Whether the file holds JSON lines (by its name, or its first byte).
fn is_json_file(path: &Path) -> std::io::Result<bool> {
    let mut reader = open_raw(path)?;
    Ok(!crate::ingest::arff::is_arff_path(path)
        && json_view::is_json_lines(path, reader.fill_buf()?))
}

/// The declared values of `label` when `path` is an ARFF file and `label` a nominal
/// attribute there (a class label, whatever its values look like).
fn arff_classes(path: &Path, label: &str) -> std::io::Result<Option<Vec<String>>> {
    if !crate::ingest::arff::is_arff_path(path) {
        return Ok(None);
    }
    let arff = crate::ingest::arff::ArffCsv::text(open_raw(path)?)?;
    Ok(arff.rows().nominal(label).map(<[String]>::to_vec))
}

/// The delimiter of a file whose header has no comma but semicolons (European spreadsheet
/// exports), tabs or vertical bars, the most frequent of them; None: a comma (or nothing
/// else found).
fn sniff_delimiter(path: &Path) -> std::io::Result<Option<char>> {
    let mut header = String::new();
    open_lines(path)?.read_line(&mut header)?;
    if header.contains(',') {
        return Ok(None);
    }
    Ok([';', '\t', '|']
        .into_iter()
        .map(|d| (header.matches(d).count(), d))
        .filter(|&(n, _)| n > 0)
        .max_by_key(|&(n, _)| n)
        .map(|(_, d)| d))
}

/// Rows whose values decide each column's kind (numbers or strings) and whether a string
/// column is an identifier.
const IDENTIFIER_ROWS: usize = 1000;

/// A string column with more distinct values than this, and than half the rows that have a
/// value (in the first `IDENTIFIER_ROWS`), is read as an identifier or a time stamp, not a
/// categorical input: hashed into `schema.categorical_buckets` inputs, such values are noise
/// (a collision makes two unrelated records look alike). Measured with `relearn eval`
/// (defaults, 2026-12-06): metro traffic with its `date_time` column as a categorical
/// input, MAE 399.9; without it 387.0.
pub const IDENTIFIER_DISTINCT: usize = 32;

/// The parts of a time column worth inputs: `day` when the time of day varies, `week` when
/// the weekday does and the dates are not all on one day of the month (a monthly series'
/// weekday is noise), `year` when the date varies; each unless a numeric input already
/// holds it (a column in one-to-one correspondence with the hour, the weekday or the month
/// over the rows read). Measured with `relearn eval` (defaults, model seeds 1-4,
/// 2026-12-06): bike sharing with its `dteday` giving the three parts (its `weekday` and
/// `mnth` columns already inputs) MAE 36.5 against 32.4 without it.
fn time_parts(civil: &[Option<Civil>], numeric: &[&[Option<f32>]]) -> Vec<TimePart> {
    let rows = || {
        civil
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, (*c)?)))
    };
    // Each row's hour, weekday and month as a key (None: the part is absent in that row).
    let hour = |c: &Civil| c.hours.map(|h| h.floor() as i64);
    let weekday = |c: &Civil| c.weekday().map(i64::from);
    let month = |c: &Civil| c.date.map(|(_, m, _)| i64::from(m));
    let distinct = |f: &dyn Fn(&Civil) -> Option<i64>| {
        rows()
            .filter_map(|(_, c)| f(&c))
            .collect::<BTreeSet<_>>()
            .len()
    };
    // Whether some numeric input maps one to one onto `f`'s values (both ways), over at
    // least two distinct values.
    let held = |f: &dyn Fn(&Civil) -> Option<i64>| {
        numeric.iter().any(|column| {
            let mut forward = std::collections::HashMap::new();
            let mut backward = std::collections::HashMap::new();
            let mut pairs = 0;
            for (i, c) in rows() {
                let (Some(k), Some(Some(v))) = (f(&c), column.get(i)) else {
                    continue;
                };
                let v = v.to_bits();
                if *forward.entry(k).or_insert(v) != v || *backward.entry(v).or_insert(k) != k {
                    return false;
                }
                pairs += 1;
            }
            pairs > 0 && forward.len() >= 2
        })
    };
    let clock = |c: &Civil| c.hours.map(|h| (h * 3_600.0).round() as i64);
    let day_of_month = |c: &Civil| c.date.map(|(_, _, d)| i64::from(d));
    let year_day = |c: &Civil| c.date.map(|(_, m, d)| i64::from(m * 32 + d));
    let mut parts = Vec::new();
    if distinct(&clock) >= 2 && !held(&hour) {
        parts.push(TimePart::Day);
    }
    if distinct(&weekday) >= 2 && distinct(&day_of_month) >= 2 && !held(&weekday) {
        parts.push(TimePart::Week);
    }
    if distinct(&year_day) >= 2 && !held(&month) {
        parts.push(TimePart::Year);
    }
    parts
}

/// Why `infer_schema` left a string column out of the inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftOutReason {
    /// Every value read is a date or a time of day, and none of its parts is worth an input
    /// (constant, or held by a numeric input already: [`time_parts`]). As a categorical
    /// input each day (or hour) would be a new category, never seen again (bike sharing
    /// with `dteday` as a categorical input: MAE 35.5 against 32.4 without it, 2026-12-06).
    TimeStamp,
    /// More than [`IDENTIFIER_DISTINCT`] distinct values, and than half the rows.
    Identifier,
}

impl LeftOutReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LeftOutReason::TimeStamp => {
                "a date or a time whose parts are constant or inputs already"
            }
            LeftOutReason::Identifier => "an identifier",
        }
    }
}

/// A string column `infer_schema` left out of the inputs (see [`LeftOutReason`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub column: String,
    pub reason: LeftOutReason,
    /// Distinct values among `rows` values read.
    pub distinct: usize,
    pub rows: usize,
}

/// More distinct numeric label values than this make `infer_schema` read the label as a
/// regression target.
pub const REGRESSION_DISTINCT: usize = 32;

/// Runs `strategies` over `path` with `base` (schema already set) and reports.
pub fn run(
    base: &Config,
    path: &Path,
    strategies: &[Strategy],
    mut progress: impl FnMut(&str),
) -> Result<EvalReport, EvalError> {
    let mut config = base.clone();
    config.file.path = Some(path.to_path_buf());
    let header = base.file.header && config.schema.format == Format::Csv;
    config.file.header = header;
    config.file.exit_at_end = true;
    config.file.dead_letter_path = None;
    config.kafka.brokers = None;
    config.store.path = None;
    config.http.listen = "127.0.0.1:0".into();
    // No request to yield to: ingest keeps the process's priority (a retrain still runs
    // `retrain.nice` below it).
    config.ingest.nice = 0;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(EvalError::Runtime)?;
    // The records to expect: the file's lines after the header (blank ones not counted).
    let total = open_lines(path)
        .map(|text| {
            text.lines()
                .skip(usize::from(header))
                .map_while(Result::ok)
                .filter(|l| !l.trim().is_empty())
                .count() as u64
        })
        .unwrap_or(0);
    let mut runs: Vec<(Strategy, Summary, f64)> = Vec::new();
    let baselines_only = strategies
        .iter()
        .all(|s| matches!(s, Strategy::NoChange | Strategy::Majority));
    // Baselines alone still need the records read and scored: the cheapest run, `none`,
    // reads them (its row is not shown).
    let to_run: &[Strategy] = if baselines_only {
        &[Strategy::None]
    } else {
        strategies
    };
    for &s in to_run {
        if matches!(s, Strategy::NoChange | Strategy::Majority) {
            continue;
        }
        progress(&format!("{}: running", s.as_str()));
        let started = Instant::now();
        let metrics = crate::metrics::Metrics::new();
        let shown = progress::Progress::start(s.as_str(), total, metrics.clone());
        let summary = runtime
            .block_on(app::run_with(
                s.apply(&config),
                CancellationToken::new(),
                metrics,
            ))
            .map_err(|source| EvalError::Run {
                strategy: s.as_str().into(),
                source,
            })?;
        shown.finish();
        let wall = started.elapsed().as_secs_f64();
        match config.schema.task {
            Task::Classification => progress(&format!(
                "{}: accuracy {:.4} over {} records in {wall:.1} s",
                s.as_str(),
                summary.scores.accuracy().unwrap_or(0.0),
                summary.scores.scored()
            )),
            Task::Regression => progress(&format!(
                "{}: MAE {:.4} over {} records in {wall:.1} s",
                s.as_str(),
                summary.scores.regression.mae().unwrap_or(f64::NAN),
                summary.scores.regression.scored
            )),
        }
        runs.push((s, summary, wall));
    }
    // The baselines are scored on the records the first run scored (they need no run).
    let baseline = runs.first().map(|(_, s, _)| s.clone());
    let mut rows = Vec::new();
    for &s in strategies {
        let row = match s {
            Strategy::NoChange | Strategy::Majority => {
                let Some(b) = &baseline else { continue };
                baseline_row(s, b, config.schema.task)
            }
            _ => {
                let Some((_, sum, wall)) = runs.iter().find(|(k, _, _)| *k == s) else {
                    continue;
                };
                strategy_row(s, sum, *wall, config.schema.task)
            }
        };
        rows.push(row);
    }
    let flops = |k: Strategy| rows.iter().find(|r| r.strategy == k).map(|r| r.train_flops);
    let cost_ratio = match (flops(Strategy::Default), flops(Strategy::Full)) {
        (Some(d), Some(f)) if f > 0.0 => Some(d / f),
        _ => None,
    };
    Ok(EvalReport {
        file: path.display().to_string(),
        records: runs.first().map_or(0, |(_, s, _)| s.records),
        label: config.schema.label.clone().unwrap_or_default(),
        features: config.schema.features.clone(),
        categorical: config.schema.categorical.clone(),
        time: config.schema.time.clone(),
        classes: config.schema.classes.clone(),
        task: config.schema.task,
        rows,
        cost_ratio,
    })
}

/// The row of a baseline (`no-change` or `majority`), scored on the records the run `b`
/// scored.
fn baseline_row(s: Strategy, b: &Summary, task: Task) -> EvalRow {
    let acc = if s == Strategy::NoChange {
        b.scores.nochange_accuracy()
    } else {
        b.scores.majority_accuracy()
    }
    .unwrap_or(0.0);
    let nochange = b.scores.nochange_accuracy().unwrap_or(0.0);
    EvalRow {
        strategy: s,
        scored: b.scores.scored(),
        labeled: b.labeled,
        accuracy: acc,
        accuracy_all: acc * b.scores.scored() as f64
            / b.scores.label_counts.iter().sum::<u64>().max(1) as f64,
        kappa: None,
        kappa_temporal: (nochange < 1.0).then(|| (acc - nochange) / (1.0 - nochange)),
        promoted: 0,
        rejected: 0,
        challenger_promotions: 0,
        challenger_accuracy: 0.0,
        train_flops: 0.0,
        regression: (task == Task::Regression).then(|| {
            let r = &b.scores.regression;
            let mae = if s == Strategy::NoChange {
                r.nochange_mae()
            } else {
                r.mean_mae()
            };
            RegressionRow {
                mae_all: None,
                mae,
                rmse: None,
                r2: None,
                challenger_mae: None,
            }
        }),
        wall_seconds: 0.0,
        records_per_second: 0.0,
        curve: None,
    }
}

/// The row of a strategy's run, which took `wall` seconds.
fn strategy_row(s: Strategy, sum: &Summary, wall: f64, task: Task) -> EvalRow {
    EvalRow {
        strategy: s,
        scored: sum.scores.scored(),
        labeled: sum.labeled,
        accuracy: sum.scores.accuracy().unwrap_or(0.0),
        accuracy_all: sum.scores.accuracy_all().unwrap_or(0.0),
        kappa: sum.scores.kappa(),
        kappa_temporal: sum.scores.kappa_temporal(),
        promoted: sum.promoted,
        rejected: sum.rejected,
        challenger_promotions: sum.challenger_promotions,
        challenger_accuracy: sum.challenger_accuracy,
        train_flops: sum.train_flops,
        regression: (task == Task::Regression).then(|| {
            let r = &sum.scores.regression;
            RegressionRow {
                mae_all: r.mae_all(),
                mae: r.mae(),
                rmse: r.rmse(),
                r2: r.r2(),
                challenger_mae: sum.scores.challenger_regression.mae(),
            }
        }),
        wall_seconds: wall,
        records_per_second: sum.records as f64 / wall.max(1e-9),
        curve: Some(sum.curve.clone()),
    }
}

/// ", N time fields" when the report has some.
fn time_fields(r: &EvalReport) -> String {
    match r.time.len() {
        0 => String::new(),
        1 => ", 1 time field".into(),
        n => format!(", {n} time fields"),
    }
}

/// The report as a markdown table. "accuracy (all labeled)" counts records before the first
/// model as errors, as a learner that predicts from the first record is scored.
pub fn markdown(r: &EvalReport) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    if r.task == Task::Regression {
        return markdown_regression(r);
    }
    let mut out = format!(
        "{}: {} records, label `{}`, {} numeric and {} categorical features{}, {} classes\n\n",
        r.file,
        r.records,
        r.label,
        r.features.len(),
        r.categorical.len(),
        time_fields(r),
        r.classes.len()
    );
    out.push_str("| strategy | accuracy (all labeled) | accuracy (scored) | kappa | kappa-temporal | scored | promoted / rejected (challenger) | challenger accuracy | training FLOPs | wall s | records/s |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for row in &r.rows {
        out.push_str(&format!(
            "| {} | {:.4} | {:.4} | {} | {} | {} | {} / {} ({}) | {:.4} | {:.3e} | {:.1} | {:.0} |\n",
            row.strategy.as_str(),
            row.accuracy_all,
            row.accuracy,
            opt(row.kappa),
            opt(row.kappa_temporal),
            row.scored,
            row.promoted,
            row.rejected,
            row.challenger_promotions,
            row.challenger_accuracy,
            row.train_flops,
            row.wall_seconds,
            row.records_per_second
        ));
    }
    if let Some(c) = r.cost_ratio {
        out.push_str(&format!("\ndefault / full training FLOPs: {c:.2}\n"));
    }
    out
}

/// The regression report: MAE over every labeled record and over the scored ones, RMSE, R^2.
/// The no-change row predicts the previous target, the majority row the running mean.
fn markdown_regression(r: &EvalReport) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
    let mut out = format!(
        "{}: {} records, numeric target `{}`, {} numeric and {} categorical features{}\n\n",
        r.file,
        r.records,
        r.label,
        r.features.len(),
        r.categorical.len(),
        time_fields(r),
    );
    out.push_str("| strategy | MAE (all labeled) | MAE (scored) | RMSE | R^2 | scored | promoted / rejected (challenger) | challenger MAE | training FLOPs | wall s | records/s |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for row in &r.rows {
        let reg = row.regression.as_ref();
        let name = match row.strategy {
            Strategy::Majority => "mean",
            other => other.as_str(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} / {} ({}) | {} | {:.3e} | {:.1} | {:.0} |\n",
            name,
            opt(reg.and_then(|g| g.mae_all)),
            opt(reg.and_then(|g| g.mae)),
            opt(reg.and_then(|g| g.rmse)),
            opt(reg.and_then(|g| g.r2)),
            row.scored,
            row.promoted,
            row.rejected,
            row.challenger_promotions,
            opt(reg.and_then(|g| g.challenger_mae)),
            row.train_flops,
            row.wall_seconds,
            row.records_per_second
        ));
    }
    if let Some(c) = r.cost_ratio {
        out.push_str(&format!("\ndefault / full training FLOPs: {c:.2}\n"));
    }
    out
}

/// Writes `eval.md` and `eval.json` into `dir`.
pub fn write(r: &EvalReport, dir: &Path) -> Result<(PathBuf, PathBuf), EvalError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EvalError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let md = dir.join("eval.md");
    std::fs::write(&md, markdown(r)).map_err(err(&md))?;
    let json = dir.join("eval.json");
    let body = serde_json::to_vec_pretty(r).map_err(|e| EvalError::Write {
        path: json.clone(),
        source: std::io::Error::other(e),
    })?;
    std::fs::write(&json, body).map_err(err(&json))?;
    Ok((md, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults with label `y` and nothing else of the schema set.
    fn blank() -> Config {
        let mut c = Config::default();
        c.schema.label = Some("y".into());
        c.schema.features.clear();
        c.schema.categorical.clear();
        c.schema.classes.clear();
        c
    }

    /// `dir/name`: `header` then `rows` lines made by `row`.
    fn csv_file(
        dir: &Path,
        name: &str,
        header: &str,
        rows: usize,
        row: impl Fn(usize) -> String,
    ) -> PathBuf {
        let path = dir.join(name);
        let text: String = std::iter::once(header.to_string())
            .chain((0..rows).map(row))
            .map(|l| l + "\n")
            .collect();
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_file_without_a_header_line_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = csv_file(dir.path(), "bare.csv", "0.5,-1.25,1", 20, |i| {
            format!("{},{},{}", i, i % 3, i % 2)
        });
        let err = infer_schema(&mut blank(), &path, None)
            .expect_err("no column y")
            .to_string();
        assert!(err.contains("no column `y`"), "{err}");
        assert!(
            err.contains("not column names") && err.contains("--columns"),
            "{err}"
        );
        // A header that names other columns gets no such hint.
        let named = csv_file(dir.path(), "named.csv", "a,b,c", 20, |i| format!("{i},1,0"));
        let err = infer_schema(&mut blank(), &named, None)
            .expect_err("no column y")
            .to_string();
        assert!(
            err.contains("no column `y`") && !err.contains("--columns"),
            "{err}"
        );
    }

    #[test]
    fn a_file_without_a_header_line_runs_with_its_columns_named() {
        // 50 records, no header: the first line is a record and every line reaches the loop.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = csv_file(dir.path(), "bare.csv", "3,p,1", 49, |i| {
            format!("{},{},{}", i % 7, ["p", "q"][i % 2], i % 2)
        });
        let mut config = blank();
        config.schema.columns = vec!["a".into(), "c".into(), "y".into()];
        config.file.header = false;
        infer_schema(&mut config, &path, None).expect("inferred");
        assert_eq!(config.schema.features, ["a"]);
        assert_eq!(config.schema.categorical, ["c"]);
        assert_eq!(config.schema.classes, ["0", "1"]);
        let report = run(&config, &path, &[Strategy::Default], |_| {}).expect("ran");
        assert_eq!(report.records, 50);
        assert_eq!(report.rows[0].labeled, 50);
        // Names that do not fit the rows, or none at all, are refused before a run.
        config.schema.columns = vec!["a".into(), "y".into()];
        let err = infer_schema(&mut config, &path, None).expect_err("2 names, 3 fields");
        assert!(err.to_string().contains("3 fields"), "{err}");
        config.schema.columns.clear();
        let err = infer_schema(&mut config, &path, None).expect_err("no names");
        assert!(err.to_string().contains("--columns"), "{err}");
    }

    #[test]
    fn a_spreadsheet_export_with_a_byte_order_mark_and_semicolons_is_read() {
        // 60 rows `a;c;y` after a UTF-8 BOM: the delimiter is found from the header, the
        // first column is `a` (not "\u{feff}a"), and every row reaches the loop.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = csv_file(dir.path(), "export.csv", "\u{feff}a;c;y", 60, |i| {
            format!("{};{};{}", i % 7, ["p", "q"][i % 2], i % 2)
        });
        let mut config = blank();
        infer_schema(&mut config, &path, None).expect("inferred");
        assert_eq!(config.schema.delimiter, ";");
        assert_eq!(config.schema.features, ["a"]);
        assert_eq!(config.schema.categorical, ["c"]);
        let report = run(&config, &path, &[Strategy::Default], |_| {}).expect("ran");
        assert_eq!(report.records, 60);
        assert_eq!(report.rows[0].labeled, 60);
        // `a, b` separators (UCI Adult): names and labels are read trimmed, as the decoder
        // reads them.
        let spaced = csv_file(dir.path(), "spaced.csv", "a, c, y", 40, |i| {
            format!("{}, {}, {}", i % 5, ["p", "q"][i % 2], ["<=5", ">5"][i % 2])
        });
        let mut config = blank();
        infer_schema(&mut config, &spaced, None).expect("inferred");
        assert_eq!(config.schema.features, ["a"]);
        assert_eq!(config.schema.categorical, ["c"]);
        assert_eq!(config.schema.classes, ["<=5", ">5"]);
        let report = run(&config, &spaced, &[Strategy::Default], |_| {}).expect("ran");
        assert_eq!(report.rows[0].labeled, 40);
        // A comma in the header keeps the comma.
        let commas = dir.path().join("commas.csv");
        std::fs::write(&commas, "a,b;c\n1,2;3\n").expect("write");
        assert_eq!(sniff_delimiter(&commas).expect("read"), None);
        let tabs = dir.path().join("tabs.tsv");
        std::fs::write(&tabs, "a\tb\tc;d\n").expect("write");
        assert_eq!(sniff_delimiter(&tabs).expect("read"), Some('\t'));
    }

    #[test]
    fn an_arff_nominal_label_is_a_class_label_whatever_its_values() {
        // 200 rows, the label one of 40 numbers: as CSV a numeric target (more than
        // REGRESSION_DISTINCT values), as ARFF with `{0,...,40}` declared 41 classes.
        let dir = tempfile::tempdir().expect("temp dir");
        let rows = |i: usize| format!("{},{}", i as f32 / 7.0, i % 40);
        let path = csv_file(dir.path(), "s.csv", "x,y", 200, rows);
        let mut config = blank();
        infer_schema(&mut config, &path, None).expect("inferred");
        assert_eq!(config.schema.task, Task::Regression);
        let declared: Vec<String> = (0..=40).map(|c| c.to_string()).collect();
        let arff = dir.path().join("s.arff");
        let body: String = (0..200).map(|i| rows(i) + "\n").collect();
        std::fs::write(
            &arff,
            format!(
                "@relation s\n@attribute x numeric\n@attribute y {{{}}}\n@data\n{body}",
                declared.join(",")
            ),
        )
        .expect("write");
        let mut config = blank();
        infer_schema(&mut config, &arff, None).expect("inferred");
        assert_eq!(config.schema.task, Task::Classification);
        assert_eq!(config.schema.classes.len(), 41, "every declared class");
        assert!(config.schema.classes.contains(&"40".to_string()));
        assert_eq!(config.schema.features, ["x"]);
        // A task the user names is kept.
        let mut config = blank();
        infer_schema(&mut config, &arff, Some(Task::Regression)).expect("inferred");
        assert_eq!(config.schema.task, Task::Regression);
    }

    /// 100 rows of `id,city,x,stamp,few,y`: `id` differs on every row, `city` has 3 values,
    /// `x` is a number, `stamp` an hourly time, `few` has 40 values, `y` is 0 or 1.
    fn mixed_columns(dir: &Path) -> PathBuf {
        csv_file(dir, "s.csv", "id,city,x,stamp,few,y", 100, |i| {
            format!(
                "u{i},{},{i},2013-01-{:02} {:02}:30,f{},{}",
                ["a", "b", "c"][i % 3],
                1 + i / 24,
                i % 24,
                i % 40,
                i % 2
            )
        })
    }

    #[test]
    fn identifier_columns_are_not_inferred_as_categorical_inputs() {
        // 100 rows: `id` differs on every row (left out), `city` has 3 values and `few` 40
        // (more than IDENTIFIER_DISTINCT but not more than half the rows: kept); `stamp` is
        // an hourly time whose three parts vary: a time field.
        let dir = tempfile::tempdir().expect("temp dir");
        let path = mixed_columns(dir.path());
        let mut config = blank();
        let left_out = infer_schema(&mut config, &path, None).expect("inferred");
        assert_eq!(config.schema.features, ["x"]);
        assert_eq!(config.schema.categorical, ["city", "few"]);
        assert_eq!(config.schema.classes, ["0", "1"]);
        assert_eq!(config.schema.time, [TimeField::new("stamp")]);
        assert_eq!(
            left_out,
            [LeftOut {
                column: "id".into(),
                reason: LeftOutReason::Identifier,
                distinct: 100,
                rows: 100,
            }]
        );
        // Named by the user, an identifier is an input.
        let mut config = blank();
        config.schema.categorical = vec!["id".into()];
        let left_out = infer_schema(&mut config, &path, None).expect("inferred");
        assert!(left_out.is_empty());
        assert_eq!(config.schema.categorical, ["id"]);
        // Categorical fields named: no inference of string columns at all.
        assert!(config.schema.time.is_empty());
    }

    #[test]
    fn named_features_that_hold_strings_are_categorical_inputs_or_time_fields() {
        // 100 rows of `id,city,x,stamp,few,y` with the features named and no kinds: `x` is
        // numeric, `city` and `id` (named: an input even though every value differs) are
        // categorical, `stamp` a time field; `few`, not named, is no input at all. Before,
        // every record was a dead letter (`non_numeric`).
        let dir = tempfile::tempdir().expect("temp dir");
        let path = mixed_columns(dir.path());
        let mut config = blank();
        config.schema.features = ["city", "x", "stamp", "id"].map(String::from).to_vec();
        let left_out = infer_schema(&mut config, &path, None).expect("inferred");
        assert!(left_out.is_empty(), "{left_out:?}");
        assert_eq!(config.schema.features, ["x"]);
        assert_eq!(config.schema.categorical, ["id", "city"]);
        assert_eq!(config.schema.time, [TimeField::new("stamp")]);
        let report = run(&config, &path, &[Strategy::Default], |_| {}).expect("ran");
        assert_eq!(report.records, 100);
        assert_eq!(report.rows[0].labeled, 100);
        // Kinds given by the user are kept as given.
        let mut config = blank();
        config.schema.features = vec!["x".into()];
        config.schema.categorical = vec!["city".into()];
        infer_schema(&mut config, &path, None).expect("inferred");
        assert_eq!(config.schema.features, ["x"]);
        assert_eq!(config.schema.categorical, ["city"]);
        // A named column the file lacks is refused before a run, with the file's columns.
        let mut config = blank();
        config.schema.features = vec!["x".into(), "town".into()];
        let err = infer_schema(&mut config, &path, None)
            .expect_err("no column town")
            .to_string();
        assert!(
            err.contains("no column `town`") && err.contains("\"few\""),
            "{err}"
        );
    }

    #[test]
    fn a_time_column_gives_the_parts_no_other_input_holds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let parts = |name: &str, header: &str, row: &dyn Fn(usize) -> String| {
            let path = csv_file(dir.path(), name, header, 200, row);
            let mut config = blank();
            let left_out = infer_schema(&mut config, &path, None).expect("inferred");
            (config.schema.time, left_out)
        };
        // Daily dates with the weekday (Sunday = 0, another numbering than Monday = 0) and
        // the month as numeric columns, as bike sharing has: nothing left to add.
        // 2011-01-01 was a Saturday.
        let (time, left_out) = parts("bike.csv", "day,weekday,mnth,y", &|i| {
            let (m, d) = if i < 31 { (1, i + 1) } else { (2, i - 30) };
            let d = d.min(28);
            let days = if m == 1 { d - 1 } else { 31 + d - 1 };
            format!("2011-{m:02}-{d:02},{},{m},{}", (6 + days) % 7, i % 2)
        });
        assert!(time.is_empty(), "{time:?}");
        assert_eq!(left_out.len(), 1);
        assert_eq!(left_out[0].column, "day");
        assert_eq!(left_out[0].reason, LeftOutReason::TimeStamp);
        // The same dates without those columns: week and year; no time of day.
        let (time, _) = parts("days.csv", "day,x,y", &|i| {
            format!("2011-01-{:02},{i},{}", 1 + i / 8, i % 2)
        });
        let expected = |parts: Vec<TimePart>| {
            vec![TimeField {
                field: "day".into(),
                parts,
            }]
        };
        assert_eq!(time, expected(vec![TimePart::Week, TimePart::Year]));
        // A monthly series (`1949-01`): the weekday of the 1st is noise, the month is not.
        let (time, _) = parts("months.csv", "day,x,y", &|i| {
            format!("{}-{:02},{i},{}", 1949 + i / 12, 1 + i % 12, i % 2)
        });
        assert_eq!(time, expected(vec![TimePart::Year]));
        // Times of day only, with an hour column that is not the clock's (a shifted zone).
        let (time, _) = parts("clock.csv", "day,hour,y", &|i| {
            format!("{:02}:{:02},{},{}", i % 24, i % 60, (i + 5) % 24, i % 2)
        });
        assert!(time.is_empty(), "{time:?}");
        let (time, _) = parts("clock2.csv", "day,x,y", &|i| {
            format!("{:02}:{:02},{i},{}", i % 24, i % 60, i % 2)
        });
        assert_eq!(time, expected(vec![TimePart::Day]));
    }
}
