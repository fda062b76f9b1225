//! The shell patterns of `${VAR#p}`, `${VAR%p}` and `${VAR/p/r}`: `*`, `?` and `\` escapes
//! (no bracket expressions), matched through a regex as BuildKit's lexer does.

use super::{within_limit, ExpandError};

/// A pattern that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PatternError {
    /// `\` before a character that is neither `*`, `?` nor `\`.
    #[error("invalid escape '\\{0}'")]
    Escape(char),
    /// `\` at the end of the pattern.
    #[error("invalid escape '\\'")]
    TrailingEscape,
    /// The regex made of the pattern was refused (e.g. too large).
    #[error(transparent)]
    Regex(#[from] regex::Error),
}

/// `pattern` as a regex; `*` is greedy or not, the match anchored at the start or not.
pub(super) fn pattern_to_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<regex::Regex, PatternError> {
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let mut tok = chars[i];
        i += 1;
        match tok {
            '*' => {
                out.push_str(star);
                continue;
            }
            '?' => {
                out.push('.');
                continue;
            }
            '\\' => {
                // `\}` and `\/` inside `${}` are escapes of the expansion syntax, not the pattern.
                if matches!(chars.get(i), Some('}' | '/')) {
                    continue;
                }
                out.push('\\');
                match chars.get(i) {
                    Some(&c @ ('*' | '?' | '\\')) => {
                        tok = c;
                        i += 1;
                    }
                    Some(c) => return Err(PatternError::Escape(*c)),
                    None => return Err(PatternError::TrailingEscape),
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => out.push('\\'),
            _ => {}
        }
        out.push(tok);
    }
    Ok(regex::Regex::new(&out)?)
}

/// `pattern` as a regex for a substitution, its error naming the pattern.
pub(super) fn substitution_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<regex::Regex, ExpandError> {
    pattern_to_regex(pattern, greedy, anchored)
        .map_err(|source| ExpandError::Pattern { pattern: pattern.to_string(), source })
}

/// `${VAR#p}` / `${VAR##p}`: the value without its shortest / longest prefix matching.
pub(super) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, ExpandError> {
    let re = substitution_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// Reverses a pattern but keeps each escape before the character it escapes.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec!['\0'; chars.len()];
    let last = chars.len().wrapping_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let out_idx = last - i;
        if chars[i] == '\\' && i != last {
            out[out_idx - 1] = chars[i];
            out[out_idx] = chars[i + 1];
            i += 2;
        } else {
            out[out_idx] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// `${VAR%p}` / `${VAR%%p}`: the value without its shortest / longest suffix matching.
pub(super) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, ExpandError> {
    // A regex finds the leftmost match, so reverse both to find the shortest/longest suffix.
    let rp = reverse_pattern(pattern);
    let rv: String = value.chars().rev().collect();
    let s = trim_prefix(&rp, &rv, greedy)?;
    Ok(s.chars().rev().collect())
}

/// Every match of `re` in `value` replaced. Every character can be a match: the result can
/// be the value's length times the replacement's, so it is capped as it grows. (`$name` in
/// the replacement is a group reference, as in Go's ReplaceAllString that BuildKit uses.)
pub(super) fn replace_every(re: &regex::Regex, value: &str, replacement: &str) -> Result<String, ExpandError> {
    let mut out = String::new();
    let mut last = 0;
    for caps in re.captures_iter(value) {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&value[last..m.start()]);
        caps.expand(replacement, &mut out);
        within_limit(out.len())?;
        last = m.end();
    }
    within_limit(out.len() + value.len() - last)?;
    out.push_str(&value[last..]);
    Ok(out)
}
