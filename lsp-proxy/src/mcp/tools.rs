//! What the MCP tools answer, computed from the room's files: listing, reading a window of a
//! file, searching, and bounding a run's output. Sans-IO, so every bound has a test.

use std::fmt::Write;

/// The most files `list_files` names (a room may hold thousands; an agent's context is small).
pub const MAX_LISTED_FILES: usize = 2000;
/// The most lines `read_file` returns at once (the agent asks for the next window).
pub const MAX_READ_LINES: usize = 2000;
/// The most bytes `read_file` returns at once, whatever the line count.
pub const MAX_READ_BYTES: usize = 256 * 1024;
/// The most matches `search` returns.
pub const MAX_MATCHES: usize = 200;
/// The longest matching line `search` shows in full (minified files have huge lines).
pub const MAX_MATCH_LINE_CHARS: usize = 300;
/// The longest search pattern accepted (a regex's compiled size grows with it).
pub const MAX_PATTERN_BYTES: usize = 1024;
/// The most bytes of a run's output kept for the agent (stdout and stderr together).
pub const MAX_RUN_OUTPUT_BYTES: usize = 64 * 1024;

/// `list_files`: one line per file, `path (N lines)`, sorted, bounded.
pub fn list(files: &[(String, String)], under: Option<&str>) -> String {
    let prefix = under.map(|u| u.trim_matches('/')).filter(|u| !u.is_empty());
    let mut listed: Vec<&(String, String)> = files
        .iter()
        .filter(|(p, _)| prefix.is_none_or(|pre| p.strip_prefix(pre).is_some_and(|rest| rest.starts_with('/'))))
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (path, text) in listed.iter().take(MAX_LISTED_FILES) {
        let _ = writeln!(out, "{path} ({} lines)", line_count(text));
    }
    if listed.len() > MAX_LISTED_FILES {
        let _ = writeln!(
            out,
            "... and {} more files: pass `under` (a folder) to list fewer",
            listed.len() - MAX_LISTED_FILES
        );
    }
    if listed.is_empty() {
        out.push_str(match prefix {
            Some(_) => "no files under that folder\n",
            None => "the room has no files yet\n",
        });
    }
    out
}

/// `read_file`: lines `start..start+count` (1-based, `count` capped) of `text`, exactly as
/// they are (no line numbers: what the agent reads is what it can quote as an anchor), with a
/// closing note when more of the file follows.
pub fn read_window(text: &str, start_line: Option<usize>, max_lines: Option<usize>) -> Result<String, String> {
    let start = start_line.unwrap_or(1).max(1);
    let count = max_lines.unwrap_or(MAX_READ_LINES).clamp(1, MAX_READ_LINES);
    let total = line_count(text);
    if start > total.max(1) {
        return Err(format!(
            "the file has {total} lines; start_line {start} is past its end"
        ));
    }
    let mut out = String::new();
    let mut shown = 0;
    for line in text.split_inclusive('\n').skip(start - 1).take(count) {
        if out.len() + line.len() > MAX_READ_BYTES {
            break;
        }
        out.push_str(line);
        shown += 1;
    }
    let last = start - 1 + shown;
    if last < total {
        if !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        let _ = write!(
            out,
            "[mesh: lines {start}-{last} of {total} shown; read on with start_line {}]",
            last + 1
        );
    }
    Ok(out)
}

/// How `search` matches.
#[derive(Debug)]
pub enum Pattern {
    /// A plain substring.
    Text(String),
    /// A regular expression (the `regex` crate's syntax: linear time, no backtracking, so a
    /// hostile pattern cannot stall the proxy).
    Regex(regex::Regex),
}

impl Pattern {
    /// Checks and compiles what the agent sent.
    pub fn new(query: &str, is_regex: bool) -> Result<Pattern, String> {
        if query.is_empty() {
            return Err("the query is empty: say what to look for".into());
        }
        if query.len() > MAX_PATTERN_BYTES {
            return Err(format!(
                "the query is longer than {MAX_PATTERN_BYTES} bytes: search for a shorter part"
            ));
        }
        if !is_regex {
            return Ok(Pattern::Text(query.to_string()));
        }
        regex::RegexBuilder::new(query)
            .size_limit(1 << 20)
            .build()
            .map(Pattern::Regex)
            .map_err(|e| format!("the query is not a valid regular expression: {e}"))
    }

    fn matches(&self, line: &str) -> bool {
        match self {
            Pattern::Text(t) => line.contains(t.as_str()),
            Pattern::Regex(r) => r.is_match(line),
        }
    }
}

/// `search`: `path:line: text` for each matching line, files in path order, bounded.
pub fn search(files: &[(String, String)], pattern: &Pattern, under: Option<&str>) -> String {
    let prefix = under.map(|u| u.trim_matches('/')).filter(|u| !u.is_empty());
    let mut sorted: Vec<&(String, String)> = files
        .iter()
        .filter(|(p, _)| prefix.is_none_or(|pre| p.strip_prefix(pre).is_some_and(|rest| rest.starts_with('/'))))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    let mut found = 0usize;
    for (path, text) in sorted {
        for (i, line) in text.lines().enumerate() {
            if !pattern.matches(line) {
                continue;
            }
            found += 1;
            if found > MAX_MATCHES {
                continue;
            }
            let shown: String = line.chars().take(MAX_MATCH_LINE_CHARS).collect();
            let cut = if shown.len() < line.len() { " [...]" } else { "" };
            let _ = writeln!(out, "{path}:{}: {shown}{cut}", i + 1);
        }
    }
    if found == 0 {
        out.push_str("no matches\n");
    } else if found > MAX_MATCHES {
        let _ = writeln!(
            out,
            "[mesh: {found} matches, the first {MAX_MATCHES} shown; narrow the query or pass `under`]"
        );
    }
    out
}

/// A run's output as the agent gets it: everything up to [`MAX_RUN_OUTPUT_BYTES`], then a
/// note of how much was left out.
#[derive(Debug, Default)]
pub struct RunOutput {
    text: String,
    dropped: usize,
}

impl RunOutput {
    /// Adds output as it arrives.
    pub fn push(&mut self, data: &str) {
        let room = MAX_RUN_OUTPUT_BYTES.saturating_sub(self.text.len());
        if data.len() <= room {
            self.text.push_str(data);
            return;
        }
        let mut cut = room;
        while !data.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&data[..cut]);
        self.dropped += data.len() - cut;
    }

    /// The output, with the note when some was left out.
    pub fn finish(mut self) -> String {
        if self.dropped > 0 {
            if !self.text.ends_with('\n') {
                self.text.push('\n');
            }
            let _ = write!(self.text, "[mesh: {} more bytes of output left out]", self.dropped);
        }
        self.text
    }
}

fn line_count(text: &str) -> usize {
    text.lines().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<(String, String)> {
        vec![
            ("src/b.py".into(), "import os\nprint(total)\n".into()),
            ("src/a.py".into(), "total = 1\n".into()),
            ("srcx/c.py".into(), "total = 2\n".into()),
            ("README.md".into(), "# total\n".into()),
        ]
    }

    #[test]
    fn list_is_sorted_with_line_counts() {
        assert_eq!(
            list(&files(), None),
            "README.md (1 lines)\nsrc/a.py (1 lines)\nsrc/b.py (2 lines)\nsrcx/c.py (1 lines)\n"
        );
    }

    #[test]
    fn list_under_a_folder_takes_only_that_folder() {
        assert_eq!(list(&files(), Some("src/")), "src/a.py (1 lines)\nsrc/b.py (2 lines)\n");
    }

    #[test]
    fn list_is_bounded_and_says_how_many_more() {
        let many: Vec<(String, String)> = (0..MAX_LISTED_FILES + 5)
            .map(|i| (format!("f{i:05}"), String::new()))
            .collect();
        let out = list(&many, None);
        assert_eq!(out.lines().count(), MAX_LISTED_FILES + 1);
        assert!(
            out.ends_with("... and 5 more files: pass `under` (a folder) to list fewer\n"),
            "{out}"
        );
    }

    #[test]
    fn read_window_returns_the_exact_text() {
        assert_eq!(read_window("a\nb\n", None, None).unwrap(), "a\nb\n");
        assert_eq!(read_window("", None, None).unwrap(), "");
    }

    #[test]
    fn read_window_says_where_to_read_on() {
        let text = "1\n2\n3\n4\n";
        assert_eq!(
            read_window(text, Some(2), Some(2)).unwrap(),
            "2\n3\n[mesh: lines 2-3 of 4 shown; read on with start_line 4]"
        );
        assert!(read_window(text, Some(9), None).unwrap_err().contains("4 lines"));
    }

    #[test]
    fn read_window_is_bounded_in_bytes() {
        let line = format!("{}\n", "x".repeat(1000));
        let text = line.repeat(1000);
        let out = read_window(&text, None, None).unwrap();
        assert!(out.len() <= MAX_READ_BYTES + 100, "{}", out.len());
        assert!(
            out.contains("read on with start_line 262"),
            "{}",
            &out[out.len() - 80..]
        );
    }

    #[test]
    fn search_finds_substrings_with_path_and_line() {
        let p = Pattern::new("total", false).unwrap();
        assert_eq!(
            search(&files(), &p, None),
            "README.md:1: # total\nsrc/a.py:1: total = 1\nsrc/b.py:2: print(total)\nsrcx/c.py:1: total = 2\n"
        );
    }

    #[test]
    fn search_takes_regexes_and_refuses_bad_ones() {
        let p = Pattern::new(r"^total = \d$", true).unwrap();
        assert_eq!(search(&files(), &p, Some("src")), "src/a.py:1: total = 1\n");
        assert!(Pattern::new("(", true)
            .unwrap_err()
            .contains("not a valid regular expression"));
        assert!(Pattern::new("", false).is_err());
        assert!(Pattern::new(&"a".repeat(MAX_PATTERN_BYTES + 1), false).is_err());
    }

    #[test]
    fn search_is_bounded_and_says_so() {
        let text = "hit\n".repeat(MAX_MATCHES + 10);
        let out = search(&[("f".into(), text)], &Pattern::new("hit", false).unwrap(), None);
        assert_eq!(out.lines().count(), MAX_MATCHES + 1);
        assert!(
            out.contains(&format!("{} matches, the first {MAX_MATCHES} shown", MAX_MATCHES + 10)),
            "{out}"
        );
    }

    #[test]
    fn run_output_is_bounded_at_a_char_boundary() {
        let mut o = RunOutput::default();
        o.push(&"x".repeat(MAX_RUN_OUTPUT_BYTES - 1));
        o.push("éé");
        let out = o.finish();
        assert!(out.starts_with(&"x".repeat(MAX_RUN_OUTPUT_BYTES - 1)));
        assert!(
            out.ends_with("[mesh: 4 more bytes of output left out]"),
            "{}",
            &out[out.len() - 60..]
        );
    }
}
