//! The file source: CSV or JSON lines from a file, a gzip file, standard input, or the Elec2
//! stream embedded in the binary (the default when no broker is configured); an ARFF file is
//! read as the CSV it holds (`arff`).
//!
//! A record's offset is the byte position of its line in the (decompressed) input, under the
//! source name `file:<path>`, partition 0. On restart the source skips to the stored offset,
//! so a file is processed exactly once across crashes, like a Kafka partition.

use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::decode::{Format, SchemaConfig};
use super::{Decoder, IngestConfig, IngestError, Pipeline, SourcePos};

/// The UTF-8 byte order mark some tools write at the start of a text file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The Elec2 stream (elecNormNew, 45,312 rows in time order), gzip-compressed.
pub const EMBEDDED_ELEC2: &[u8] = include_bytes!("../../data/elec2.csv.gz");

/// How a file-source run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEnd {
    /// The whole input was processed.
    EndOfInput,
    /// Shutdown was requested first.
    Cancelled,
}

/// Reads lines from the configured input through the pipeline.
pub struct FileSource {
    name: String,
    reader: Box<dyn BufRead + Send>,
    header: bool,
    format: Format,
    /// The schema, for the decoder built from a CSV header.
    schema: SchemaConfig,
    /// `[ingest]`: the batch bounds.
    ingest: IngestConfig,
    /// Whether a batch is also cut by `ingest.batch_max_wait_ms`: only for an input that can
    /// wait for its writer (standard input, a FIFO). A regular file or the embedded stream is
    /// cut every `ingest.batch_max_records` records only, so a replay cuts its batches at
    /// the same records whatever the machine's speed and gives the same result.
    timed: bool,
}

impl FileSource {
    /// Opens the configured input (`file.path`); `schema` decodes a CSV header, `ingest`
    /// bounds the batches.
    pub fn open(
        file: &FileSourceConfig,
        schema: &SchemaConfig,
        ingest: &IngestConfig,
    ) -> Result<FileSource, IngestError> {
        let path = file.path.as_deref();
        let (name, raw, timed): (String, Box<dyn Read + Send>, bool) = match path {
            None => (
                "file:embedded-elec2".into(),
                Box::new(EMBEDDED_ELEC2),
                false,
            ),
            Some(p) if p.as_os_str() == "-" => ("file:-".into(), Box::new(std::io::stdin()), true),
            Some(p) => {
                let f = std::fs::File::open(p).map_err(|source| IngestError::Input {
                    path: p.display().to_string(),
                    source,
                })?;
                let regular = f.metadata().map(|m| m.is_file()).unwrap_or(false);
                (format!("file:{}", p.display()), Box::new(f), !regular)
            }
        };
        let gz = path.is_none_or(|p| p.extension().is_some_and(|e| e == "gz"));
        let mut reader: Box<dyn BufRead + Send> = if gz {
            Box::new(BufReader::with_capacity(
                1 << 16,
                flate2::read::MultiGzDecoder::new(raw),
            ))
        } else {
            Box::new(BufReader::with_capacity(1 << 16, raw))
        };
        // An ARFF file (by its name, or standard input by its first line) is read as its CSV.
        let input_err = |source| IngestError::Input {
            path: name.clone(),
            source,
        };
        let arff = match path {
            Some(p) if p.as_os_str() == "-" => {
                super::arff::looks_like_arff(reader.fill_buf().map_err(input_err)?)
            }
            Some(p) => super::arff::is_arff_path(p),
            None => false,
        };
        if arff {
            reader = Box::new(super::arff::ArffCsv::text(reader).map_err(input_err)?);
        }
        Ok(FileSource {
            name,
            reader,
            header: file.header,
            format: schema.format,
            schema: schema.clone(),
            ingest: ingest.clone(),
            timed,
        })
    }

    /// The source name under which offsets are stored.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Processes lines until the end of input or `shutdown`.
    pub fn run(
        mut self,
        pipeline: &Arc<Mutex<Pipeline>>,
        shutdown: &CancellationToken,
    ) -> Result<FileEnd, IngestError> {
        let lock = || pipeline.lock().unwrap_or_else(|p| p.into_inner());
        let max_records = self.ingest.batch_max_records;
        let max_wait = self.ingest.batch_max_wait;
        let mut line = Vec::with_capacity(256);
        let mut pos: i64 = 0;
        let input_err = |source: std::io::Error, name: &str| IngestError::Input {
            path: name.to_string(),
            source,
        };

        // A UTF-8 byte order mark (spreadsheet exports) is not part of the first column's name
        // or value.
        let bom = self
            .reader
            .fill_buf()
            .map_err(|e| input_err(e, &self.name))?
            .starts_with(UTF8_BOM);
        if bom {
            self.reader.consume(UTF8_BOM.len());
            pos += UTF8_BOM.len() as i64;
        }
        if self.header && self.format == Format::Csv {
            let n = self
                .reader
                .read_until(b'\n', &mut line)
                .map_err(|e| input_err(e, &self.name))?;
            pos += n as i64;
            let text = String::from_utf8_lossy(&line);
            let delimiter = self.schema.delimiter.bytes().next().unwrap_or(b',');
            let header_err = |source| IngestError::Schema {
                what: format!(" (header of {})", self.name),
                source,
            };
            let columns =
                super::decode::header_columns(text.trim_end_matches(['\n', '\r']), delimiter)
                    .map_err(header_err)?;
            let decoder = Decoder::with_columns(&self.schema, &columns).map_err(header_err)?;
            lock().set_decoder(decoder);
        }

        let resume = lock().next_offset(&self.name, 0).unwrap_or(0);
        if resume > pos {
            let mut skip = (&mut self.reader).take((resume - pos) as u64);
            let skipped = std::io::copy(&mut skip, &mut std::io::sink())
                .map_err(|e| input_err(e, &self.name))?;
            pos += skipped as i64;
            tracing::info!(source = %self.name, offset = pos, "resuming after the stored offset");
        }

        let mut opened: Option<Instant> = None;
        let end = loop {
            if shutdown.is_cancelled() {
                break FileEnd::Cancelled;
            }
            line.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut line)
                .map_err(|e| input_err(e, &self.name))?;
            if n == 0 {
                break FileEnd::EndOfInput;
            }
            let offset = pos;
            pos += n as i64;
            let body = trim_line(&line);
            if body.is_empty() {
                // Blank lines carry no record; they are skipped, not dead-lettered.
                continue;
            }
            let mut p = lock();
            let open = p.process(
                SourcePos {
                    topic: &self.name,
                    partition: 0,
                    offset,
                    next: pos,
                },
                None,
                body,
            )?;
            let t = *opened.get_or_insert_with(Instant::now);
            let check_clock = self.timed && open % 256 == 0;
            if open as usize >= max_records || (check_clock && t.elapsed() >= max_wait) {
                p.flush_behind()?;
                opened = None;
            }
        };
        lock().flush()?;
        Ok(end)
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

/// The file source: CSV or JSON lines from a file (optionally gzip-compressed) or stdin.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSourceConfig {
    /// Path of the input. Empty: the Elec2 stream embedded in the binary. `-`: standard input.
    /// A name ending in `.gz` is decompressed; `.arff` or `.arff.gz` (or standard input whose
    /// first line is `@relation` or a `%` comment) is read as ARFF (`super::arff`).
    #[serde(with = "crate::units::opt_path")]
    pub path: Option<std::path::PathBuf>,
    /// Whether the first line is a CSV header; when true, CSV columns are taken from it.
    pub header: bool,
    /// Where malformed records go (JSON lines with reason, source, offset and the payload in
    /// base64). Empty: `dead-letter.jsonl` inside the store directory.
    #[serde(with = "crate::units::opt_path")]
    pub dead_letter_path: Option<std::path::PathBuf>,
    /// Exit after the end of the input is reached (true), or keep serving (false).
    pub exit_at_end: bool,
    /// Where the serving model's prediction for every scored record goes (JSON lines: key,
    /// source position, model version, class and probabilities or value, time), written
    /// before the batch's offsets. Empty: nowhere. With Kafka, see `kafka.predictions_topic`.
    #[serde(with = "crate::units::opt_path")]
    pub predictions_path: Option<std::path::PathBuf>,
}

impl Default for FileSourceConfig {
    fn default() -> Self {
        Self {
            path: None,
            header: true,
            dead_letter_path: None,
            exit_at_end: true,
            predictions_path: None,
        }
    }
}
