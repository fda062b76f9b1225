//! `.dockerignore` exactly as docker reads it (moby/patternmatcher), and Go's
//! `filepath.Match`, which COPY wildcards and pattern validation use.

use regex::Regex;

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
    Regex(Regex),
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
                MatchType::Regex(Regex::new(&re).map_err(|_| PatternError::Bad(cleaned.to_string()))?)
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
            MatchType::Regex(r) => r.is_match(path),
        }
    }
}

/// An ordered list of patterns; the last one that applies decides.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub patterns: Vec<Pattern>,
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
        Ok(Matcher { patterns: out })
    }

    pub fn has_exclusions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// True when `file` (slash-separated, relative to the context) is excluded: the
    /// file or any of its parent directories matches, the last applicable pattern wins.
    pub fn matches(&self, file: &str) -> bool {
        let mut matched = false;
        let parent = match file.rfind('/') {
            Some(i) => &file[..i],
            None => ".",
        };
        // The parent directories `a`, `a/b`, … are prefixes of the path itself.
        let ancestors = || parent.match_indices('/').map(|(i, _)| &parent[..i]).chain(std::iter::once(parent));
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let m = p.matches(file) || (parent != "." && ancestors().any(|d| p.matches(d)));
            if m {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// For a directory that is excluded: does an exception name a path below it, so the
    /// walk must go in? (docker checks the exception's text as a prefix, nothing more.)
    pub fn may_include_below(&self, dir: &str) -> bool {
        let prefix = format!("{dir}/");
        self.patterns.iter().any(|p| p.exclusion && format!("{}/", p.cleaned).starts_with(&prefix))
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
