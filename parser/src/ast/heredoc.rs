//! Here-documents: which words of a RUN, COPY or ADD line are heredoc markers (the
//! bodies are read by [`super::parse`]).

use super::Heredoc;
use crate::shell::{Lexer, NoEnv};
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::char;
use nom::combinator::opt;
use nom::IResult;

/// `^(\d*)<<(-?)(.*)$` with no `<` in the name part.
fn heredoc_word(i: &str) -> IResult<&str, (&str, bool, &str)> {
    let (i, fd) = take_while(|c: char| c.is_ascii_digit())(i)?;
    let (i, _) = tag("<<")(i)?;
    let (i, dash) = opt(char('-'))(i)?;
    let (i, rest) = take_while1(|c| c != '<')(i)?;
    if !i.is_empty() {
        return Err(nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Eof)));
    }
    Ok((i, (fd, dash.is_some(), rest)))
}

/// If `word` is a heredoc marker (`<<EOF`, `<<-"EOF"`, `3<<EOF`), its heredoc (body empty).
pub fn parse_heredoc_marker(word: &str) -> Option<Heredoc> {
    let (_, (fd, chomp, rest)) = heredoc_word(word).ok()?;
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &NoEnv).ok()?;
    if words.len() != 1 {
        return None;
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &NoEnv).ok()?;
    if raw.len() != 1 {
        return None;
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Some(Heredoc {
        name: words[0].clone(),
        fd: fd.parse().unwrap_or(0),
        expand: quotes(&words[0]) == quotes(&raw[0]),
        chomp,
        content: String::new(),
    })
}

/// The heredoc markers of a RUN/COPY/ADD line, in order. The line is split into shell
/// words with quotes and escapes kept; `<<` keeps the whitespace after it in its word.
pub(super) fn heredocs_from_line(line: &str) -> Vec<Heredoc> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    // Join `<<` with the whitespace that follows it so `<< EOF` stays one word.
    let mut joined = String::with_capacity(line.len());
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut in_single = false;
    let mut in_double = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && !in_single && i + 1 < chars.len() {
            joined.push(c);
            joined.push(chars[i + 1]);
            i += 2;
            continue;
        }
        match c {
            '\'' if !in_double => in_single = !in_single,
            '"' if !in_single => in_double = !in_double,
            _ => {}
        }
        joined.push(c);
        if !in_single && !in_double && c == '<' && chars.get(i + 1) == Some(&'<') {
            joined.push('<');
            i += 2;
            while i < chars.len() && matches!(chars[i], ' ' | '\t') {
                // An escaped space stays inside the word for the word splitter.
                joined.push('\\');
                joined.push(chars[i]);
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    let Ok(words) = lex.process_words(&joined, &NoEnv) else { return vec![] };
    words
        .iter()
        .filter_map(|w| {
            // Undo the escaping of the joined whitespace before matching.
            let w = w.replace("\\ ", " ").replace("\\\t", "\t");
            parse_heredoc_marker(&w)
        })
        .collect()
}
