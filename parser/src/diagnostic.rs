//! Diagnostics: a message, where in the Dockerfile, and a hint — what the parser's errors
//! are, what the builder's failures become, and what the CLI renders (`FILE:LINE:COL:
//! message (hint)` and the line with a caret).

use serde::Serialize;
use std::fmt;

/// A region of the Dockerfile: 1-based lines and columns (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    pub start_line: usize,
    pub start_col: usize,
    pub end_line: usize,
    pub end_col: usize,
}

impl Span {
    pub fn new(start_line: usize, start_col: usize, end_line: usize, end_col: usize) -> Self {
        Span { start_line, start_col, end_line, end_col }
    }

    /// A span covering one line from `col` on.
    pub fn line(line: usize, col: usize) -> Self {
        Span { start_line: line, start_col: col, end_line: line, end_col: col }
    }
}

/// A problem in a Dockerfile (every parser error is one): the message, where it is and an
/// optional hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostic {
    pub message: String,
    pub span: Option<Span>,
    /// A short suggestion, e.g. `did you mean FROM?`.
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic { message: message.into(), span: None, hint: None }
    }

    pub fn at(message: impl Into<String>, span: Span) -> Self {
        Diagnostic { message: message.into(), span: Some(span), hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Attaches a location unless the error already has a more precise one.
    pub fn or_at(mut self, span: Span) -> Self {
        if self.span.is_none() {
            self.span = Some(span);
        }
        self
    }

    /// Renders `FILE:LINE:COL: message` and, when the source is at hand, the offending
    /// line with a caret under the column.
    pub fn render(&self, file: &str, source: Option<&str>) -> String {
        let mut out = match self.span {
            Some(s) => format!("{file}:{}:{}: {self}", s.start_line, s.start_col),
            None => format!("{file}: {self}"),
        };
        if let (Some(s), Some(src)) = (self.span, source) {
            if let Some(line) = source_line(src, s.start_line) {
                let width = line.chars().count();
                let col = s.start_col.clamp(1, width.max(1));
                let prefix: String = line.chars().take(col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
                // A very long line is cut some way past the column.
                let line = line.trim_end_matches(['\r', '\n']);
                let keep = (col + 80).max(120);
                let line = match line.char_indices().nth(keep) {
                    Some((i, _)) => format!("{}…", &line[..i]),
                    None => line.to_string(),
                };
                out.push_str(&format!("\n    {line}\n    {prefix}^"));
            }
        }
        out
    }
}

/// The 1-based physical line `n` of `src` (BOM removed), if it exists.
fn source_line(src: &str, n: usize) -> Option<&str> {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    if n == 0 {
        return None;
    }
    src.split('\n').nth(n - 1)
}

/// Levenshtein distance, for "did you mean" hints (the parser's, the build checks' and
/// the CLI's unknown commands).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate to `word` (case-insensitive) within a small edit distance.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&w, &c.to_lowercase()), *c))
        .filter(|(d, c)| *d > 0 && *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_column() {
        let e = Diagnostic::at("unknown instruction \"FORM\"", Span::line(2, 3)).with_hint("did you mean FROM?");
        let r = e.render("Dockerfile", Some("FROM a\n  FORM b\n"));
        assert_eq!(r, "Dockerfile:2:3: unknown instruction \"FORM\" (did you mean FROM?)\n      FORM b\n      ^");
    }

    #[test]
    fn long_lines_are_cut() {
        let src = format!("FROM a\nENV E={}\n", "x".repeat(5000));
        let r = Diagnostic::at("too deep", Span::line(2, 1)).render("Dockerfile", Some(&src));
        assert!(r.len() < 300 && r.ends_with("…\n    ^"), "{r}");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("FORM", &["FROM", "RUN", "COPY"]), Some("FROM"));
        assert_eq!(suggest("workdri", &["WORKDIR", "RUN"]), Some("WORKDIR"));
        assert_eq!(suggest("zzzzzz", &["FROM", "RUN"]), None);
    }
}
