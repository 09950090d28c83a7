//! Reading the end of an append-only JSON Lines file without reading all of it, and cutting
//! off a torn last line (a write that a crash interrupted before its newline).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// How much is read per step when scanning backwards.
const CHUNK: u64 = 64 * 1024;

/// The last complete lines of a file, oldest first, and where the complete part ends.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tail {
    /// Up to the requested number of complete lines, without their newlines.
    pub lines: Vec<String>,
    /// The length of the file up to and including its last newline; bytes past it are torn.
    pub complete_len: u64,
}

/// Read the last `max_lines` complete lines of `file` (fewer if the file has fewer).
pub fn read_tail(file: &mut File, max_lines: usize) -> std::io::Result<Tail> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut start = len;
    let mut buffer: Vec<u8> = Vec::new();
    // Scan backwards until the buffer holds one newline more than the lines wanted (the one
    // that ends the line before them), or the start of the file.
    while start > 0 && newlines(&buffer) <= max_lines {
        let step = CHUNK.min(start);
        start -= step;
        file.seek(SeekFrom::Start(start))?;
        let mut chunk = vec![0; usize::try_from(step).unwrap_or(usize::MAX)];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&buffer);
        buffer = chunk;
    }
    let torn = buffer.iter().rev().take_while(|&&b| b != b'\n').count();
    let complete = buffer.len() - torn;
    let complete_len = len - torn as u64;
    let body = buffer.get(..complete).unwrap_or_default();
    let mut lines: Vec<String> = body
        .split(|&b| b == b'\n')
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect();
    // `split` yields an empty piece after the final newline.
    lines.pop();
    // When the scan stopped mid-file the first piece is the end of a longer line: dropping
    // all but the last `max_lines` drops it too.
    let keep = lines.len().min(max_lines);
    lines.drain(..lines.len() - keep);
    Ok(Tail {
        lines,
        complete_len,
    })
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(content: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(content).unwrap();
        file
    }

    #[test]
    fn reads_the_last_lines_and_spots_a_torn_one() {
        let mut file = file_with(b"a\nbb\nccc\ndd");
        let tail = read_tail(&mut file, 2).unwrap();
        assert_eq!(tail.lines, ["bb", "ccc"]);
        assert_eq!(tail.complete_len, 9);
        let all = read_tail(&mut file, 10).unwrap();
        assert_eq!(all.lines, ["a", "bb", "ccc"]);
        assert_eq!(read_tail(&mut file_with(b""), 3).unwrap(), Tail::default());
    }

    #[test]
    fn scans_across_chunk_boundaries() {
        let line = "x".repeat(50_000);
        let content = format!("first\n{line}\n{line}\nlast\n");
        let mut file = file_with(content.as_bytes());
        let tail = read_tail(&mut file, 3).unwrap();
        assert_eq!(tail.lines.len(), 3);
        assert_eq!(tail.lines[2], "last");
        assert_eq!(tail.lines[0], line);
        assert_eq!(tail.complete_len, content.len() as u64);
    }
}
