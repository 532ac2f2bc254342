//! `relearn eval` on JSON lines: the file read as CSV text for the schema inference, which
//! reads columns. The run itself decodes the JSON lines with the daemon's JSON decoder.
//!
//! The header is the union of the keys of the first [`HEADER_LINES`] objects, in the order
//! they first appear; each line becomes a CSV row: a number as its text, a string as itself,
//! `true`/`false`, an empty field for `null` or an absent key, a nested array or object as
//! its JSON text. A key first seen later is not a column; a line that is no JSON object is an
//! empty row (the run sends it to the dead letters).

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::Path;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::ingest::rows::{RowText, Rows};

/// A JSON object's fields in the order written (serde_json's map sorts its keys).
#[derive(Debug, Default)]
struct Ordered(Vec<(String, Value)>);

impl Ordered {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The object on `line`, None when it is no JSON object.
    fn parse(line: &str) -> Option<Ordered> {
        serde_json::from_str(line).ok()
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_entry::<String, Value>()? {
                    fields.push(field);
                }
                Ok(Ordered(fields))
            }
        }
        d.deserialize_map(Fields)
    }
}

/// Lines whose keys make the header.
pub const HEADER_LINES: usize = 1_000;

/// Whether `path` names JSON lines (`.jsonl`, `.ndjson`, `.json`, each optionally `.gz`), or
/// its text starts with `{`.
pub fn is_json_lines(path: &Path, head: &[u8]) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".jsonl", ".ndjson", ".json"]
        .iter()
        .any(|e| name.ends_with(e))
        || head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// A JSON-lines reader's rows as CSV lines (read through [`RowText`], from
/// [`JsonCsv::text`]).
pub struct JsonCsv<R> {
    inner: R,
    columns: Vec<String>,
    /// Lines read for the header, not yet written as rows.
    pending: VecDeque<Option<Ordered>>,
    line: String,
}

impl<R: BufRead> JsonCsv<R> {
    /// Reads up to [`HEADER_LINES`] lines for the header: the CSV text, starting with it.
    pub fn text(mut inner: R) -> std::io::Result<RowText<JsonCsv<R>>> {
        let mut pending = VecDeque::new();
        let mut columns: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut line = String::new();
        while pending.len() < HEADER_LINES {
            line.clear();
            if inner.read_line(&mut line)? == 0 {
                break;
            }
            if line.trim().is_empty() {
                continue;
            }
            let object = Ordered::parse(&line);
            for (key, _) in object.iter().flat_map(|o| &o.0) {
                if seen.insert(key.clone()) {
                    columns.push(key.clone());
                }
            }
            pending.push_back(object);
        }
        let view = JsonCsv {
            inner,
            columns,
            pending,
            line,
        };
        let header = view.row(view.columns.iter().map(|c| c.as_str()))?;
        Ok(RowText::new(view, header))
    }

    /// One CSV line of `fields`.
    fn row<'a>(&self, fields: impl Iterator<Item = &'a str>) -> std::io::Result<Vec<u8>> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(fields).map_err(std::io::Error::other)?;
        w.into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// The CSV line of one JSON line (None: not an object).
    fn object_row(&self, object: Option<&Ordered>) -> std::io::Result<Vec<u8>> {
        let texts: Vec<String> = self
            .columns
            .iter()
            .map(|c| match object.and_then(|o| o.get(c)) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(nested) => nested.to_string(),
            })
            .collect();
        if texts.len() == 1 && texts[0].is_empty() {
            // A single empty field would be a blank line, which a CSV reader skips.
            return Ok(b"\"\"\n".to_vec());
        }
        self.row(texts.iter().map(String::as_str))
    }
}

impl<R: BufRead> Rows for JsonCsv<R> {
    fn next_row(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        if let Some(object) = self.pending.pop_front() {
            *out = self.object_row(object.as_ref())?;
            return Ok(true);
        }
        loop {
            self.line.clear();
            if self.inner.read_line(&mut self.line)? == 0 {
                return Ok(false);
            }
            if self.line.trim().is_empty() {
                continue;
            }
            let object = Ordered::parse(&self.line);
            *out = self.object_row(object.as_ref())?;
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_read_as_csv_columns() {
        let text = "{\"x\": 1.5, \"city\": \"Oslo, NO\", \"y\": \"yes\"}\n\n\
            {\"x\": null, \"y\": \"no\", \"flag\": true}\nnot json\n\
            {\"x\": 2, \"city\": \"Lima\", \"y\": \"no\", \"tags\": [1, 2], \"late\": 1}\n";
        let mut out = String::new();
        std::io::Read::read_to_string(&mut JsonCsv::text(text.as_bytes()).unwrap(), &mut out)
            .unwrap();
        assert_eq!(
            out,
            "x,city,y,flag,tags,late\n1.5,\"Oslo, NO\",yes,,,\n,,no,true,,\n,,,,,\n\
             2,Lima,no,,\"[1,2]\",1\n"
        );
        assert!(is_json_lines(Path::new("s.JSONL.gz"), b""));
        assert!(is_json_lines(Path::new("s.ndjson"), b""));
        assert!(is_json_lines(Path::new("s.txt"), b"  \n{\"a\": 1}"));
        assert!(!is_json_lines(Path::new("s.csv"), b"a,b\n1,2"));
    }
}
