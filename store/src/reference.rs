//! Image names, normalised as docker does: `busybox` is
//! `docker.io/library/busybox:latest`; `localhost:5000/app@sha256:…` keeps its registry.

use crate::digest::Digest;
use crate::error::{Result, StoreError};
use std::fmt;

pub const DEFAULT_DOMAIN: &str = "docker.io";

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// Registry host (with port), e.g. `docker.io`, `127.0.0.1:5000`.
    pub domain: String,
    /// Repository path, e.g. `library/busybox`.
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

fn bad(s: &str, why: &str) -> StoreError {
    StoreError::BadReference(format!("{s:?}: {why}"))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or any number of '-'.
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok || i == b.len() {
            return false;
        }
        if !(b[i].is_ascii_lowercase() || b[i].is_ascii_digit()) {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || d.starts_with('[') => (h, Some(p)),
        _ => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.starts_with('[') {
        return host.ends_with(']') && host[1..host.len() - 1].bytes().all(|c| c.is_ascii_hexdigit() || c == b':');
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl Reference {
    /// Parses and normalises a reference as docker does.
    pub fn parse(s: &str) -> Result<Reference> {
        if s.is_empty() {
            return Err(bad(s, "empty reference"));
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d.parse::<Digest>().map_err(|_| bad(s, "invalid digest"))?)),
            None => (s, None),
        };
        // A tag follows the last ':' after the last '/'.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (&name_tag[..last_slash + i], Some(&name_tag[last_slash + i + 1..])),
            None => (name_tag, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad(s, "invalid tag"));
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == "index.docker.io" { DEFAULT_DOMAIN.to_string() } else { domain };
        if !valid_domain(&domain) {
            return Err(bad(s, "invalid registry host"));
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') { format!("library/{path}") } else { path };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad(s, "repository name must be lowercase"));
        }
        if !path.split('/').all(valid_component) {
            return Err(bad(s, "invalid repository name"));
        }
        if domain.len() + 1 + path.len() > 255 {
            return Err(bad(s, "repository name must not be more than 255 characters"));
        }
        let tag = match (tag, digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(String::from),
        };
        Ok(Reference { domain, path, tag, digest })
    }

    /// `docker.io/library/busybox`
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox`, `org/app`, `127.0.0.1:5000/app`
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path.strip_prefix("library/").unwrap_or(&self.path).to_string()
        } else {
            self.repository()
        }
    }

    /// The name as users write it: `busybox:latest`, `127.0.0.1:5000/app@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The same reference with a different tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }
}

/// Go's `path.Match`: `*` is any run of characters but `/`, `?` one of them, `[…]` a
/// class (ranges, `^` to negate), `\\` escapes. A malformed pattern is an error.
pub fn path_match(pattern: &str, name: &str) -> Result<bool> {
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, chars consumed including ']').
        let mut i = 0;
        let negate = p.first() == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        loop {
            let ch = *p.get(i)?;
            if ch == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = if ch == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                ch
            };
            i += 1;
            let mut hi = lo;
            if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|c| *c != ']') {
                i += 1;
                hi = if p[i] == '\\' {
                    i += 1;
                    *p.get(i)?
                } else {
                    p[i]
                };
                i += 1;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
        }
    }
    fn go(p: &[char], n: &[char]) -> Option<bool> {
        match p.first() {
            None => Some(n.is_empty()),
            Some('*') => {
                let rest = &p[1..];
                for k in 0..=n.len() {
                    if k > 0 && n[k - 1] == '/' {
                        break;
                    }
                    if go(rest, &n[k..])? {
                        return Some(true);
                    }
                }
                // Check the rest of the pattern is well formed even without a match.
                go(rest, &[]).map(|_| false)
            }
            Some('?') => Some(!n.is_empty() && n[0] != '/' && go(&p[1..], &n[1..])?),
            Some('[') => {
                let c = n.first().copied();
                let (m, used) = class(&p[1..], c.unwrap_or('\0'))?;
                Some(c.is_some_and(|c| c != '/') && m && go(&p[1 + used..], &n[1..])?)
            }
            Some('\\') => {
                let c = *p.get(1)?;
                Some(n.first() == Some(&c) && go(&p[2..], &n[1..])?)
            }
            Some(c) => Some(n.first() == Some(c) && go(&p[1..], &n[1..])?),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n).ok_or_else(|| StoreError::BadReference(format!("{pattern:?}: syntax error in pattern")))
}

impl Reference {
    /// docker's `reference.FamiliarMatch`: `pattern` (a `path.Match` pattern) against the
    /// familiar name with its tag or digest (`busybox:latest`), else without
    /// (`busybox`). `images bb` lists every tag of bb, `images bb:1` only bb:1, and
    /// `images 'org/*'` every repository under org.
    pub fn familiar_match(&self, pattern: &str) -> Result<bool> {
        if path_match(pattern, &self.familiar())? {
            return Ok(true);
        }
        path_match(pattern, &self.familiar_repository())
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        Reference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(n("org/app"), "docker.io/org/app:latest");
        assert_eq!(n("docker.io/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("index.docker.io/library/busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("localhost/app"), "localhost/app:latest");
        assert_eq!(n("127.0.0.1:5000/a/b:v1"), "127.0.0.1:5000/a/b:v1");
        assert_eq!(n("rbuild-anchor/busybox:1"), "docker.io/rbuild-anchor/busybox:1");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(n(&format!("busybox@{d}")), format!("docker.io/library/busybox@{d}"));
        assert_eq!(n(&format!("busybox:1@{d}")), format!("docker.io/library/busybox:1@{d}"));
    }

    #[test]
    fn familiar_names() {
        assert_eq!(Reference::parse("docker.io/library/busybox").unwrap().familiar(), "busybox:latest");
        assert_eq!(Reference::parse("org/app:2").unwrap().familiar(), "org/app:2");
        assert_eq!(Reference::parse("127.0.0.1:5000/x").unwrap().familiar(), "127.0.0.1:5000/x:latest");
    }

    #[test]
    fn familiar_matches_like_docker() {
        let r = |s: &str| Reference::parse(s).unwrap();
        assert!(r("bb:1").familiar_match("bb").unwrap());
        assert!(r("bb:latest").familiar_match("bb").unwrap());
        assert!(r("bb:1").familiar_match("bb:1").unwrap());
        assert!(!r("bb:latest").familiar_match("bb:1").unwrap());
        assert!(!r("bbx:1").familiar_match("bb").unwrap());
        assert!(r("org/app:2").familiar_match("org/*").unwrap());
        assert!(!r("org/sub/app:2").familiar_match("org/*").unwrap());
        assert!(!r("other/app:2").familiar_match("org/*").unwrap());
        assert!(r("busybox:1").familiar_match("busy?ox:[0-9]").unwrap());
        assert!(r("127.0.0.1:5000/app:1").familiar_match("127.0.0.1:5000/app").unwrap());
        assert!(!r("busybox:1").familiar_match("docker.io/library/busybox").unwrap());
        assert!(r("busybox:1").familiar_match("[").is_err());
        assert!(path_match("a\\*b", "a*b").unwrap());
        assert!(!path_match("[^a]", "a").unwrap());
    }

    #[test]
    fn refuses_bad_names() {
        for s in ["", "Busybox", "a//b", "a:", ":tag", "a@sha256:123", "-a", "a-", "a..b", "a:t@g", "a/B"] {
            assert!(Reference::parse(s).is_err(), "{s} accepted");
        }
        // Upper case in the first component makes it a registry host.
        assert_eq!(n("Registry.Example/app"), "Registry.Example/app:latest");
    }
}
