//! Text made a row at a time: the `Read` and `BufRead` of a converter that turns another
//! format into CSV lines (`arff`, and `relearn eval`'s view of JSON lines).

use std::io::{BufRead, Read};

/// A source of text rows, each a whole line with its `\n`.
pub trait Rows {
    /// Replaces `out` with the next row; false at the end of the input.
    fn next_row(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool>;
}

/// The text of `first` (a header) and then of every row of `S`.
pub struct RowText<S> {
    rows: S,
    /// Text not yet read, from `pos`.
    out: Vec<u8>,
    pos: usize,
}

impl<S: Rows> RowText<S> {
    pub fn new(rows: S, first: Vec<u8>) -> RowText<S> {
        RowText {
            rows,
            out: first,
            pos: 0,
        }
    }

    /// The row source.
    pub fn rows(&self) -> &S {
        &self.rows
    }
}

impl<S: Rows> Read for RowText<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<S: Rows> BufRead for RowText<S> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.out.len() {
            self.pos = 0;
            if !self.rows.next_row(&mut self.out)? {
                self.out.clear();
                return Ok(&[]);
            }
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count(u32);

    impl Rows for Count {
        fn next_row(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
            if self.0 == 0 {
                return Ok(false);
            }
            self.0 -= 1;
            *out = format!("row {}\n", self.0).into_bytes();
            Ok(true)
        }
    }

    #[test]
    fn the_header_then_every_row() {
        let mut text = RowText::new(Count(3), b"head\n".to_vec());
        let mut lines = Vec::new();
        let mut line = String::new();
        while text.read_line(&mut line).unwrap() > 0 {
            lines.push(std::mem::take(&mut line));
        }
        assert_eq!(lines, ["head\n", "row 2\n", "row 1\n", "row 0\n"]);
        let mut all = String::new();
        RowText::new(Count(2), Vec::new())
            .read_to_string(&mut all)
            .unwrap();
        assert_eq!(all, "row 1\nrow 0\n");
    }
}
