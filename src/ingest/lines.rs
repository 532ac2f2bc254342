//! Appending JSON lines that survive a crash mid-write: a file sink (dead letters,
//! predictions) opens its file through [`open_append`], which drops a torn last line.
//!
//! A line is written before the batch it belongs to is stored; a crash in the middle of a
//! line leaves a fragment whose batch was never stored, so its records are read and written
//! again after the restart. Appending to the fragment would glue two records into one line
//! that no reader can parse.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Opens `path` for appending (creating it), first cutting it back to just after its last
/// newline when it does not end with one.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)?;
    let len = file.metadata()?.len();
    let keep = complete_length(&mut file, len)?;
    if keep < len {
        file.set_len(keep)?;
        file.sync_all()?;
        tracing::warn!(
            path = %path.display(),
            dropped_bytes = len - keep,
            "dropped a torn last line (a crash mid-write; its records are written again)"
        );
    }
    OpenOptions::new().append(true).open(path)
}

/// The length of the file up to and including its last newline (0 without one).
fn complete_length(file: &mut File, len: u64) -> std::io::Result<u64> {
    const STEP: u64 = 64 * 1024;
    let mut end = len;
    let mut buf = vec![0u8; STEP as usize];
    while end > 0 {
        let start = end.saturating_sub(STEP);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if end == len && buf[n - 1] == b'\n' {
            return Ok(len);
        }
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_torn_last_line_is_dropped_and_complete_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let cases: [(&[u8], &[u8]); 4] = [
            (b"", b""),
            (b"{\"a\":1}\n{\"a\":2}\n", b"{\"a\":1}\n{\"a\":2}\n"),
            (b"{\"a\":1}\n{\"a\":", b"{\"a\":1}\n"),
            (b"{\"a\":", b""),
        ];
        for (before, kept) in cases {
            std::fs::write(&path, before).unwrap();
            let mut f = open_append(&path).unwrap();
            f.write_all(b"{\"b\":3}\n").unwrap();
            drop(f);
            let mut want = kept.to_vec();
            want.extend_from_slice(b"{\"b\":3}\n");
            assert_eq!(std::fs::read(&path).unwrap(), want);
        }
        // A last line longer than one read step.
        let mut long = b"{\"ok\":1}\n".to_vec();
        long.extend(std::iter::repeat_n(b'x', 200_000));
        std::fs::write(&path, &long).unwrap();
        drop(open_append(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"ok\":1}\n");
    }
}
