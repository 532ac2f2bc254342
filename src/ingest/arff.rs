//! ARFF input (Weka's and MOA's format, in which many stream-learning datasets are published:
//! `elecNormNew.arff`, `covtypeNorm.arff`, `airlines.arff`) read as the CSV it holds.
//!
//! [`ArffCsv`] wraps a reader of an ARFF file and yields CSV text: one header line of the
//! `@attribute` names, then each `@data` row with its quotes turned into CSV's and `?` (a
//! missing value) into an empty field. Everything downstream (the file source, the decoder,
//! `relearn eval`'s schema inference) reads it as any CSV file with a header; a record's
//! offset is its byte position in that CSV text, the same on every replay. Comments (`%`) and
//! blank lines are dropped. Sparse rows (`{0 1, 3 2}`) and relational attributes are refused
//! with the line number, as an input error.

use std::io::{BufRead, Error, ErrorKind};
use std::path::Path;

use super::rows::{RowText, Rows};

/// Whether `path` names an ARFF file: `.arff`, or `.arff.gz`.
pub fn is_arff_path(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".arff") || name.ends_with(".arff.gz")
}

/// Whether the text starting with `head` is ARFF: its first non-blank line is a comment (`%`)
/// or `@relation`. For an input without a name (standard input).
pub fn looks_like_arff(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| {
            l.starts_with('%')
                || l.get(..9)
                    .is_some_and(|k| k.eq_ignore_ascii_case("@relation"))
        })
}

/// An ARFF reader's data rows as CSV lines (read through [`RowText`], from [`ArffCsv::text`]).
pub struct ArffCsv<R> {
    inner: R,
    /// Each attribute's name and, for a nominal one (`{a,b,c}`), its declared values.
    attributes: Vec<(String, Option<Vec<String>>)>,
    /// The input line being read, and its number (1-based) for errors.
    line: Vec<u8>,
    line_no: usize,
}

fn invalid(line: usize, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidData, format!("ARFF line {line}: {what}"))
}

impl<R: BufRead> ArffCsv<R> {
    /// Reads the header (up to `@data`): the CSV text, starting with the attribute names.
    pub fn text(inner: R) -> std::io::Result<RowText<ArffCsv<R>>> {
        let mut arff = ArffCsv {
            inner,
            attributes: Vec::new(),
            line: Vec::new(),
            line_no: 0,
        };
        loop {
            if !arff.next_line()? {
                return Err(invalid(arff.line_no, "no @data section"));
            }
            let text = String::from_utf8_lossy(&arff.line)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_string();
            if text.is_empty() || text.starts_with('%') {
                continue;
            }
            let (keyword, rest) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
            match keyword.to_ascii_lowercase().as_str() {
                "@relation" => {}
                "@attribute" => {
                    let (name, kind) = attribute(rest.trim())
                        .ok_or_else(|| invalid(arff.line_no, format!("bad @attribute `{rest}`")))?;
                    if kind.to_ascii_lowercase().starts_with("relational") {
                        return Err(invalid(
                            arff.line_no,
                            format!("relational attribute `{name}` is not supported"),
                        ));
                    }
                    let nominal = kind
                        .strip_prefix('{')
                        .and_then(|k| k.trim_end().strip_suffix('}'))
                        .map(|inner| {
                            values(inner)
                                .map(|v| v.into_iter().flatten().collect::<Vec<_>>())
                                .map_err(|e| invalid(arff.line_no, e))
                        })
                        .transpose()?;
                    arff.attributes.push((name, nominal));
                }
                "@data" => break,
                _ => {
                    return Err(invalid(
                        arff.line_no,
                        format!("expected @relation, @attribute or @data, got `{keyword}`"),
                    ))
                }
            }
        }
        if arff.attributes.is_empty() {
            return Err(invalid(arff.line_no, "no @attribute before @data"));
        }
        let fields: Vec<String> = arff.attributes.iter().map(|(n, _)| csv_field(n)).collect();
        let mut header = fields.join(",").into_bytes();
        header.push(b'\n');
        Ok(RowText::new(arff, header))
    }

    /// The declared values of the nominal attribute `name` (`@attribute class {UP,DOWN}`);
    /// None when it is not nominal or not an attribute.
    pub fn nominal(&self, name: &str) -> Option<&[String]> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, values)| values.as_deref())
    }

    /// Reads the next input line into `line`; false at the end.
    fn next_line(&mut self) -> std::io::Result<bool> {
        self.line.clear();
        let n = self.inner.read_until(b'\n', &mut self.line)?;
        self.line_no += 1;
        Ok(n > 0)
    }
}

impl<R: BufRead> Rows for ArffCsv<R> {
    /// The next data row's CSV line.
    fn next_row(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        loop {
            if !self.next_line()? {
                return Ok(false);
            }
            let text = String::from_utf8_lossy(&self.line);
            let row = text.trim();
            if row.is_empty() || row.starts_with('%') {
                continue;
            }
            if row.starts_with('{') {
                return Err(invalid(
                    self.line_no,
                    "sparse rows ({index value, ...}) are not supported; write the file dense",
                ));
            }
            let values = values(row).map_err(|e| invalid(self.line_no, e))?;
            if values.len() != self.attributes.len() {
                return Err(invalid(
                    self.line_no,
                    format!(
                        "{} values, {} attributes",
                        values.len(),
                        self.attributes.len()
                    ),
                ));
            }
            let fields: Vec<String> = values
                .iter()
                .map(|v| v.as_deref().map(csv_field).unwrap_or_default())
                .collect();
            *out = fields.join(",").into_bytes();
            out.push(b'\n');
            return Ok(true);
        }
    }
}

/// An `@attribute` line's name (unquoted) and type text.
fn attribute(rest: &str) -> Option<(String, String)> {
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"');
    let (name, kind) = match quote {
        Some(q) => {
            let end = rest[1..].find(q)? + 1;
            (&rest[1..end], &rest[end + 1..])
        }
        None => rest.split_once(char::is_whitespace)?,
    };
    let kind = kind.trim();
    (!name.is_empty() && !kind.is_empty()).then(|| (name.to_string(), kind.to_string()))
}

/// A data row's values: comma-separated, each optionally in `'` or `"` quotes (with `\`
/// escapes); an unquoted `?` is missing (None).
fn values(row: &str) -> Result<Vec<Option<String>>, String> {
    let mut out = Vec::new();
    let mut chars = row.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let value = match chars.peek().copied() {
            Some(q @ ('\'' | '"')) => {
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("unclosed quote {q}")),
                        Some('\\') => v.extend(chars.next()),
                        Some(c) if c == q => break,
                        Some(c) => v.push(c),
                    }
                }
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                Some(v)
            }
            _ => {
                let mut v = String::new();
                while let Some(c) = chars.next_if(|c| *c != ',') {
                    v.push(c);
                }
                let v = v.trim_end();
                (v != "?").then(|| v.to_string())
            }
        };
        out.push(value);
        match chars.next() {
            None => return Ok(out),
            Some(',') => {}
            Some(c) => return Err(format!("`{c}` after a quoted value")),
        }
    }
}

/// A value as a CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(arff: &str) -> std::io::Result<String> {
        use std::io::Read;
        let mut out = String::new();
        ArffCsv::text(arff.as_bytes())?.read_to_string(&mut out)?;
        Ok(out)
    }

    #[test]
    fn an_arff_file_reads_as_its_csv() {
        let text = "% Elec2, normalised\n@RELATION electricity\n\n\
            @attribute date numeric\n@attribute 'day of week' {1,2,3}\n\
            @attribute \"price, NSW\" REAL\n@attribute class {UP,DOWN}\n@data\n\
            0,2,0.056443,UP\n% a comment\n\n0, 3 ,?,'DOWN'\n1,1,\"0.5\",'it\\'s, \"x\"'\n";
        assert_eq!(
            csv(text).unwrap(),
            "date,day of week,\"price, NSW\",class\n0,2,0.056443,UP\n0,3,,DOWN\n\
             1,1,0.5,\"it's, \"\"x\"\"\"\n"
        );
        let text_rows = ArffCsv::text(text.as_bytes()).unwrap();
        let arff = text_rows.rows();
        assert_eq!(
            arff.nominal("class"),
            Some(&["UP".to_string(), "DOWN".to_string()][..])
        );
        assert_eq!(arff.nominal("day of week").map(<[String]>::len), Some(3));
        assert_eq!(arff.nominal("date"), None);
        assert!(looks_like_arff(text.as_bytes()));
        assert!(looks_like_arff(b"\n@relation x\n"));
        assert!(!looks_like_arff(b"date,day,class\n"));
        assert!(is_arff_path(Path::new("/d/elecNormNew.ARFF.gz")));
        assert!(is_arff_path(Path::new("covtype.arff")));
        assert!(!is_arff_path(Path::new("elec2.csv.gz")));
    }

    #[test]
    fn what_cannot_be_read_names_its_line() {
        let head = "@relation r\n@attribute a numeric\n@attribute b {x,y}\n@data\n";
        for (rows, line, what) in [
            ("{0 1, 1 x}\n", 5, "sparse"),
            ("1,x\n1\n", 6, "1 values, 2 attributes"),
            ("1,'x\n", 5, "unclosed quote"),
            ("1,'x'y\n", 5, "after a quoted value"),
        ] {
            let e = csv(&format!("{head}{rows}")).expect_err(rows).to_string();
            assert!(
                e.contains(&format!("ARFF line {line}:")) && e.contains(what),
                "{rows}: {e}"
            );
        }
        let e = csv("@relation r\n@attribute a numeric\n")
            .expect_err("no data")
            .to_string();
        assert!(e.contains("no @data"), "{e}");
        let e = csv("@relation r\n@attribute bag relational\n@data\n")
            .expect_err("relational")
            .to_string();
        assert!(e.contains("relational"), "{e}");
        let e = csv("@relation r\nx,y\n").expect_err("not ARFF").to_string();
        assert!(e.contains("ARFF line 2") && e.contains("`x,y`"), "{e}");
    }
}
