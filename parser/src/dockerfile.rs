//! A whole Dockerfile: global ARGs and stages of typed instructions, and the canonical
//! printer that turns it back into text.

use crate::ast::{self, Directives, Heredoc, Warning};
use crate::diagnostic::{Diagnostic, Span};
use crate::instruction::{self, CopyArgs, FromRef, Healthcheck, Instruction, Kind};
use crate::shell::Lexer;
use serde::Serialize;
use std::fmt::Write;

/// One build stage: its FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub index: usize,
    /// The FROM instruction.
    pub from: Instruction,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The stage name (`FROM x AS name`), lower-cased.
    pub fn name(&self) -> Option<&str> {
        match &self.from.kind {
            Kind::From(f) => f.name.as_deref(),
            _ => None,
        }
    }

    /// The base image reference as written.
    pub fn base(&self) -> &str {
        match &self.from.kind {
            Kind::From(f) => &f.image,
            _ => "",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    pub directives: Directives,
    /// ARG instructions before the first FROM.
    pub meta_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
    #[serde(skip)]
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// Parses and types a whole Dockerfile.
    pub fn parse(src: &str) -> Result<Dockerfile, Diagnostic> {
        let ast = ast::parse(src)?;
        let mut meta_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for node in &ast.nodes {
            let ins = instruction::from_node(node)?;
            match &ins.kind {
                Kind::From(_) => stages.push(Stage { index: stages.len(), from: ins, instructions: vec![] }),
                Kind::Arg { .. } if stages.is_empty() => meta_args.push(ins),
                _ => match stages.last_mut() {
                    Some(s) => s.instructions.push(ins),
                    None => return Err(Diagnostic::at("no build stage in current context", node.span)),
                },
            }
        }
        if stages.is_empty() {
            let span = ast.nodes.last().map(|n| n.span).unwrap_or_default();
            return Err(Diagnostic::at("no build stage in current context", span));
        }
        let mut df = Dockerfile { directives: ast.directives, meta_args, stages, warnings: ast.warnings };
        let names = stages_names(&df.stages);
        let mut stages = std::mem::take(&mut df.stages);
        for s in &mut stages {
            for ins in &mut s.instructions {
                df.resolve_from(s.index, ins, &names)?;
            }
        }
        df.stages = stages;
        Ok(df)
    }

    /// The ONBUILD triggers of a stage's base image, as typed instructions of this file:
    /// their `--from` values name its stages. An error names the trigger and is located at
    /// `span` (the stage's FROM).
    pub fn triggers(&self, stage: usize, triggers: &[String], span: Span) -> Result<Vec<Instruction>, Diagnostic> {
        let names = stages_names(&self.stages);
        let mut out = Vec::new();
        for t in triggers {
            let bad = |e: Diagnostic| Diagnostic::at(format!("invalid ONBUILD trigger {t:?}: {e}"), span);
            let ast = ast::parse(t).map_err(bad)?;
            for node in &ast.nodes {
                let mut ins = instruction::from_node(node).map_err(bad)?;
                ins.span = span;
                self.resolve_from(stage, &mut ins, &names).map_err(bad)?;
                out.push(ins);
            }
        }
        Ok(out)
    }

    /// Resolves the `--from` values of `ins` (an instruction of stage `stage`) to stages.
    fn resolve_from(&self, stage: usize, ins: &mut Instruction, names: &[Option<String>]) -> Result<(), Diagnostic> {
        let refs: Vec<&mut FromRef> = match &mut ins.kind {
            Kind::Copy(c) | Kind::Add(c) => c.from.iter_mut().collect(),
            Kind::Run(r) => r.mounts.iter_mut().filter_map(|m| m.from.as_mut()).collect(),
            _ => vec![],
        };
        let lex = Lexer::new(self.directives.escape);
        for r in refs {
            // docker's builders take the value literally; say so instead of looking up
            // `$X` as an image (BuildKit's own later message).
            if lex.process_word(&r.name, &std::collections::BTreeMap::<String, String>::new()).ok().as_deref()
                != Some(r.name.as_str())
            {
                return Err(Diagnostic::at(
                    "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
                    ins.span,
                ));
            }
            r.stage = match crate::graph::stage_index(&r.name, names.len()) {
                Some(Ok(i)) => Some(i),
                Some(Err(e)) => return Err(Diagnostic::at(e.to_string(), ins.span)),
                None => {
                    let lower = r.name.to_lowercase();
                    names.iter().position(|n| n.as_deref() == Some(lower.as_str()))
                }
            };
            if r.stage == Some(stage) {
                return Err(Diagnostic::at(format!("circular dependency detected on stage: {}", r.name), ins.span));
            }
        }
        Ok(())
    }

    /// The same file with every span and source text cleared, for comparing meaning.
    pub fn without_positions(&self) -> Dockerfile {
        let clear =
            |i: &Instruction| Instruction { span: Span::default(), source: String::new(), kind: i.kind.clone() };
        Dockerfile {
            directives: self.directives.clone(),
            meta_args: self.meta_args.iter().map(clear).collect(),
            stages: self
                .stages
                .iter()
                .map(|s| Stage {
                    index: s.index,
                    from: clear(&s.from),
                    instructions: s.instructions.iter().map(clear).collect(),
                })
                .collect(),
            warnings: vec![],
        }
    }

    /// Canonical Dockerfile text with the same meaning.
    pub fn print(&self) -> String {
        let mut out = String::new();
        let d = &self.directives;
        if let Some(s) = &d.syntax {
            let _ = writeln!(out, "# syntax={s}");
        }
        if d.escape != '\\' {
            let _ = writeln!(out, "# escape={}", d.escape);
        }
        if let Some(c) = &d.check {
            let _ = writeln!(out, "# check={c}");
        }
        out.push('\n');
        for i in &self.meta_args {
            out.push_str(&print_instruction(&i.kind, d.escape));
            out.push('\n');
        }
        for s in &self.stages {
            out.push_str(&print_instruction(&s.from.kind, d.escape));
            out.push('\n');
            for i in &s.instructions {
                out.push_str(&print_instruction(&i.kind, d.escape));
                out.push('\n');
            }
        }
        out
    }
}

/// Each stage's name, by index.
fn stages_names(stages: &[Stage]) -> Vec<Option<String>> {
    stages.iter().map(|s| s.name().map(String::from)).collect()
}

/// A flag word that reads back as exactly `--name=value`.
fn flag(name: &str, value: &str, esc: char) -> String {
    // Flags are scanned byte-wise, one character per byte: write each character as its byte.
    let bytes: Vec<u8> = value.chars().map(|c| if (c as u32) < 256 { c as u32 as u8 } else { b'?' }).collect();
    let value = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    let plain = !value.is_empty()
        && !value.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == esc || (c as u32) >= 0x80);
    if plain {
        return format!("--{name}={value}");
    }
    let mut q = String::new();
    for c in value.chars() {
        if c == '"' || c == esc {
            q.push(esc);
        }
        q.push(c);
    }
    format!("--{name}=\"{q}\"")
}

fn json_array(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// Shell-form words joined by spaces, or by form feeds (also a separator for docker, but
/// not JSON whitespace) when the spaced text would read as a JSON array.
fn join_words(words: &[String]) -> String {
    let spaced = words.join(" ");
    if crate::json::parse_json_array(&spaced) == crate::json::JsonForm::NotJson {
        spaced
    } else {
        words.join("\u{c}")
    }
}

/// Puts `--` before argument text that would otherwise read as a flag.
fn args_text(text: &str) -> String {
    if text.starts_with("--") {
        format!("-- {text}")
    } else {
        text.to_string()
    }
}

fn heredoc_bodies(docs: &[Heredoc]) -> String {
    let mut s = String::new();
    for h in docs {
        s.push('\n');
        s.push_str(&h.content);
        s.push_str(&h.name);
    }
    s
}

fn heredoc_marker(h: &Heredoc) -> String {
    let dash = if h.chomp { "-" } else { "" };
    let fd = if h.fd != 0 { h.fd.to_string() } else { String::new() };
    if h.expand {
        format!("{fd}<<{dash}{}", h.name)
    } else {
        format!("{fd}<<{dash}\"{}\"", h.name)
    }
}

fn print_command(keyword: &str, flags: &[String], args: &[String], shell_form: bool, heredocs: &[Heredoc]) -> String {
    let mut s = keyword.to_string();
    for f in flags {
        s.push(' ');
        s.push_str(f);
    }
    if shell_form {
        if let Some(text) = args.first() {
            s.push(' ');
            s.push_str(&args_text(text));
        }
    } else {
        s.push(' ');
        s.push_str(&json_array(args));
    }
    s.push_str(&heredoc_bodies(heredocs));
    s
}

fn print_copy(keyword: &str, c: &CopyArgs, esc: char) -> String {
    let mut flags = Vec::new();
    let opt = |flags: &mut Vec<String>, name: &str, v: &Option<String>| {
        if let Some(v) = v {
            flags.push(flag(name, v, esc));
        }
    };
    opt(&mut flags, "from", &c.from.as_ref().map(|f| f.name.clone()));
    opt(&mut flags, "chown", &c.chown);
    opt(&mut flags, "chmod", &c.chmod);
    opt(&mut flags, "checksum", &c.checksum);
    for (on, name) in [(c.link, "link"), (c.parents, "parents"), (c.keep_git_dir, "keep-git-dir")] {
        if on {
            flags.push(format!("--{name}"));
        }
    }
    if let Some(u) = c.unpack {
        flags.push(format!("--unpack={u}"));
    }
    for e in &c.exclude {
        flags.push(flag("exclude", e, esc));
    }
    let mut s = keyword.to_string();
    for f in &flags {
        s.push(' ');
        s.push_str(f);
    }
    if c.json {
        let mut all = c.sources.clone();
        all.push(c.dest.clone());
        s.push(' ');
        s.push_str(&json_array(&all));
    } else {
        let mut words: Vec<String> = c.sources.clone();
        words.extend(c.inline.iter().map(heredoc_marker));
        words.push(c.dest.clone());
        s.push(' ');
        s.push_str(&args_text(&join_words(&words)));
        s.push_str(&heredoc_bodies(&c.inline));
    }
    s
}

/// One instruction as canonical text (heredoc bodies included, no trailing newline).
pub fn print_instruction(k: &Kind, esc: char) -> String {
    let text = print_instruction_text(k, esc);
    // Text that ends with the escape character (possible when trailing whitespace such as
    // \v was trimmed) must not read as a continuation: end the line with a \v again.
    let (line, rest) = match text.find('\n') {
        Some(i) => text.split_at(i),
        None => (text.as_str(), ""),
    };
    if line.ends_with(esc) {
        format!("{line}\u{b}{rest}")
    } else {
        text
    }
}

fn print_instruction_text(k: &Kind, esc: char) -> String {
    let kv = |kw: &str, pairs: &[instruction::KeyValue]| -> String {
        match pairs {
            [p] if p.legacy => format!("{kw} {} {}", args_text(&p.key), p.value),
            _ => {
                let body: Vec<String> = pairs.iter().map(|p| format!("{}={}", p.key, p.value)).collect();
                format!("{kw} {}", args_text(&body.join(" ")))
            }
        }
    };
    match k {
        Kind::From(f) => {
            let mut s = "FROM".to_string();
            if let Some(p) = &f.platform {
                s.push(' ');
                s.push_str(&flag("platform", p, esc));
            }
            s.push(' ');
            s.push_str(&args_text(&f.image));
            if let Some(n) = &f.name {
                s.push_str(" AS ");
                s.push_str(n);
            }
            s
        }
        Kind::Run(r) => {
            let mut flags: Vec<String> = r.mounts.iter().map(|m| flag("mount", &m.spec, esc)).collect();
            if let Some(n) = r.network {
                flags.push(format!("--network={}", serde_plain(&n)));
            }
            if let Some(sec) = r.security {
                flags.push(format!("--security={}", serde_plain(&sec)));
            }
            for d in &r.devices {
                flags.push(flag("device", d, esc));
            }
            print_command("RUN", &flags, &r.cmd.args, r.cmd.shell_form, &r.cmd.heredocs)
        }
        Kind::Cmd(c) => print_command("CMD", &[], &c.args, c.shell_form, &c.heredocs),
        Kind::Entrypoint(c) => print_command("ENTRYPOINT", &[], &c.args, c.shell_form, &c.heredocs),
        Kind::Shell { args } => format!("SHELL {}", json_array(args)),
        Kind::Copy(c) => print_copy("COPY", c, esc),
        Kind::Add(c) => print_copy("ADD", c, esc),
        Kind::Env { pairs } => kv("ENV", pairs),
        Kind::Label { pairs } => kv("LABEL", pairs),
        Kind::Maintainer { name } => format!("MAINTAINER {}", args_text(name)),
        Kind::Expose { ports } => format!("EXPOSE {}", args_text(&ports.join(" "))),
        Kind::Volume { paths, json } => {
            if *json {
                format!("VOLUME {}", json_array(paths))
            } else {
                format!("VOLUME {}", args_text(&join_words(paths)))
            }
        }
        Kind::User { user } => format!("USER {}", args_text(user)),
        Kind::Workdir { path } => format!("WORKDIR {}", args_text(path)),
        Kind::Stopsignal { signal } => format!("STOPSIGNAL {}", args_text(signal)),
        Kind::Arg { args } => {
            let words: Vec<String> = args
                .iter()
                .map(|a| match &a.default {
                    Some(d) => format!("{}={d}", a.name),
                    None => a.name.clone(),
                })
                .collect();
            format!("ARG {}", args_text(&words.join(" ")))
        }
        Kind::Onbuild(o) => format!("ONBUILD {}", o.expression),
        Kind::Healthcheck(Healthcheck::None) => "HEALTHCHECK NONE".to_string(),
        Kind::Healthcheck(Healthcheck::Cmd(h)) => {
            let mut s = "HEALTHCHECK".to_string();
            for (name, v) in [
                ("interval", h.interval),
                ("timeout", h.timeout),
                ("start-period", h.start_period),
                ("start-interval", h.start_interval),
            ] {
                if v != 0 {
                    let _ = write!(s, " --{name}={v}ns");
                }
            }
            if h.retries != 0 {
                let _ = write!(s, " --retries={}", h.retries);
            }
            let json = h.test.first().map(String::as_str) == Some("CMD");
            let rest = &h.test[1..];
            if json {
                let _ = write!(s, " CMD {}", json_array(rest));
            } else {
                let _ = write!(s, " CMD {}", rest.join(" "));
            }
            s
        }
    }
}

fn serde_plain<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(src: &str) {
        let a = Dockerfile::parse(src).unwrap();
        let printed = a.print();
        let b = Dockerfile::parse(&printed).unwrap_or_else(|e| panic!("reparse of\n{printed}\nfailed: {e}"));
        assert_eq!(a.without_positions(), b.without_positions(), "printed:\n{printed}");
    }

    #[test]
    fn stages_and_meta_args() {
        let d = Dockerfile::parse("ARG A=1\nFROM x AS one\nRUN a\nFROM one\nCOPY --from=one / /\n").unwrap();
        assert_eq!(d.meta_args.len(), 1);
        assert_eq!(d.stages.len(), 2);
        assert_eq!(d.stages[0].name(), Some("one"));
        assert_eq!(d.stages[1].instructions.len(), 1);
        assert!(Dockerfile::parse("RUN x\nFROM a").is_err());
    }

    /// `--from` is resolved once, here: names (any case) and numbers to stages, anything
    /// else left to be an image; ONBUILD triggers of a base image are resolved the same way.
    #[test]
    fn from_refs_resolve_to_stages() {
        let d = Dockerfile::parse("FROM x AS One\nFROM y\nCOPY --from=ONE /a /a\nCOPY --from=0 /b /b\nCOPY --from=img:1 /c /c\nRUN --mount=from=one,target=/m true\n").unwrap();
        let stages: Vec<Option<usize>> = d.stages[1]
            .instructions
            .iter()
            .map(|i| match &i.kind {
                Kind::Copy(c) => c.from.as_ref().unwrap().stage,
                Kind::Run(r) => r.mounts[0].from.as_ref().unwrap().stage,
                _ => panic!(),
            })
            .collect();
        assert_eq!(stages, vec![Some(0), Some(0), None, Some(0)]);
        let t = d.triggers(1, &["COPY --from=one /x /y".into(), "RUN echo hi".into()], Span::line(2, 1)).unwrap();
        assert_eq!(t.len(), 2);
        assert!(matches!(&t[0].kind, Kind::Copy(c) if c.from.as_ref().unwrap().stage == Some(0)));
        assert_eq!(t[1].span, Span::line(2, 1));
        let e = d.triggers(1, &["COPY --from=1 /x /y".into()], Span::line(2, 1)).unwrap_err();
        assert!(e.message.contains("invalid ONBUILD trigger") && e.message.contains("circular"), "{e}");
        assert!(Dockerfile::parse("FROM x\nCOPY --from=1 / /\n").unwrap_err().message.contains("invalid stage index"));
    }

    #[test]
    fn printing_roundtrips() {
        roundtrip("# escape=`\nARG B=busybox\nFROM --platform=linux/amd64 $B AS base\nRUN --mount=type=cache,target=/c --network=none echo `\n hi\nENV A=1 B=\"2 3\"\nENV C old form\nLABEL \"x y\"=z\nCOPY --chown=\"a b\" --exclude=*.md [\"a b\", \"/c d/\"]\nADD --checksum=sha256:00 http://x/y /z\nCMD [\"a\"]\nENTRYPOINT echo $X\nSHELL [\"/bin/sh\", \"-c\"]\nEXPOSE 80 53/udp\nVOLUME /a /b\nVOLUME [\"/c d\"]\nUSER app:app\nWORKDIR /w\nSTOPSIGNAL SIGINT\nARG X Y=2\nONBUILD RUN echo on\nHEALTHCHECK --interval=5s --retries=3 CMD curl x\nHEALTHCHECK NONE\nMAINTAINER me <me@x>\nRUN -- --weird\n");
        roundtrip("FROM a\nRUN <<EOF\necho hi\nEOF\nCOPY <<-\"X\" /f\n\tbody $HOME\nX\nONBUILD RUN <<E\nx\nE\n");
    }
}
