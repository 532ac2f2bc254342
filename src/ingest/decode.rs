//! Record decoding: bytes in the configured schema (JSON or CSV) to a `Record`, or a reason.
//!
//! Invariant: decoding never panics on any input; every failure is a `DecodeError` with a
//! bounded `Reason` (used as a metric label and a dead-letter header) and a human detail.
//!
//! A decoded record's features are the model's raw inputs, in this order: the numeric
//! `schema.features` (NaN where a value is missing and `schema.missing` imputes: the model's
//! normaliser turns NaN into its mean), then `schema.categorical_buckets` one-hot inputs per
//! `schema.categorical` field (a vocabulary or feature hashing, `ingest::categories`), then, with `schema.missing = "indicate"`, one
//! 0/1 missing indicator per numeric feature, then each `schema.time` field's inputs
//! (`ingest::time`). [`decoded_names`] names them.

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use super::categories::{CategoricalEncoding, Vocabulary};
use super::json::{Field, Fields};
use super::time::{Civil, TimeField};

use crate::error::ConfigError;
use crate::learn::Task;
use crate::record::{Label, Record};

/// The decoder's output width for `schema` (before temporal augmentation).
pub fn decoded_width(schema: &SchemaConfig) -> usize {
    let n = schema.features.len();
    n + schema.categorical.len() * schema.categorical_buckets
        + if schema.missing == MissingPolicy::Indicate {
            n
        } else {
            0
        }
        + schema.time.iter().map(TimeField::width).sum::<usize>()
}

/// Names of the decoder's outputs: `<feature>`, `<field>#<bucket>`, `<feature>:missing`,
/// `<time field>:<input>` (`ingest::time`).
pub fn decoded_names(schema: &SchemaConfig) -> Vec<String> {
    let mut names = schema.features.clone();
    for c in &schema.categorical {
        names.extend((0..schema.categorical_buckets).map(|b| format!("{c}#{b}")));
    }
    if schema.missing == MissingPolicy::Indicate {
        names.extend(schema.features.iter().map(|f| format!("{f}:missing")));
    }
    for t in &schema.time {
        names.extend(t.names());
    }
    names
}

/// The one-hot input of a categorical value: FNV-1a (64 bit) of its text, modulo `buckets`.
/// Stable across processes, versions and machines (serving replicas agree without state).
pub fn category_bucket(value: &str, buckets: usize) -> usize {
    (category_hash(value) % buckets.max(1) as u64) as usize
}

/// FNV-1a 64 of a categorical value (its identity for new-category counting).
pub fn category_hash(value: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in value.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The hash of each categorical field's value in a decoded record, in `schema.categorical`
/// order (None where missing).
pub type CategoryHashes = Vec<Option<u64>>;

pub use crate::totals::Reason;

/// A refused record: the reason and a detail for humans.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct DecodeError {
    pub reason: Reason,
    pub detail: String,
}

fn fail(reason: Reason, detail: impl Into<String>) -> DecodeError {
    DecodeError {
        reason,
        detail: detail.into(),
    }
}

/// Decodes payloads of one schema. Cheap to clone; built once per source.
#[derive(Debug, Clone)]
pub struct Decoder {
    format: Format,
    features: Vec<String>,
    categorical: Vec<String>,
    buckets: usize,
    missing: MissingPolicy,
    missing_tokens: HashSet<String>,
    width: usize,
    label: Option<String>,
    task: Task,
    classes: HashMap<String, u32>,
    key: Option<String>,
    timestamp: Option<String>,
    delimiter: u8,
    max_bytes: usize,
    csv: CsvLayout,
    /// Delayed labels (`labels.enabled`): a record with a label and no feature field present
    /// is a label record (decoded with empty `features`).
    label_records: bool,
    /// Which input each categorical value sets (`schema.categorical_encoding`); `None`:
    /// hashing.
    vocabulary: Option<Arc<Vocabulary>>,
    /// The time fields (`schema.time`) and where each one's inputs start.
    time: Vec<(TimeField, usize)>,
}

/// What a CSV column holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Ignore,
    Feature(usize),
    Categorical(usize),
    Time(usize),
    Label,
    Key,
    Timestamp,
}

/// The role of each CSV column.
#[derive(Debug, Clone)]
struct CsvLayout {
    width: usize,
    roles: Vec<Role>,
}

impl Decoder {
    /// Builds a decoder; CSV columns are the schema's `columns` (or features, categorical
    /// fields, time fields, then label).
    pub fn new(schema: &SchemaConfig) -> Result<Decoder, DecodeError> {
        let columns = if schema.columns.is_empty() {
            let mut c = schema.features.clone();
            c.extend(schema.categorical.iter().cloned());
            c.extend(schema.time.iter().map(|t| t.field.clone()));
            c.extend(schema.label.iter().cloned());
            c
        } else {
            schema.columns.clone()
        };
        Decoder::with_columns(schema, &columns)
    }

    /// Builds a decoder whose CSV columns are `columns` (e.g. read from a file's header).
    pub fn with_columns(schema: &SchemaConfig, columns: &[String]) -> Result<Decoder, DecodeError> {
        let mut roles = vec![Role::Ignore; columns.len()];
        let inputs = [
            (
                "feature",
                &schema.features,
                Role::Feature as fn(usize) -> Role,
            ),
            ("categorical field", &schema.categorical, Role::Categorical),
        ];
        for (what, fields, role) in inputs {
            for (k, f) in fields.iter().enumerate() {
                match columns.iter().position(|c| c == f) {
                    Some(i) => roles[i] = role(k),
                    None if schema.format == Format::Csv => {
                        return Err(fail(
                            Reason::MissingField,
                            format!("{what} `{f}` is not among the CSV columns {columns:?}"),
                        ))
                    }
                    None => {}
                }
            }
        }
        for (k, t) in schema.time.iter().enumerate() {
            match columns.iter().position(|c| *c == t.field) {
                Some(i) => roles[i] = Role::Time(k),
                None if schema.format == Format::Csv => {
                    return Err(fail(
                        Reason::MissingField,
                        format!(
                            "time field `{}` is not among the CSV columns {columns:?}",
                            t.field
                        ),
                    ))
                }
                None => {}
            }
        }
        for (name, role) in [
            (&schema.label, Role::Label),
            (&schema.key, Role::Key),
            (&schema.timestamp, Role::Timestamp),
        ] {
            let Some(name) = name else { continue };
            if let Some(i) = columns.iter().position(|c| c == name) {
                roles[i] = role;
            }
        }
        let csv = CsvLayout {
            width: columns.len(),
            roles,
        };
        let width = decoded_width(schema);
        let mut at = width - schema.time.iter().map(TimeField::width).sum::<usize>();
        let time = schema
            .time
            .iter()
            .map(|t| {
                at += t.width();
                (t.clone(), at - t.width())
            })
            .collect();
        Ok(Decoder {
            format: schema.format,
            features: schema.features.clone(),
            categorical: schema.categorical.clone(),
            buckets: schema.categorical_buckets.max(1),
            missing: schema.missing,
            missing_tokens: schema.missing_tokens.iter().cloned().collect(),
            width,
            label: schema.label.clone(),
            task: schema.task,
            classes: schema
                .classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), i as u32))
                .collect(),
            key: schema.key.clone(),
            timestamp: schema.timestamp.clone(),
            delimiter: schema.delimiter.as_bytes().first().copied().unwrap_or(b','),
            max_bytes: schema.max_record_bytes,
            csv,
            label_records: false,
            vocabulary: None,
            time,
        })
    }

    /// Reads categorical inputs from `vocabulary` (a value it does not know yet sets no
    /// input: the ingest path assigns one, [`Decoder::categorical_input`]).
    pub fn with_vocabulary(mut self, vocabulary: Arc<Vocabulary>) -> Decoder {
        self.vocabulary = Some(vocabulary);
        self
    }

    /// Where input `i` of categorical field `k` is in a decoded record's features.
    pub fn categorical_input(&self, k: usize, i: usize) -> usize {
        self.features.len() + k * self.buckets + i
    }

    /// Decodes records with a label and no feature field present as label records: `features`
    /// empty, the label and the key set (`labels.enabled`). Such a record is not refused under
    /// `schema.missing = "reject"`.
    pub fn with_label_records(mut self) -> Decoder {
        self.label_records = true;
        self
    }

    /// A decoder for a label topic (`kafka.label_topics`): only `schema.key`, `schema.label`
    /// and `schema.timestamp` are read; every record with a label is a label record. CSV
    /// columns are `columns` (or the key and the label).
    pub fn for_labels(schema: &SchemaConfig, columns: &[String]) -> Result<Decoder, DecodeError> {
        let mut s = schema.clone();
        s.features.clear();
        s.categorical.clear();
        s.time.clear();
        s.missing = MissingPolicy::Impute;
        let columns = if columns.is_empty() {
            schema.key.iter().chain(&schema.label).cloned().collect()
        } else {
            columns.to_vec()
        };
        Ok(Decoder::with_columns(&s, &columns)?.with_label_records())
    }

    /// Number of features of every decoded record.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Schema fields (numeric features, then categorical fields) that were missing in `record`,
    /// as indices into `features ++ categorical`. Only meaningful on a freshly decoded record.
    pub fn missing_fields<'a>(&'a self, record: &'a Record) -> impl Iterator<Item = usize> + 'a {
        let n = self.features.len();
        let numeric = (0..n).filter(|&k| record.features.get(k).is_some_and(|v| v.is_nan()));
        let categorical = (0..self.categorical.len()).filter(move |&k| {
            let start = n + k * self.buckets;
            record
                .features
                .get(start..start + self.buckets)
                .is_some_and(|block| block.iter().all(|&v| v == 0.0))
        });
        numeric.chain(categorical.map(move |k| n + k))
    }

    /// Names of the fields `missing_fields` indexes.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.features
            .iter()
            .chain(&self.categorical)
            .map(String::as_str)
    }

    /// Whether a (trimmed) field text stands for a missing value.
    fn is_missing_text(&self, s: &str) -> bool {
        s.is_empty() || self.missing_tokens.contains(s)
    }

    /// A missing numeric feature `k`: NaN (imputed by the model) or a refusal.
    fn missing_numeric(
        &self,
        features: &mut [f32],
        k: usize,
        deferred: &mut Option<DecodeError>,
        detail: impl FnOnce() -> String,
    ) -> Result<(), DecodeError> {
        if self.missing == MissingPolicy::Reject {
            let e = fail(Reason::MissingField, detail());
            if !self.label_records {
                return Err(e);
            }
            // A label record has no feature at all: refused only if some feature is present.
            deferred.get_or_insert(e);
        }
        features[k] = f32::NAN;
        if self.missing == MissingPolicy::Indicate {
            let at = self.features.len() + self.categorical.len() * self.buckets + k;
            features[at] = 1.0;
        }
        Ok(())
    }

    /// Sets categorical field `k` to `value` (None: missing); true when a value is present.
    fn set_category(
        &self,
        features: &mut [f32],
        cats: &mut CategoryHashes,
        k: usize,
        value: Option<&str>,
        deferred: &mut Option<DecodeError>,
    ) -> Result<bool, DecodeError> {
        match value.map(str::trim) {
            Some(v) if !self.is_missing_text(v) => {
                let h = category_hash(v);
                let input = match &self.vocabulary {
                    Some(vocabulary) => vocabulary.input(k, h, false),
                    None => Some((h % self.buckets.max(1) as u64) as usize),
                };
                if let Some(i) = input {
                    features[self.categorical_input(k, i)] = 1.0;
                }
                if let Some(c) = cats.get_mut(k) {
                    *c = Some(h);
                }
                Ok(true)
            }
            _ if self.missing == MissingPolicy::Reject => {
                let e = fail(
                    Reason::MissingField,
                    format!("`{}` is missing", self.categorical[k]),
                );
                if !self.label_records {
                    return Err(e);
                }
                deferred.get_or_insert(e);
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// Sets time field `k` to `value` (None: missing); true when a value is present.
    fn set_time(
        &self,
        features: &mut [f32],
        k: usize,
        value: Result<Option<Civil>, DecodeError>,
        deferred: &mut Option<DecodeError>,
    ) -> Result<bool, DecodeError> {
        let Some((field, at)) = self.time.get(k) else {
            return Ok(false);
        };
        let time = value?;
        if time.is_none() && self.missing == MissingPolicy::Reject {
            let e = fail(
                Reason::MissingField,
                format!("`{}` is missing", field.field),
            );
            if !self.label_records {
                return Err(e);
            }
            deferred.get_or_insert(e);
        }
        field.write(time.as_ref(), &mut features[*at..*at + field.width()]);
        Ok(time.is_some())
    }

    /// Time field `k`'s text: None when missing, a refusal when it is no date or time.
    fn time_text(&self, k: usize, text: &str) -> Result<Option<Civil>, DecodeError> {
        let s = text.trim();
        if self.is_missing_text(s) {
            return Ok(None);
        }
        super::time::parse_or_number(s).map(Some).ok_or_else(|| {
            let name = self.time.get(k).map_or("", |(t, _)| t.field.as_str());
            fail(
                Reason::InvalidTime,
                format!("`{name}` = {s:?} is not a date or a time"),
            )
        })
    }

    /// Decodes one payload.
    pub fn decode(&self, payload: &[u8]) -> Result<Record, DecodeError> {
        self.decode_with_categories(payload).map(|(r, _)| r)
    }

    /// Decodes one payload and returns its categorical values' hashes too.
    pub fn decode_with_categories(
        &self,
        payload: &[u8],
    ) -> Result<(Record, CategoryHashes), DecodeError> {
        let mut cats = vec![None; self.categorical.len()];
        if payload.len() > self.max_bytes {
            return Err(fail(
                Reason::TooLarge,
                format!(
                    "{} bytes > max_record_bytes {}",
                    payload.len(),
                    self.max_bytes
                ),
            ));
        }
        let record = match self.format {
            Format::Json => self.decode_json(payload, &mut cats),
            Format::Csv => self.decode_csv(payload, &mut cats),
        }?;
        Ok((record, cats))
    }

    fn decode_json(
        &self,
        payload: &[u8],
        cats: &mut CategoryHashes,
    ) -> Result<Record, DecodeError> {
        let map = super::json::parse_object(payload)
            .map_err(|e| fail(Reason::InvalidJson, e.to_string()))?
            .ok_or_else(|| fail(Reason::InvalidJson, "not a JSON object"))?;
        let mut features = vec![0f32; self.width];
        let (mut present, mut deferred) = (0usize, None);
        for (k, name) in self.features.iter().enumerate() {
            let x = match map.get(name.as_str()) {
                None | Some(Field::Null) => {
                    self.missing_numeric(&mut features, k, &mut deferred, || {
                        format!("`{name}` is missing")
                    })?;
                    continue;
                }
                Some(Field::Number(n)) => n.as_f64().ok_or_else(|| {
                    fail(Reason::NonNumeric, format!("`{name}` = {n} is not a float"))
                })?,
                Some(Field::Str(s)) if self.is_missing_text(s.trim()) => {
                    self.missing_numeric(&mut features, k, &mut deferred, || {
                        format!("`{name}` = {s:?} is a missing value")
                    })?;
                    continue;
                }
                Some(Field::Str(s)) => parse_number(name, s)?,
                Some(other) => {
                    return Err(fail(
                        Reason::NonNumeric,
                        format!("`{name}` is {}, not a number", other.kind()),
                    ))
                }
            };
            features[k] = finite(name, x)?;
            present += 1;
        }
        for (k, name) in self.categorical.iter().enumerate() {
            let text = match map.get(name.as_str()) {
                None | Some(Field::Null) => None,
                Some(Field::Str(s)) => Some(std::borrow::Cow::Borrowed(s.as_ref())),
                Some(Field::Number(n)) => Some(std::borrow::Cow::Owned(n.to_string())),
                Some(Field::Bool(b)) => Some(std::borrow::Cow::Owned(b.to_string())),
                Some(other) => {
                    return Err(fail(
                        Reason::InvalidCategory,
                        format!("`{name}` is {}, not a category", other.kind()),
                    ))
                }
            };
            present += usize::from(self.set_category(
                &mut features,
                cats,
                k,
                text.as_deref(),
                &mut deferred,
            )?);
        }
        for (k, (t, _)) in self.time.iter().enumerate() {
            let value = match map.get(t.field.as_str()) {
                None | Some(Field::Null) => Ok(None),
                Some(Field::Str(s)) => self.time_text(k, s),
                Some(Field::Number(n)) => n
                    .as_f64()
                    .and_then(Civil::from_unix)
                    .map(Some)
                    .ok_or_else(|| {
                        fail(
                            Reason::InvalidTime,
                            format!("`{}` = {n} is not a Unix time", t.field),
                        )
                    }),
                Some(other) => Err(fail(
                    Reason::InvalidTime,
                    format!("`{}` is {}, not a date or a time", t.field, other.kind()),
                )),
            };
            present += usize::from(self.set_time(&mut features, k, value, &mut deferred)?);
        }
        let label = self.json_label(&map)?;
        let key = self.key.as_ref().and_then(|k| match map.get(k.as_str()) {
            Some(Field::Str(s)) => Some(s.to_string()),
            Some(Field::Number(n)) => Some(n.to_string()),
            _ => None,
        });
        let timestamp_ms = self.json_timestamp(&map)?;
        self.finish(features, present, deferred, label, key, timestamp_ms)
    }

    /// The label field of a JSON record: absent or null is no label; a string, a number or
    /// (for classes) a boolean is read as its text; anything else is refused.
    fn json_label(&self, map: &Fields<'_>) -> Result<Option<Label>, DecodeError> {
        let Some(name) = &self.label else {
            return Ok(None);
        };
        match map.get(name.as_str()) {
            None | Some(Field::Null) => Ok(None),
            Some(Field::Str(s)) => self.label(s),
            Some(Field::Number(n)) => self.label(&n.to_string()),
            Some(Field::Bool(b)) if self.task == Task::Classification => {
                self.label(if *b { "true" } else { "false" })
            }
            Some(other) => {
                let reason = match self.task {
                    Task::Classification => Reason::UnknownLabel,
                    Task::Regression => Reason::InvalidTarget,
                };
                Err(fail(reason, format!("label is {}", other.kind())))
            }
        }
    }

    /// The timestamp field of a JSON record (milliseconds): an integer or an integer's text.
    fn json_timestamp(&self, map: &Fields<'_>) -> Result<Option<i64>, DecodeError> {
        let Some(t) = &self.timestamp else {
            return Ok(None);
        };
        match map.get(t.as_str()) {
            None | Some(Field::Null) => Ok(None),
            Some(Field::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                fail(
                    Reason::NonNumeric,
                    format!("timestamp `{t}` = {n} is not an integer"),
                )
            }),
            Some(Field::Str(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| {
                fail(
                    Reason::NonNumeric,
                    format!("timestamp `{t}` = {s:?} is not an integer"),
                )
            }),
            Some(other) => Err(fail(
                Reason::NonNumeric,
                format!("timestamp `{t}` is {}", other.kind()),
            )),
        }
    }

    /// The decoded record, a label record (no feature present, a label, `label_records`), or
    /// the deferred refusal of a missing feature.
    fn finish(
        &self,
        features: Vec<f32>,
        present: usize,
        deferred: Option<DecodeError>,
        label: Option<Label>,
        key: Option<String>,
        timestamp_ms: Option<i64>,
    ) -> Result<Record, DecodeError> {
        if self.label_records && present == 0 && label.is_some() {
            return Ok(Record {
                features: Vec::new(),
                label,
                key,
                timestamp_ms,
            });
        }
        if let Some(e) = deferred {
            return Err(e);
        }
        Ok(Record {
            features,
            label,
            key,
            timestamp_ms,
        })
    }

    fn decode_csv(&self, payload: &[u8], cats: &mut CategoryHashes) -> Result<Record, DecodeError> {
        let line = std::str::from_utf8(payload)
            .map_err(|e| fail(Reason::InvalidCsv, format!("not UTF-8: {e}")))?;
        let line = line.trim_end_matches(['\n', '\r']);
        if !line.as_bytes().contains(&b'"') {
            // Fast path (no quoting): count, then parse in place without collecting fields.
            let count = line.bytes().filter(|&b| b == self.delimiter).count() + 1;
            if count != self.csv.width {
                return Err(fail(
                    Reason::WrongFieldCount,
                    format!("{count} fields, expected {}", self.csv.width),
                ));
            }
            let fields = line.split(self.delimiter as char);
            return self.csv_record(fields, cats);
        }
        let fields = split_csv(line, self.delimiter)?;
        if fields.len() != self.csv.width {
            return Err(fail(
                Reason::WrongFieldCount,
                format!("{} fields, expected {}", fields.len(), self.csv.width),
            ));
        }
        self.csv_record(fields.iter().map(|f| f.as_ref()), cats)
    }

    /// Builds a record from exactly `csv.width` fields.
    fn csv_record<'a>(
        &self,
        fields: impl Iterator<Item = &'a str>,
        cats: &mut CategoryHashes,
    ) -> Result<Record, DecodeError> {
        let mut features = vec![0f32; self.width];
        let (mut label, mut key, mut timestamp_ms) = (None, None, None);
        let (mut present, mut deferred) = (0usize, None);
        for (col, field) in fields.enumerate() {
            match self.csv.roles.get(col).copied().unwrap_or(Role::Ignore) {
                Role::Ignore => {}
                Role::Feature(k) => {
                    let name = &self.features[k];
                    let s = field.trim();
                    if self.is_missing_text(s) {
                        self.missing_numeric(&mut features, k, &mut deferred, || {
                            format!("`{name}` = {s:?} is a missing value")
                        })?;
                    } else {
                        features[k] = finite(name, parse_number(name, s)?)?;
                        present += 1;
                    }
                }
                Role::Categorical(k) => {
                    present += usize::from(self.set_category(
                        &mut features,
                        cats,
                        k,
                        Some(field),
                        &mut deferred,
                    )?)
                }
                Role::Time(k) => {
                    let value = self.time_text(k, field);
                    present += usize::from(self.set_time(&mut features, k, value, &mut deferred)?)
                }
                Role::Label => label = self.label(field)?,
                Role::Key => {
                    key = Some(field.trim())
                        .filter(|k| !k.is_empty())
                        .map(str::to_string)
                }
                Role::Timestamp => {
                    let s = field.trim();
                    if !s.is_empty() {
                        timestamp_ms = Some(s.parse::<i64>().map_err(|_| {
                            fail(
                                Reason::NonNumeric,
                                format!("timestamp {s:?} is not an integer"),
                            )
                        })?);
                    }
                }
            }
        }
        self.finish(features, present, deferred, label, key, timestamp_ms)
    }

    /// The label in a field's text: none when empty (an unlabeled record), a class, or for
    /// regression a finite number (a missing token is an unlabeled record too).
    fn label(&self, text: &str) -> Result<Option<Label>, DecodeError> {
        let s = text.trim();
        if s.is_empty() {
            return Ok(None);
        }
        match self.task {
            Task::Classification => Ok(Some(Label::Class(self.class(s)?))),
            Task::Regression => {
                if self.missing_tokens.contains(s) {
                    return Ok(None);
                }
                let v = number_text(s).ok_or_else(|| {
                    fail(
                        Reason::InvalidTarget,
                        format!("target {s:?} is not a number"),
                    )
                })?;
                let y = v as f32;
                if !y.is_finite() {
                    return Err(fail(
                        Reason::InvalidTarget,
                        format!("target {s} is not finite"),
                    ));
                }
                Ok(Some(Label::Value(y)))
            }
        }
    }

    fn class(&self, value: &str) -> Result<u32, DecodeError> {
        self.classes.get(value).copied().ok_or_else(|| {
            fail(
                Reason::UnknownLabel,
                format!("label {value:?} is not one of the configured classes"),
            )
        })
    }
}

fn parse_number(name: &str, s: &str) -> Result<f64, DecodeError> {
    number_text(s).ok_or_else(|| {
        fail(
            Reason::NonNumeric,
            format!("`{name}` = {s:?} is not a number"),
        )
    })
}

/// A number as a field holds it: Rust's float syntax (`12`, `-0.5`, `1e-3`, `NaN`), or as a
/// spreadsheet or a report writes it: a currency sign before it (`$`, `€`, `£`, `¥`, after
/// the sign: `-$5`), a percent sign after it (the number before it: `12.5%` is 12.5, as
/// the other rows of the column say it), commas between groups of three digits
/// (`1,234,567.89`). Anything else is not a number (`1,5`, `12 %%`, `$`).
pub fn number_text(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Ok(v) = t.parse::<f64>() {
        return Some(v);
    }
    let (negative, rest) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let rest = rest
        .strip_prefix(['$', '€', '£', '¥'])
        .unwrap_or(rest)
        .trim_start();
    let rest = rest.strip_suffix('%').unwrap_or(rest).trim_end();
    let (whole, fraction) = match rest.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (rest, None),
    };
    let digits = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or("");
    let grouped = whole.contains(',');
    let bare_fraction = first.is_empty() && !grouped && fraction.is_some_and(|f| !f.is_empty());
    if !(digits(first) || bare_fraction) || (grouped && first.len() > 3) {
        return None;
    }
    let mut plain = first.to_string();
    for g in groups {
        if g.len() != 3 || !digits(g) {
            return None;
        }
        plain.push_str(g);
    }
    if let Some(f) = fraction {
        if !f.is_empty() && !digits(f) {
            return None;
        }
        plain.push('.');
        plain.push_str(f);
    }
    // Something was taken off, or this is not a number at all (`t` did not parse).
    let v = plain.parse::<f64>().ok()?;
    Some(if negative { -v } else { v })
}

fn finite(name: &str, x: f64) -> Result<f32, DecodeError> {
    let y = x as f32;
    if y.is_finite() {
        Ok(y)
    } else {
        Err(fail(
            Reason::NonFinite,
            format!("`{name}` = {x} is not finite"),
        ))
    }
}

/// A CSV header's column names, split as records are (a quoted name may hold the delimiter),
/// each trimmed.
pub fn header_columns(line: &str, delimiter: u8) -> Result<Vec<String>, DecodeError> {
    Ok(split_csv(line, delimiter)?
        .into_iter()
        .map(|c| c.trim().to_string())
        .collect())
}

/// Splits one CSV line (RFC 4180 quoting: `"a,b"`, `""` for a quote inside quotes).
fn split_csv(line: &str, delimiter: u8) -> Result<Vec<std::borrow::Cow<'_, str>>, DecodeError> {
    use std::borrow::Cow;
    let bytes = line.as_bytes();
    if !bytes.contains(&b'"') {
        return Ok(line.split(delimiter as char).map(Cow::Borrowed).collect());
    }
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        if i < bytes.len() && bytes[i] == b'"' {
            let mut value = String::new();
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return Err(fail(Reason::InvalidCsv, "unterminated quoted field")),
                    Some(b'"') if bytes.get(i + 1) == Some(&b'"') => {
                        value.push('"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        let start = i;
                        while i < bytes.len() && bytes[i] != b'"' {
                            i += 1;
                        }
                        value.push_str(&line[start..i]);
                    }
                }
            }
            fields.push(Cow::Owned(value));
            match bytes.get(i) {
                None => break,
                Some(&c) if c == delimiter => i += 1,
                Some(_) => {
                    return Err(fail(Reason::InvalidCsv, "characters after a closing quote"))
                }
            }
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != delimiter {
                if bytes[i] == b'"' {
                    return Err(fail(Reason::InvalidCsv, "quote inside an unquoted field"));
                }
                i += 1;
            }
            fields.push(Cow::Borrowed(&line[start..i]));
            if i >= bytes.len() {
                break;
            }
            i += 1;
        }
    }
    Ok(fields)
}

/// Record encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object per record; fields by name. Numbers may also be given as strings.
    Json,
    /// One CSV line per record; fields by position (see `columns`).
    Csv,
}

/// How a record's bytes map to features, a label, a key and a timestamp.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaConfig {
    /// `json` or `csv`.
    pub format: Format,
    /// Ordered feature field names; the model's input width is their number.
    pub features: Vec<String>,
    /// Label field name. Empty: records carry no label. A record whose label field is absent
    /// or empty is an unlabeled record, not a malformed one.
    #[serde(with = "crate::units::opt_string")]
    pub label: Option<String>,
    /// What the label is: `classification` (one of `classes`) or `regression` (a number).
    pub task: crate::learn::Task,
    /// Class names in index order (`["DOWN", "UP"]`). Use `["0", "1", ...]` for numeric labels.
    /// Ignored with `task = "regression"`.
    pub classes: Vec<String>,
    /// Optional field that holds the record's key (kept for predictions). Empty: none.
    #[serde(with = "crate::units::opt_string")]
    pub key: Option<String>,
    /// Optional field that holds the record's event time in milliseconds. Empty: none.
    #[serde(with = "crate::units::opt_string")]
    pub timestamp: Option<String>,
    /// CSV column names in order. Empty: `features`, `categorical`, the `time` fields, then
    /// `label`. Ignored for JSON and when
    /// the file source reads a header.
    pub columns: Vec<String>,
    /// CSV field delimiter (one ASCII character).
    pub delimiter: String,
    /// Records larger than this many bytes are malformed (`too_large`).
    pub max_record_bytes: usize,
    /// Temporal augmentation: append the features of this many previous records (stream
    /// order) to each record's input. Meaningful for one ordered stream (one partition).
    pub lag_records: usize,
    /// Temporal augmentation: append the labels of this many previous records (one-hot
    /// classes, or the target value). `None`: by task, see [`crate::config::Config::lag_labels`].
    pub lag_labels: Option<usize>,
    /// String input fields (country, device, carrier). Each sets one of
    /// `categorical_buckets` one-hot inputs; a value never seen before is not an error. A
    /// number in such a field is read as its text. Disjoint from `features`.
    pub categorical: Vec<String>,
    /// One-hot inputs per categorical field.
    pub categorical_buckets: usize,
    /// Which input a categorical value sets: `hashing` (FNV-1a modulo `categorical_buckets`:
    /// two values share an input when their hashes collide) or `vocabulary` (an input of its
    /// own for each of the first `categorical_buckets` values of the field, in order of first
    /// sight, kept in the store; later new values share one by hash).
    pub categorical_encoding: CategoricalEncoding,
    /// What an absent, null or empty field, or one of `missing_tokens`, does.
    pub missing: MissingPolicy,
    /// Values that mean "missing" in a numeric or categorical field, compared after trimming.
    pub missing_tokens: Vec<String>,
    /// Fields holding a date or a date and time (`2013-01-01 09:00:00`), each read as the
    /// inputs of its `parts`: `day` (time of day), `week` (day of week), `year` (time of
    /// year); see `ingest::time` for the formats. A value that is no date or time is
    /// malformed (`invalid_time`); a missing one is imputed.
    pub time: Vec<TimeField>,
}

/// What a missing feature value does (`schema.missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingPolicy {
    /// A missing numeric value becomes the model normaliser's mean (its standardised input is
    /// 0); a missing categorical value sets none of its inputs. Counted per field.
    Impute,
    /// As `impute`, plus one 0/1 input per numeric feature that says the value was missing
    /// (changes the model's input width).
    Indicate,
    /// A missing value makes the record malformed (`missing_field`, to the dead-letter sink).
    Reject,
}

impl MissingPolicy {
    /// The TOML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MissingPolicy::Impute => "impute",
            MissingPolicy::Indicate => "indicate",
            MissingPolicy::Reject => "reject",
        }
    }
}

/// Default `schema.missing_tokens`.
pub const DEFAULT_MISSING_TOKENS: &[&str] =
    &["NA", "N/A", "NaN", "nan", "null", "NULL", "None", "?"];

impl Default for SchemaConfig {
    fn default() -> Self {
        Self {
            format: Format::Csv,
            features: [
                "day",
                "period",
                "nswprice",
                "nswdemand",
                "vicprice",
                "vicdemand",
                "transfer",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            label: Some("class".into()),
            task: crate::learn::Task::Classification,
            classes: vec!["DOWN".into(), "UP".into()],
            key: None,
            timestamp: None,
            columns: Vec::new(),
            delimiter: ",".into(),
            max_record_bytes: 65_536,
            lag_records: 0,
            lag_labels: None,
            categorical: Vec::new(),
            categorical_buckets: 32,
            categorical_encoding: CategoricalEncoding::Hashing,
            missing: MissingPolicy::Impute,
            missing_tokens: DEFAULT_MISSING_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            time: Vec::new(),
        }
    }
}

impl SchemaConfig {
    /// Refuses values of this section that cannot work, naming the key.
    pub fn check(&self) -> Result<(), ConfigError> {
        let s = self;
        let fields = s.check_fields()?;
        if !s.categorical.is_empty() && !(1..=4096).contains(&s.categorical_buckets) {
            return Err(ConfigError::key(
                "schema.categorical_buckets",
                format!("must be in 1..=4096, got {}", s.categorical_buckets),
            ));
        }
        if s.missing_tokens.iter().any(|t| t.trim() != t) {
            return Err(ConfigError::key(
                "schema.missing_tokens",
                "tokens are compared after trimming: remove leading and trailing spaces",
            ));
        }
        if let Some(label) = &s.label {
            if fields.contains(label.as_str()) {
                return Err(ConfigError::key(
                    "schema.label",
                    format!("`{label}` is also a feature"),
                ));
            }
            if s.task == crate::learn::Task::Classification && s.classes.len() < 2 {
                return Err(ConfigError::key(
                    "schema.classes",
                    "a labeled classification schema needs at least two classes (or set schema.task = \"regression\" for a numeric target)",
                ));
            }
        }
        let mut classes = std::collections::HashSet::new();
        for c in &s.classes {
            if !classes.insert(c.as_str()) {
                return Err(ConfigError::key(
                    "schema.classes",
                    format!("class `{c}` is listed twice"),
                ));
            }
        }
        if s.delimiter.len() != 1 || !s.delimiter.is_ascii() {
            return Err(ConfigError::key(
                "schema.delimiter",
                format!("must be one ASCII character, got {:?}", s.delimiter),
            ));
        }
        let time = s.time.iter().map(|t| &t.field);
        if s.format == Format::Csv && !s.columns.is_empty() {
            for f in s
                .features
                .iter()
                .chain(&s.categorical)
                .chain(&s.label)
                .chain(time)
            {
                if !s.columns.contains(f) {
                    return Err(ConfigError::key(
                        "schema.columns",
                        format!("field `{f}` is not among the columns"),
                    ));
                }
            }
        }
        if s.lag_records > 64 {
            return Err(ConfigError::key("schema.lag_records", "must be <= 64"));
        }
        let lag_labels = s.lag_labels.unwrap_or(0);
        if lag_labels > 64 {
            return Err(ConfigError::key("schema.lag_labels", "must be <= 64"));
        }
        if lag_labels > 0 && s.task == crate::learn::Task::Classification && s.classes.is_empty() {
            return Err(ConfigError::key(
                "schema.lag_labels",
                "needs schema.classes (past labels are one-hot encoded)",
            ));
        }
        if s.max_record_bytes == 0 {
            return Err(ConfigError::key("schema.max_record_bytes", "must be > 0"));
        }
        Ok(())
    }

    /// The feature and categorical names, each non-empty and listed once across both.
    fn check_fields(&self) -> Result<std::collections::HashSet<&str>, ConfigError> {
        let s = self;
        // A numeric target alone is a series: its past values are the inputs (the whole
        // configuration decides whether it gets any, `Config::validate`).
        let series = s.task == crate::learn::Task::Regression && s.lag_labels != Some(0);
        if s.features.is_empty() && s.categorical.is_empty() && s.time.is_empty() && !series {
            return Err(ConfigError::key(
                "schema.features",
                "at least one feature (or schema.categorical or schema.time field, or past targets of a regression: schema.lag_labels) is required",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &s.features {
            if f.trim().is_empty() {
                return Err(ConfigError::key(
                    "schema.features",
                    "feature names must not be empty",
                ));
            }
            if !seen.insert(f.as_str()) {
                return Err(ConfigError::key(
                    "schema.features",
                    format!("feature `{f}` is listed twice"),
                ));
            }
        }
        for f in &s.categorical {
            if f.trim().is_empty() {
                return Err(ConfigError::key(
                    "schema.categorical",
                    "field names must not be empty",
                ));
            }
            if !seen.insert(f.as_str()) {
                return Err(ConfigError::key(
                    "schema.categorical",
                    format!(
                        "`{f}` is listed twice or is also in schema.features (a field is numeric or categorical, not both)"
                    ),
                ));
            }
        }
        for t in &s.time {
            let f = &t.field;
            if f.trim().is_empty() {
                return Err(ConfigError::key(
                    "schema.time",
                    "field names must not be empty",
                ));
            }
            let other = [&s.label, &s.key, &s.timestamp];
            if !seen.insert(f.as_str()) || other.iter().any(|o| o.as_deref() == Some(f)) {
                return Err(ConfigError::key(
                    "schema.time",
                    format!("`{f}` is listed twice or is also a feature, categorical field, label, key or timestamp"),
                ));
            }
            let parts: std::collections::BTreeSet<_> = t.parts.iter().collect();
            if t.parts.is_empty() || parts.len() != t.parts.len() {
                return Err(ConfigError::key(
                    "schema.time",
                    format!("`{f}`: parts must name each of day, week and year at most once, and at least one"),
                ));
            }
        }
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(format: Format) -> SchemaConfig {
        SchemaConfig {
            format,
            features: vec!["a".into(), "b".into()],
            label: Some("y".into()),
            classes: vec!["no".into(), "yes".into()],
            timestamp: Some("t".into()),
            columns: vec!["t".into(), "a".into(), "b".into(), "y".into()],
            ..SchemaConfig::default()
        }
    }

    fn reason(d: &Decoder, p: &str) -> Reason {
        d.decode(p.as_bytes()).unwrap_err().reason
    }

    /// Today's strict schema: a missing value is a dead letter, `NaN` is not a token.
    fn strict(format: Format) -> SchemaConfig {
        SchemaConfig {
            missing: MissingPolicy::Reject,
            missing_tokens: Vec::new(),
            ..schema(format)
        }
    }

    #[test]
    fn label_records_carry_a_label_and_no_feature() {
        for base in [schema(Format::Json), strict(Format::Json)] {
            let s = SchemaConfig {
                key: Some("id".into()),
                categorical: vec!["c".into()],
                ..base
            };
            let d = Decoder::new(&s).unwrap().with_label_records();
            // No feature field at all: a label record, even when missing values are refused.
            let r = d.decode(br#"{"id":"k1","y":"yes"}"#).unwrap();
            assert!(r.features.is_empty());
            assert_eq!(r.label, Some(Label::Class(1)));
            assert_eq!(r.key.as_deref(), Some("k1"));
            let r = d.decode(br#"{"id":7,"a":null,"c":"","y":"no"}"#).unwrap();
            assert!(r.features.is_empty());
            assert_eq!(r.key.as_deref(), Some("7"));
            // A feature present: an ordinary record (refused by `reject` if another is missing).
            let r = d.decode(br#"{"id":"k2","a":1,"b":2,"c":"x"}"#).unwrap();
            assert_eq!(r.features.len(), d.width());
            assert_eq!(r.label, None);
            let partial = d.decode(br#"{"id":"k3","a":1,"y":"no"}"#);
            match s.missing {
                MissingPolicy::Reject => {
                    assert_eq!(partial.unwrap_err().reason, Reason::MissingField)
                }
                _ => assert_eq!(partial.unwrap().features.len(), d.width()),
            }
            // A bad label is still refused.
            assert_eq!(
                reason(&d, r#"{"id":"k","y":"maybe"}"#),
                Reason::UnknownLabel
            );
            // Without label records, the all-missing record is an ordinary one (or refused).
            let plain = Decoder::new(&s)
                .unwrap()
                .decode(br#"{"id":"k1","y":"yes"}"#);
            match s.missing {
                MissingPolicy::Reject => assert!(plain.is_err()),
                _ => assert_eq!(plain.unwrap().features.len(), d.width()),
            }
        }
        // A label topic's decoder reads the key and the label only (CSV: key,label).
        let s = SchemaConfig {
            key: Some("id".into()),
            ..strict(Format::Csv)
        };
        let d = Decoder::for_labels(&s, &[]).unwrap();
        let r = d.decode(b"f-9,yes").unwrap();
        assert!(r.features.is_empty());
        assert_eq!(
            (r.key.as_deref(), r.label),
            (Some("f-9"), Some(Label::Class(1)))
        );
        let r = d.decode(b" ,no").unwrap();
        assert_eq!(r.key, None);
        assert_eq!(reason(&d, "a,b,c"), Reason::WrongFieldCount);
    }

    #[test]
    fn a_regression_target_is_a_finite_number() {
        let reg = |format| SchemaConfig {
            task: Task::Regression,
            ..schema(format)
        };
        let d = Decoder::new(&reg(Format::Csv)).unwrap();
        let r = d.decode(b"5,0.5,1.5,-12.25").unwrap();
        assert_eq!(r.label, Some(Label::Value(-12.25)));
        // Empty and missing tokens: an unlabeled record (pm2.5's NA hours), not a dead letter.
        assert_eq!(d.decode(b"5,0.5,1.5,").unwrap().label, None);
        assert_eq!(d.decode(b"5,0.5,1.5,NA").unwrap().label, None);
        assert_eq!(reason(&d, "5,0.5,1.5,yes"), Reason::InvalidTarget);
        assert_eq!(reason(&d, "5,0.5,1.5,inf"), Reason::InvalidTarget);
        assert_eq!(reason(&d, "5,0.5,1.5,1e39"), Reason::InvalidTarget);
        let j = Decoder::new(&reg(Format::Json)).unwrap();
        let r = j.decode(br#"{"a":1,"b":2,"y":977}"#).unwrap();
        assert_eq!(r.label, Some(Label::Value(977.0)));
        let r = j.decode(br#"{"a":1,"b":2,"y":"3.5"}"#).unwrap();
        assert_eq!(r.label, Some(Label::Value(3.5)));
        assert_eq!(j.decode(br#"{"a":1,"b":2,"y":null}"#).unwrap().label, None);
        assert_eq!(
            reason(&j, r#"{"a":1,"b":2,"y":true}"#),
            Reason::InvalidTarget
        );
        assert_eq!(
            reason(&j, r#"{"a":1,"b":2,"y":[1]}"#),
            Reason::InvalidTarget
        );
        assert_eq!(Reason::parse("invalid_target"), Some(Reason::InvalidTarget));
    }

    #[test]
    fn csv_good_and_bad() {
        let d = Decoder::new(&strict(Format::Csv)).unwrap();
        let r = d.decode(b"5,0.5,1.5,yes\n").unwrap();
        assert_eq!(r.features, vec![0.5, 1.5]);
        assert_eq!(r.label, Some(Label::Class(1)));
        assert_eq!(r.timestamp_ms, Some(5));
        let r = d.decode(b"\"5\",\"0.5\",1.5,").unwrap();
        assert_eq!(r.label, None);
        assert_eq!(reason(&d, "5,0.5,\"1.5,yes"), Reason::InvalidCsv);
        assert_eq!(reason(&d, "5,0.5,1\"x,yes"), Reason::InvalidCsv);
        assert_eq!(reason(&d, "5,0.5,1.5"), Reason::WrongFieldCount);
        assert_eq!(reason(&d, "5,0.5,1.5,yes,9"), Reason::WrongFieldCount);
        assert_eq!(reason(&d, "5,,1.5,yes"), Reason::MissingField);
        assert_eq!(reason(&d, "5,abc,1.5,yes"), Reason::NonNumeric);
        assert_eq!(reason(&d, "5,NaN,1.5,yes"), Reason::NonFinite);
        assert_eq!(reason(&d, "5,inf,1.5,yes"), Reason::NonFinite);
        assert_eq!(reason(&d, "5,1e39,1.5,yes"), Reason::NonFinite);
        assert_eq!(reason(&d, "5,1,1.5,maybe"), Reason::UnknownLabel);
        assert_eq!(
            d.decode(&[b'1', b',', 0xff, b',', b'2'])
                .unwrap_err()
                .reason,
            Reason::InvalidCsv
        );
        let big = "1,".repeat(40_000);
        assert_eq!(reason(&d, &big), Reason::TooLarge);
    }

    #[test]
    fn json_good_and_bad() {
        let d = Decoder::new(&strict(Format::Json)).unwrap();
        let r = d.decode(br#"{"a":1,"b":"2.5","y":"no","t":7}"#).unwrap();
        assert_eq!(r.features, vec![1.0, 2.5]);
        assert_eq!(r.label, Some(Label::Class(0)));
        assert_eq!(r.timestamp_ms, Some(7));
        assert_eq!(d.decode(br#"{"a":1,"b":2}"#).unwrap().label, None);
        assert_eq!(reason(&d, r#"{"a":1,"b":2"#), Reason::InvalidJson);
        assert_eq!(reason(&d, "[1,2]"), Reason::InvalidJson);
        assert_eq!(reason(&d, r#"{"a":1}"#), Reason::MissingField);
        assert_eq!(reason(&d, r#"{"a":1,"b":null}"#), Reason::MissingField);
        assert_eq!(reason(&d, r#"{"a":1,"b":"x"}"#), Reason::NonNumeric);
        assert_eq!(reason(&d, r#"{"a":1,"b":[1]}"#), Reason::NonNumeric);
        assert_eq!(reason(&d, r#"{"a":1,"b":"NaN"}"#), Reason::NonFinite);
        assert_eq!(reason(&d, r#"{"a":1,"b":"-inf"}"#), Reason::NonFinite);
        assert_eq!(
            reason(&d, r#"{"a":1,"b":2,"y":"maybe"}"#),
            Reason::UnknownLabel
        );
    }

    #[test]
    fn numeric_labels() {
        let mut s = schema(Format::Json);
        s.classes = vec!["0".into(), "1".into(), "2".into()];
        let d = Decoder::new(&s).unwrap();
        assert_eq!(
            d.decode(br#"{"a":1,"b":2,"y":2}"#).unwrap().label,
            Some(Label::Class(2))
        );
        assert_eq!(
            d.decode(br#"{"a":1,"b":2,"y":"1"}"#).unwrap().label,
            Some(Label::Class(1))
        );
        assert_eq!(reason(&d, r#"{"a":1,"b":2,"y":3}"#), Reason::UnknownLabel);
    }

    #[test]
    fn missing_values_are_imputed_or_indicated() {
        let d = Decoder::new(&schema(Format::Csv)).unwrap();
        for line in [
            "5,,1.5,yes",
            "5, NA ,1.5,yes",
            "5,?,1.5,yes",
            "5,NaN,1.5,yes",
        ] {
            let r = d.decode(line.as_bytes()).unwrap();
            assert!(r.features[0].is_nan(), "{line}");
            assert_eq!(r.features[1], 1.5);
            assert_eq!(d.missing_fields(&r).collect::<Vec<_>>(), vec![0], "{line}");
        }
        // Not a token: still a malformed value.
        assert_eq!(reason(&d, "5,n/a,1.5,yes"), Reason::NonNumeric);
        assert_eq!(reason(&d, "5,inf,1.5,yes"), Reason::NonFinite);
        let j = Decoder::new(&schema(Format::Json)).unwrap();
        for p in [
            r#"{"b":2}"#,
            r#"{"a":null,"b":2}"#,
            r#"{"a":"","b":2}"#,
            r#"{"a":"NA","b":2}"#,
        ] {
            let r = j.decode(p.as_bytes()).unwrap();
            assert!(r.features[0].is_nan(), "{p}");
            assert_eq!(r.features[1], 2.0);
        }
        let ind = Decoder::new(&SchemaConfig {
            missing: MissingPolicy::Indicate,
            ..schema(Format::Csv)
        })
        .unwrap();
        assert_eq!(ind.width(), 4);
        let r = ind.decode(b"5,0.5,,no").unwrap();
        assert_eq!(r.features[0], 0.5);
        assert!(r.features[1].is_nan());
        assert_eq!(r.features[2..], [0.0, 1.0]);
        assert_eq!(
            decoded_names(&SchemaConfig {
                missing: MissingPolicy::Indicate,
                ..schema(Format::Csv)
            }),
            ["a", "b", "a:missing", "b:missing"]
        );
        // The strict policy keeps today's dead letters.
        let strict = Decoder::new(&SchemaConfig {
            missing: MissingPolicy::Reject,
            ..schema(Format::Csv)
        })
        .unwrap();
        assert_eq!(reason(&strict, "5,NA,1.5,yes"), Reason::MissingField);
    }

    #[test]
    fn categorical_fields_are_hashed_one_hot() {
        let s = SchemaConfig {
            categorical: vec!["city".into()],
            categorical_buckets: 8,
            columns: vec![
                "t".into(),
                "a".into(),
                "city".into(),
                "b".into(),
                "y".into(),
            ],
            ..schema(Format::Csv)
        };
        assert_eq!(decoded_width(&s), 10);
        assert_eq!(decoded_names(&s)[2..4], ["city#0", "city#1"]);
        let d = Decoder::new(&s).unwrap();
        let r = d.decode(b"1,0.5,Paris,2,yes").unwrap();
        assert_eq!(r.features.len(), 10);
        assert_eq!(r.features[..2], [0.5, 2.0]);
        let hot: Vec<usize> = (2..10).filter(|&i| r.features[i] == 1.0).collect();
        assert_eq!(hot, vec![2 + category_bucket("Paris", 8)]);
        assert_eq!(r.features[2..].iter().sum::<f32>(), 1.0);
        // A value never seen before is not an error; a missing one sets nothing and is counted.
        assert!(d.decode(b"1,0.5,Ouagadougou,2,yes").is_ok());
        let r = d.decode(b"1,0.5,,2,yes").unwrap();
        assert_eq!(r.features[2..].iter().sum::<f32>(), 0.0);
        assert_eq!(d.missing_fields(&r).collect::<Vec<_>>(), vec![2]);
        assert_eq!(d.field_names().collect::<Vec<_>>(), ["a", "b", "city"]);
        // JSON: numbers and booleans are read as their text.
        let j = Decoder::new(&SchemaConfig {
            format: Format::Json,
            ..s.clone()
        })
        .unwrap();
        let r = j.decode(br#"{"a":1,"b":2,"city":"Paris"}"#).unwrap();
        assert_eq!(r.features[2 + category_bucket("Paris", 8)], 1.0);
        let r = j.decode(br#"{"a":1,"b":2,"city":75}"#).unwrap();
        assert_eq!(r.features[2 + category_bucket("75", 8)], 1.0);
        assert_eq!(
            reason(&j, r#"{"a":1,"b":2,"city":["Paris"]}"#),
            Reason::InvalidCategory
        );
        // An all-missing record is decoded (and scored), not refused.
        let r = j.decode(br#"{"y":"no"}"#).unwrap();
        assert!(r.features[0].is_nan() && r.features[1].is_nan());
        assert_eq!(r.features[2..].iter().sum::<f32>(), 0.0);
        // With a vocabulary, a value sets its own input; one it does not know yet sets none
        // (the ingest path assigns it one after decoding).
        let vocabulary = Arc::new(Vocabulary::new(1, 8));
        assert_eq!(vocabulary.input(0, category_hash("Paris"), true), Some(0));
        assert_eq!(vocabulary.input(0, category_hash("Lyon"), true), Some(1));
        let v = Decoder::new(&s).unwrap().with_vocabulary(vocabulary);
        let r = v.decode(b"1,0.5,Lyon,2,yes").unwrap();
        assert_eq!(r.features[2..], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(v.categorical_input(0, 1), 3);
        let r = v.decode(b"1,0.5,Nice,2,yes").unwrap();
        assert_eq!(r.features[2..].iter().sum::<f32>(), 0.0);
        // FNV-1a is fixed: these buckets must never change, or stored models break.
        // (Values from an independent FNV-1a implementation.)
        assert_eq!(category_bucket("", 1 << 20), 140_069);
        assert_eq!(category_bucket("a", 1_000_003), 783_675);
        assert_eq!(category_bucket("Paris", 1_000_003), 308_894);
    }

    #[test]
    fn time_fields_decode_to_their_inputs() {
        use crate::ingest::time::{TimeField, TimePart};
        for format in [Format::Csv, Format::Json] {
            let s = SchemaConfig {
                time: vec![
                    TimeField::new("when"),
                    TimeField {
                        field: "day".into(),
                        parts: vec![TimePart::Week],
                    },
                ],
                columns: vec![
                    "t".into(),
                    "a".into(),
                    "when".into(),
                    "b".into(),
                    "day".into(),
                    "y".into(),
                ],
                ..schema(format)
            };
            s.check().expect("valid");
            assert_eq!(decoded_width(&s), 2 + 11 + 7);
            assert_eq!(decoded_names(&s)[2], "when:day_sin");
            assert_eq!(decoded_names(&s)[19], "day:sun");
            let d = Decoder::new(&s).expect("decoder");
            let line = |when: &str, day: &str| match format {
                Format::Csv => format!("1,0.5,{when},2,{day},yes"),
                Format::Json => {
                    format!(r#"{{"t":1,"a":0.5,"when":{when},"b":2,"day":{day},"y":"yes"}}"#)
                }
            };
            let quote = |v: &str| match format {
                Format::Csv => v.to_string(),
                Format::Json => format!("{v:?}"),
            };
            // Tuesday 2013-01-01 06:00 (a quarter of the day: sin 1, cos 0); Sunday.
            let r = d
                .decode(line(&quote("2013-01-01 06:00:00"), &quote("2013-01-06")).as_bytes())
                .expect("decoded");
            let f = &r.features;
            assert_eq!(&f[..2], &[0.5, 2.0]);
            assert!((f[2] - 1.0).abs() < 1e-6 && f[3].abs() < 1e-6, "{f:?}");
            assert_eq!(&f[4..11], &[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
            assert!(f[11].abs() < 0.01 && (f[12] - 1.0).abs() < 0.01, "{f:?}");
            assert_eq!(&f[13..], &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
            // Missing (empty, a token, JSON null): imputed, not refused.
            let missing = match format {
                Format::Csv => line("", "NA"),
                Format::Json => line("null", "\"NA\""),
            };
            let r = d.decode(missing.as_bytes()).expect("imputed");
            assert!(r.features[2].is_nan() && r.features[12].is_nan());
            assert!(r.features[4..11]
                .iter()
                .chain(&r.features[13..])
                .all(|&v| v == 0.0));
            // Not a date: a dead letter that says which field.
            let e = d
                .decode(line(&quote("2013-02-30"), &quote("2013-01-06")).as_bytes())
                .expect_err("refused");
            assert_eq!(e.reason, Reason::InvalidTime);
            assert!(e.detail.contains("`when`"), "{}", e.detail);
            // Refused when missing under `reject`.
            let strict = Decoder::new(&SchemaConfig {
                missing: MissingPolicy::Reject,
                ..s.clone()
            })
            .expect("decoder");
            let e = strict.decode(missing.as_bytes()).expect_err("refused");
            assert_eq!(e.reason, Reason::MissingField);
        }
        // A JSON number is a Unix time: 2013-01-01 06:00 UTC in seconds.
        let s = SchemaConfig {
            format: Format::Json,
            time: vec![TimeField::new("when")],
            ..schema(Format::Json)
        };
        let d = Decoder::new(&s).expect("decoder");
        let r = d
            .decode(br#"{"a":1,"b":2,"when":1357020000,"y":"no"}"#)
            .expect("decoded");
        assert!((r.features[2] - 1.0).abs() < 1e-6, "{:?}", r.features);
        let e = d
            .decode(br#"{"a":1,"b":2,"when":[1],"y":"no"}"#)
            .expect_err("refused");
        assert_eq!(e.reason, Reason::InvalidTime);
        // In CSV a number's text is read the same way; eight digits that make a date are one.
        let s = SchemaConfig {
            time: vec![TimeField::new("when")],
            columns: vec!["a".into(), "b".into(), "when".into(), "y".into()],
            ..schema(Format::Csv)
        };
        let d = Decoder::new(&s).expect("decoder");
        let r = d.decode(b"1,2,1357020000,no").expect("decoded");
        assert!((r.features[2] - 1.0).abs() < 1e-6, "{:?}", r.features);
        let r = d.decode(b"1,2,20130106,no").expect("decoded");
        assert!(r.features[2].is_nan(), "a date alone: no time of day");
        assert_eq!(
            r.features[10], 1.0,
            "2013-01-06 was a Sunday: {:?}",
            r.features
        );
        // A time field that is also a feature, or not among the columns, is refused.
        let twice = SchemaConfig {
            time: vec![TimeField::new("a")],
            ..schema(Format::Csv)
        };
        let e = twice.check().expect_err("refused");
        assert!(e.to_string().contains("schema.time"), "{e}");
        let absent = SchemaConfig {
            time: vec![TimeField::new("zz")],
            ..schema(Format::Csv)
        };
        assert!(absent.check().is_err());
        let no_parts = SchemaConfig {
            time: vec![TimeField {
                field: "t2".into(),
                parts: Vec::new(),
            }],
            columns: Vec::new(),
            ..schema(Format::Json)
        };
        assert!(no_parts.check().is_err());
    }

    #[test]
    fn reasons_round_trip() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn a_header_is_split_as_records_are() {
        assert_eq!(
            header_columns(" x ,\"city, state\",\"say \"\"hi\"\"\",y", b',').unwrap(),
            ["x", "city, state", "say \"hi\"", "y"]
        );
        assert_eq!(header_columns("a;b", b';').unwrap(), ["a", "b"]);
        assert!(header_columns("a,\"b", b',').is_err());
    }

    #[test]
    fn numbers_are_read_as_spreadsheets_write_them() {
        for (text, want) in [
            ("12", 12.0),
            (" -0.5 ", -0.5),
            ("1e-3", 1e-3),
            ("$1,234.50", 1234.5),
            ("-$5", -5.0),
            ("€ 7", 7.0),
            ("12.5%", 12.5),
            ("1,234,567", 1_234_567.0),
            (".5%", 0.5),
            ("+3%", 3.0),
        ] {
            assert_eq!(number_text(text), Some(want), "{text:?}");
        }
        for text in [
            "1,5", "12,34.5", "1234,567", "$", "%", "12 %%", "abc", "1.2.3", "$-",
        ] {
            assert_eq!(number_text(text), None, "{text:?}");
        }
        // The decoder and `relearn eval`'s inference read them alike: a feature and a target.
        let d = Decoder::new(&SchemaConfig {
            features: vec!["a".into(), "b".into()],
            label: Some("y".into()),
            task: Task::Regression,
            classes: Vec::new(),
            timestamp: None,
            columns: vec!["a".into(), "b".into(), "y".into()],
            ..SchemaConfig::default()
        })
        .expect("decoder");
        let r = d
            .decode(b"\"$1,200\",13.5%,\"$2,000.25\"")
            .expect("decoded");
        assert_eq!(r.features, [1200.0, 13.5]);
        assert_eq!(r.label, Some(Label::Value(2000.25)));
        assert_eq!(reason(&d, "\"1,5\",2,3"), Reason::NonNumeric);
    }
}
