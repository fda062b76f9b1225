//! `.dockerignore` exactly as docker reads it (moby/patternmatcher), and Go's
//! `filepath.Match`, which COPY wildcards and pattern validation use.

use regex::Regex;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("syntax error in pattern {0:?}")]
    Bad(String),
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
}

/// A file name as Go's matchers see it: names are bytes, and every byte that is not part
/// of valid UTF-8 is one rune, U+FFFD (what `?` or `[^a]` match, and nothing literal).
/// Valid UTF-8 is borrowed as it is.
pub fn go_string(name: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(name) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for chunk in name.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Go's `path.Clean` for slash-separated paths.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            c => out.push(c),
        }
    }
    let s = out.join("/");
    match (rooted, s.is_empty()) {
        (true, _) => format!("/{s}"),
        (false, true) => ".".into(),
        (false, false) => s,
    }
}

// ---------------------------------------------------------------------------------------
// Go's filepath.Match

fn decode(s: &[u8]) -> (char, usize) {
    let len = match s.first() {
        Some(b) if *b < 0x80 => 1,
        Some(b) if *b >= 0xF0 => 4,
        Some(b) if *b >= 0xE0 => 3,
        Some(b) if *b >= 0xC0 => 2,
        _ => 1,
    };
    match std::str::from_utf8(&s[..len.min(s.len())]) {
        Ok(t) => (t.chars().next().unwrap_or('\u{FFFD}'), len.min(s.len())),
        Err(_) => ('\u{FFFD}', 1),
    }
}

fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut p = pattern;
    let mut star = false;
    while p.first() == Some(&b'*') {
        p = &p[1..];
        star = true;
    }
    let mut inrange = false;
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 < p.len() => i += 1,
            b'[' => inrange = true,
            b']' => inrange = false,
            b'*' if !inrange => break,
            _ => {}
        }
        i += 1;
    }
    (star, &p[..i], &p[i..])
}

fn get_esc(chunk: &[u8]) -> Result<(char, &[u8]), ()> {
    if chunk.is_empty() || chunk[0] == b'-' || chunk[0] == b']' {
        return Err(());
    }
    let mut c = chunk;
    if c[0] == b'\\' {
        c = &c[1..];
        if c.is_empty() {
            return Err(());
        }
    }
    let (r, n) = decode(c);
    if r == '\u{FFFD}' && n == 1 && c[0] >= 0x80 {
        return Err(());
    }
    let rest = &c[n..];
    if rest.is_empty() {
        return Err(());
    }
    Ok((r, rest))
}

fn match_chunk<'a>(chunk: &[u8], s: &'a [u8]) -> Result<Option<&'a [u8]>, ()> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match chunk[0] {
            b'[' => {
                let mut r = '\0';
                if !failed {
                    let (c, n) = decode(s);
                    r = c;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let mut negated = false;
                if chunk.first() == Some(&b'^') {
                    negated = true;
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.first() == Some(&b']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            b'\\' => {
                chunk = &chunk[1..];
                if chunk.is_empty() {
                    return Err(());
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
            c => {
                if !failed {
                    if c != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        Ok(None)
    } else {
        Ok(Some(s))
    }
}

/// Go's `filepath.Match` on Unix: `*` and `?` do not match `/`.
pub fn go_match(pattern: &str, name: &str) -> Result<bool, PatternError> {
    let bad = || PatternError::Bad(pattern.to_string());
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        let r = match_chunk(chunk, name);
        if let Ok(Some(t)) = r {
            if t.is_empty() || !pattern.is_empty() {
                name = t;
                continue;
            }
        }
        if r.is_err() {
            return Err(bad());
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                match match_chunk(chunk, &name[i + 1..]) {
                    Ok(Some(t)) => {
                        if pattern.is_empty() && !t.is_empty() {
                            i += 1;
                            continue;
                        }
                        name = t;
                        continue 'pattern;
                    }
                    Ok(None) => {}
                    Err(()) => return Err(bad()),
                }
                i += 1;
            }
        }
        // No match: the rest of the pattern must still be well formed.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            if match_chunk(chunk, b"").is_err() {
                return Err(bad());
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

// ---------------------------------------------------------------------------------------
// patternmatcher

#[derive(Debug, Clone)]
enum MatchType {
    Exact,
    Prefix,
    Suffix,
    /// The regex and, until first needed, only its text: most patterns of a long
    /// .dockerignore are never tried (see [`Matcher`]), and building every one cost
    /// seconds and a gigabyte for 100,000 of them.
    Regex(String, std::sync::OnceLock<Option<Regex>>),
}

#[derive(Debug, Clone)]
pub struct Pattern {
    pub exclusion: bool,
    pub cleaned: String,
    kind: MatchType,
}

fn should_escape(c: char) -> bool {
    matches!(c, '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$')
}

impl Pattern {
    fn compile(cleaned: &str, exclusion: bool) -> Result<Pattern, PatternError> {
        let chars: Vec<char> = cleaned.chars().collect();
        let mut re = String::from("^");
        let mut kind = 0u8; // 0 exact, 1 prefix, 2 suffix, 3 regex
        let mut i = 0;
        let mut idx = 0;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            if ch == '*' {
                if chars.get(i) == Some(&'*') {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        if kind == 0 {
                            kind = 1;
                        } else {
                            re.push_str(".*");
                            kind = 3;
                        }
                    } else {
                        re.push_str("(.*/)?");
                        kind = 3;
                    }
                    if idx == 0 {
                        kind = 2;
                    }
                } else {
                    re.push_str("[^/]*");
                    kind = 3;
                }
            } else if ch == '?' {
                re.push_str("[^/]");
                kind = 3;
            } else if should_escape(ch) {
                re.push('\\');
                re.push(ch);
            } else if ch == '\\' {
                if i < chars.len() {
                    re.push('\\');
                    re.push(chars[i]);
                    i += 1;
                } else {
                    re.push('\\');
                }
                kind = 3;
            } else if ch == '[' || ch == ']' {
                re.push(ch);
                kind = 3;
            } else {
                re.push(ch);
            }
            idx += 1;
        }
        let kind = match kind {
            0 => MatchType::Exact,
            1 => MatchType::Prefix,
            2 => MatchType::Suffix,
            _ => {
                re.push('$');
                // Only classes and escapes can make the regex invalid: those are built
                // now, to refuse the pattern; the others when first tried.
                let built = std::sync::OnceLock::new();
                if cleaned.contains(['[', ']', '\\']) {
                    let _ = built.set(Some(Regex::new(&re).map_err(|_| PatternError::Bad(cleaned.to_string()))?));
                }
                MatchType::Regex(re, built)
            }
        };
        Ok(Pattern { exclusion, cleaned: cleaned.to_string(), kind })
    }

    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            MatchType::Exact => path == self.cleaned,
            MatchType::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            MatchType::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || (suffix.starts_with('/') && path == &suffix[1..])
            }
            // Valid by construction (checked above where it could fail); a regex that
            // still did not build matches nothing.
            MatchType::Regex(re, built) => {
                built.get_or_init(|| Regex::new(re).ok()).as_ref().is_some_and(|r| r.is_match(path))
            }
        }
    }
}

/// An ordered list of patterns; the last one that applies decides.
///
/// Which pattern that is does not depend on the order patterns are tried in: it is the
/// last (highest-numbered) pattern that matches the path or one of its parents. So the
/// patterns are indexed — exact ones by their text, the others by their first path
/// component when it is literal — and a path is tried only against those that can match
/// it, from the last back, until one does: 100,000 patterns cost about what a few do.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub patterns: Vec<Pattern>,
    /// Exact patterns: text → the last one with it.
    exact: HashMap<String, usize>,
    /// Other patterns whose first component is literal, by that component (ascending).
    by_first: HashMap<String, Vec<usize>>,
    /// The rest (ascending).
    other: Vec<usize>,
    /// `cleaned/` of every exception, for [`Matcher::may_include_below`].
    exceptions: Vec<String>,
}

/// The first component of a pattern, if it has no wildcard or escape.
fn literal_first(cleaned: &str) -> Option<&str> {
    let first = cleaned.split('/').next()?;
    (!first.is_empty() && !first.contains(['*', '?', '[', ']', '\\'])).then_some(first)
}

impl Matcher {
    /// patternmatcher.New: patterns are trimmed and cleaned, validated with
    /// `filepath.Match` syntax, `!` marks an exception.
    pub fn new(patterns: &[String]) -> Result<Matcher, PatternError> {
        let mut out = Vec::new();
        for p in patterns {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err(PatternError::LoneExclamation);
                }
                exclusion = true;
                p = rest.to_string();
            }
            go_match(&p, ".")?;
            // Character classes must also be valid as regex classes (`[l-O]`).
            out.push(Pattern::compile(&p, exclusion)?);
        }
        let mut m = Matcher { patterns: Vec::new(), ..Default::default() };
        for (i, p) in out.iter().enumerate() {
            match (&p.kind, literal_first(&p.cleaned)) {
                (MatchType::Exact, _) => {
                    m.exact.insert(p.cleaned.clone(), i);
                }
                (_, Some(first)) => m.by_first.entry(first.to_string()).or_default().push(i),
                (_, None) => m.other.push(i),
            }
            if p.exclusion {
                m.exceptions.push(format!("{}/", p.cleaned));
            }
        }
        m.patterns = out;
        Ok(m)
    }

    pub fn has_exclusions(&self) -> bool {
        !self.exceptions.is_empty()
    }

    /// True when `file` (slash-separated, relative to the context) is excluded: the
    /// file or any of its parent directories matches, the last applicable pattern wins.
    pub fn matches(&self, file: &str) -> bool {
        let parent = match file.rfind('/') {
            Some(i) => &file[..i],
            None => ".",
        };
        // The parent directories `a`, `a/b`, … are prefixes of the path itself.
        let ancestors = || parent.match_indices('/').map(|(i, _)| &parent[..i]).chain(std::iter::once(parent));
        let candidates = || std::iter::once(file).chain(ancestors().filter(|_| parent != "."));
        let applies = |i: usize| candidates().any(|c| self.patterns[i].matches(c));
        let mut last: Option<usize> = candidates().filter_map(|c| self.exact.get(c).copied()).max();
        let first = file.split('/').next().unwrap_or(file);
        for list in [self.by_first.get(first).map(Vec::as_slice).unwrap_or(&[]), self.other.as_slice()] {
            for &i in list.iter().rev() {
                if last.is_some_and(|l| l > i) {
                    break;
                }
                if applies(i) {
                    last = Some(i);
                    break;
                }
            }
        }
        last.is_some_and(|i| !self.patterns[i].exclusion)
    }

    /// For a directory that is excluded: does an exception name a path below it, so the
    /// walk must go in? (docker checks the exception's text as a prefix, nothing more.)
    pub fn may_include_below(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.exceptions.iter().any(|e| e.starts_with(&prefix))
    }
}

/// ignorefile.ReadAll: the patterns of a .dockerignore file.
pub fn read_dockerignore(data: &[u8]) -> Vec<String> {
    let data = data.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(data);
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut p = line.trim().to_string();
        if p.is_empty() {
            continue;
        }
        let invert = p.starts_with('!');
        if invert {
            p = p[1..].trim().to_string();
        }
        if !p.is_empty() {
            p = clean(&p);
            if p.len() > 1 && p.starts_with('/') {
                p = p[1..].to_string();
            }
        }
        if invert {
            p = format!("!{p}");
        }
        out.push(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_basics() {
        assert!(go_match("*.md", "a.md").unwrap());
        assert!(!go_match("*.md", "d/a.md").unwrap());
        assert!(go_match("a/*/c", "a/b/c").unwrap());
        assert!(go_match("[a-c]x", "bx").unwrap());
        assert!(go_match("[^a-c]x", "dx").unwrap());
        assert!(go_match("a\\*b", "a*b").unwrap());
        assert!(go_match("[", "a").is_err());
        assert!(go_match("a[", "a").is_err());
        assert!(go_match("\\", "a").is_err());
    }

    /// The sequential rule docker's patternmatcher applies, pattern by pattern.
    fn sequential(m: &Matcher, file: &str) -> bool {
        let mut matched = false;
        let parent = file.rfind('/').map_or(".", |i| &file[..i]);
        let ancestors = || parent.match_indices('/').map(|(i, _)| &parent[..i]).chain(std::iter::once(parent));
        for p in &m.patterns {
            if p.exclusion != matched {
                continue;
            }
            if p.matches(file) || (parent != "." && ancestors().any(|d| p.matches(d))) {
                matched = !p.exclusion;
            }
        }
        matched
    }

    proptest::proptest! {
        /// The indexed matcher decides every path as the sequential rule does.
        #[test]
        fn indexed_matching_is_the_sequential_rule(
            patterns in proptest::collection::vec("!?(\\*\\*/)?[ab*?]{1,2}(/[ab*?]{1,2}){0,2}(/\\*\\*)?", 1..12),
            files in proptest::collection::vec("[ab]{1,2}(/[ab]{1,2}){0,3}", 1..12),
        ) {
            let Ok(m) = Matcher::new(&patterns) else { return Ok(()) };
            for f in &files {
                proptest::prop_assert_eq!(m.matches(f), sequential(&m, f), "{:?} {}", patterns, f);
            }
        }
    }

    /// Regression (issue 12): 100,000 patterns took 9.3 s and 1.8 GB for a small context
    /// (every path tried against every pattern, and every regex's matching state built).
    /// Now a path meets only the patterns that can match it.
    #[test]
    fn many_patterns_are_indexed() {
        let mut pats: Vec<String> = (0..20_000).map(|i| format!("dir{i}/*.tmp")).collect();
        pats.push("!dir7/keep.tmp".into());
        pats.extend((0..20_000).map(|i| format!("exact{i}")));
        let m = Matcher::new(&pats).unwrap();
        assert!(m.matches("dir7/x.tmp") && !m.matches("dir7/keep.tmp") && m.matches("exact5/below"));
        assert!(!m.matches("src/main.rs"));
        assert_eq!(m.by_first.len(), 20_000);
        assert!(m.other.is_empty(), "every pattern is indexed");
    }

    #[test]
    fn clean_like_go() {
        assert_eq!(clean("./out"), "out");
        assert_eq!(clean("a//b/./c/.."), "a/b");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("docs/"), "docs");
    }
}
