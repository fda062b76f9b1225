//! Build checks (`rbuild check`, `build --check`): BuildKit's Dockerfile lint rules with
//! its names, messages and locations, and its `# check=skip=…;error=true` directive.
//!
//! The rules run where BuildKit runs them: the syntax ones (casing, MAINTAINER, stage
//! names, empty continuations, FROM arguments) on every stage; the ones that need the
//! state of a stage (undefined variables, relative WORKDIR, repeated CMD, shell-form
//! CMD without a SHELL, secrets in ARG/ENV, files .dockerignore excludes) on the stages
//! the build dispatches — all of them for a check without `--target`. What a base image
//! contributes (its environment and SHELL) comes from [`CheckOptions::base`].
//!
//! ```
//! use rbuild_builder::check::{check, CheckOptions};
//! let r = check("FROM scratch as Build\nCMD echo hi\n", &CheckOptions::default()).unwrap();
//! let names: Vec<&str> = r.warnings.iter().map(|w| w.rule.name).collect();
//! assert_eq!(names, ["StageNameCasing", "FromAsCasing", "JSONArgsRecommended"]);
//! ```

mod dispatch;
pub mod rules;
#[cfg(test)]
mod tests;

use crate::ignore::Matcher;
use rbuild_parser::ast::{self, Node};
use rbuild_parser::instruction::Kind;
use rbuild_parser::{Diagnostic, Dockerfile};
pub use rules::Rule;
use std::collections::BTreeMap;

/// A `# check=` directive (or the `BUILDKIT_DOCKERFILE_CHECK` build argument).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    pub skip_all: bool,
    pub skip: Vec<String>,
    pub experimental_all: bool,
    pub experimental: Vec<String>,
    /// `error=true`: warnings fail the build.
    pub error: bool,
}

/// A `check` directive that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse check options: {0}")]
pub struct CheckConfigError(String);

fn names(v: &str) -> (bool, Vec<String>) {
    let v = v.trim();
    if v == "all" {
        return (true, vec![]);
    }
    (false, v.split(',').map(|s| s.trim().to_string()).collect())
}

impl CheckConfig {
    /// `skip=A,B|all;experimental=…;error=true|false`, as BuildKit reads it.
    pub fn parse(s: &str) -> Result<CheckConfig, CheckConfigError> {
        let s = s.trim();
        let mut c = CheckConfig::default();
        if s.is_empty() {
            return Ok(c);
        }
        for part in s.splitn(3, ';') {
            let Some((k, v)) = part.split_once('=') else {
                return Err(CheckConfigError(format!("invalid check option {part:?}")));
            };
            match k.trim() {
                "skip" => (c.skip_all, c.skip) = names(v),
                "experimental" => (c.experimental_all, c.experimental) = names(v),
                "error" => {
                    c.error = match v.trim().to_ascii_lowercase().as_str() {
                        "1" | "t" | "true" => true,
                        "0" | "f" | "false" => false,
                        _ => return Err(CheckConfigError(format!("invalid check option {part:?}: not a boolean"))),
                    }
                }
                k => return Err(CheckConfigError(format!("invalid check option {k:?}"))),
            }
        }
        Ok(c)
    }

    /// This config with `other`'s skips and experiments added (a comment above an
    /// instruction).
    fn merged(&self, other: &CheckConfig) -> CheckConfig {
        let mut c = self.clone();
        c.skip_all |= other.skip_all;
        c.experimental_all |= other.experimental_all;
        c.skip.extend(other.skip.iter().cloned());
        c.experimental.extend(other.experimental.iter().cloned());
        c
    }

    /// The config for an instruction: the first `check=` among the comments above it
    /// merged in (BuildKit reads comments as directives).
    fn for_comments(&self, comments: &[String]) -> CheckConfig {
        for c in comments {
            let c = c.trim_start_matches('#').trim();
            let Some((k, v)) = c.split_once('=') else { continue };
            if !k.trim().eq_ignore_ascii_case("check") {
                continue;
            }
            let v = v.trim().split(' ').next().unwrap_or("");
            return match CheckConfig::parse(v) {
                Ok(o) => self.merged(&o),
                Err(_) => self.clone(),
            };
        }
        self.clone()
    }

    fn allows(&self, r: &Rule) -> bool {
        if r.experimental {
            return self.experimental_all || self.experimental.iter().any(|n| n == r.name);
        }
        !self.skip_all && !self.skip.iter().any(|n| n == r.name)
    }
}

/// One finding: the rule, its message and the lines of the instruction it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub rule: &'static Rule,
    pub detail: String,
    /// First and last line (1-based) of the instruction.
    pub lines: (usize, usize),
}

impl Warning {
    /// The one-line form a build prints: `Rule: detail (line N)`.
    pub fn short(&self) -> String {
        format!("{}: {} (line {})", self.rule.name, self.detail, self.lines.0)
    }
}

/// What a base image contributes to the checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseImage {
    /// `KEY=VALUE` entries of its config.
    pub env: Vec<String>,
    pub shell: Vec<String>,
}

/// Finds a base image's config by reference.
pub type BaseLookup<'a> = dyn Fn(&str) -> Option<BaseImage> + 'a;

/// How to check.
#[derive(Default)]
pub struct CheckOptions<'a> {
    pub build_args: BTreeMap<String, String>,
    /// Check what a build of this stage dispatches (None: every stage, as `--check`).
    pub target: Option<String>,
    /// The context's .dockerignore, for CopyIgnoredFile.
    pub ignore: Option<&'a Matcher>,
    /// A base image's config by reference; None when it is not known (then the rules that
    /// need its environment stay quiet for the stage).
    pub base: Option<&'a BaseLookup<'a>>,
    /// Replaces the file's `# check=` directive (BUILDKIT_DOCKERFILE_CHECK).
    pub config: Option<CheckConfig>,
}

/// The result of checking a Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// In line order.
    pub warnings: Vec<Warning>,
    pub config: CheckConfig,
}

impl Report {
    /// With `error=true` and warnings: the error a build fails with.
    pub fn failure(&self) -> Option<String> {
        if !self.config.error || self.warnings.is_empty() {
            return None;
        }
        let mut names: Vec<&str> = self.warnings.iter().map(|w| w.rule.name).collect();
        names.sort_unstable();
        names.dedup();
        Some(format!("lint violation found for rules: {}", names.join(", ")))
    }
}

/// Collects warnings, each under the config that applies where it is found.
pub(crate) struct Sink {
    pub warnings: Vec<Warning>,
}

impl Sink {
    pub fn warn(&mut self, cfg: &CheckConfig, rule: &'static Rule, detail: String, lines: (usize, usize)) {
        if cfg.allows(rule) {
            self.warnings.push(Warning { rule, detail, lines });
        }
    }
}

pub(crate) fn lines_of(span: rbuild_parser::Span) -> (usize, usize) {
    (span.start_line, span.end_line.max(span.start_line))
}

/// Checks the Dockerfile `src`.
pub fn check(src: &str, opts: &CheckOptions<'_>) -> Result<Report, Diagnostic> {
    let tree = ast::parse(src)?;
    let df = Dockerfile::parse(src)?;
    let file_cfg = match &opts.config {
        Some(c) => c.clone(),
        None => CheckConfig::parse(tree.directives.check.as_deref().unwrap_or(""))
            .map_err(|e| Diagnostic::new(e.to_string()))?,
    };
    let nodes: BTreeMap<usize, &Node> = tree.nodes.iter().map(|n| (n.span.start_line, n)).collect();
    let mut sink = Sink { warnings: Vec::new() };
    for w in &tree.warnings {
        sink.warn(&file_cfg, &rules::NO_EMPTY_CONTINUATION, "Empty continuation line".into(), (w.line, w.line));
    }
    syntax_rules(&tree.nodes, &file_cfg, &mut sink);
    stage_names(&df, &file_cfg, &mut sink);
    instruction_casing(&df, &nodes, &file_cfg, &mut sink);
    dispatch::run(&df, &nodes, &file_cfg, opts, &mut sink)?;
    let mut warnings = sink.warnings;
    warnings.sort_by_key(|w| w.lines.0);
    Ok(Report { warnings, config: file_cfg })
}

/// MAINTAINER, and a FROM's stage name and `AS` casing (BuildKit checks these as it
/// types each instruction).
fn syntax_rules(nodes: &[Node], file_cfg: &CheckConfig, sink: &mut Sink) {
    for n in nodes {
        let cfg = file_cfg.for_comments(&n.comments);
        let lines = lines_of(n.span);
        match n.name().as_str() {
            "maintainer" => sink.warn(
                &cfg,
                &rules::MAINTAINER_DEPRECATED,
                "Maintainer instruction is deprecated in favor of using label".into(),
                lines,
            ),
            "from" if n.args.len() == 3 => {
                let (kw, as_, name) = (&n.keyword, &n.args[1], &n.args[2]);
                if *name != name.to_lowercase() {
                    let d = format!("Stage name '{name}' should be lowercase");
                    sink.warn(&cfg, &rules::STAGE_NAME_CASING, d, lines);
                }
                let lower = *kw == kw.to_lowercase();
                let upper = *kw == kw.to_uppercase();
                let matches = if lower { *as_ == as_.to_lowercase() } else { !upper || *as_ == as_.to_uppercase() };
                if !matches {
                    let d = format!("'{as_}' and '{kw}' keywords' casing do not match");
                    sink.warn(&cfg, &rules::FROM_AS_CASING, d, lines);
                }
            }
            _ => {}
        }
    }
}

fn stage_names(df: &Dockerfile, cfg: &CheckConfig, sink: &mut Sink) {
    let mut seen: Vec<&str> = Vec::new();
    for s in &df.stages {
        let Some(name) = s.name() else { continue };
        let lines = lines_of(s.from.span);
        if matches!(name, "context" | "scratch") {
            let d = format!("Stage name should not use the same name as reserved stage {}", rules::go_quote(name));
            sink.warn(cfg, &rules::RESERVED_STAGE_NAME, d, lines);
        }
        if seen.contains(&name) {
            let d = format!("Duplicate stage name {}, stage names should be unique", rules::go_quote(name));
            sink.warn(cfg, &rules::DUPLICATE_STAGE_NAME, d, lines);
        }
        seen.push(name);
    }
}

/// The keyword of an instruction as written.
pub(crate) fn keyword<'a>(nodes: &BTreeMap<usize, &'a Node>, span: rbuild_parser::Span) -> &'a str {
    nodes.get(&span.start_line).map(|n| n.keyword.as_str()).unwrap_or("")
}

/// Every instruction of the stages (not the global ARGs) in the case most of them have.
fn instruction_casing(df: &Dockerfile, nodes: &BTreeMap<usize, &Node>, cfg: &CheckConfig, sink: &mut Sink) {
    let all: Vec<(&str, (usize, usize))> = df
        .stages
        .iter()
        .flat_map(|s| std::iter::once(&s.from).chain(&s.instructions))
        .map(|i| (keyword(nodes, i.span), lines_of(i.span)))
        .collect();
    let lower = all.iter().filter(|(k, _)| *k == k.to_lowercase()).count();
    let upper = all.iter().filter(|(k, _)| *k == k.to_uppercase() && *k != k.to_lowercase()).count();
    let majority_lower = lower > upper;
    for (k, lines) in all {
        let wrong = if majority_lower { k != k.to_lowercase() } else { k != k.to_uppercase() };
        if wrong {
            let case = if majority_lower { "lowercase" } else { "uppercase" };
            let d = format!("Command '{k}' should match the case of the command majority ({case})");
            sink.warn(cfg, &rules::CONSISTENT_INSTRUCTION_CASING, d, lines);
        }
    }
}

/// A stage's FROM: the instruction kind, for the dispatch.
pub(crate) fn from_of(s: &rbuild_parser::Stage) -> Option<&rbuild_parser::instruction::FromArgs> {
    match &s.from.kind {
        Kind::From(f) => Some(f),
        _ => None,
    }
}

/// Renders a report as `docker build --check` prints it: a count, then per warning the
/// rule, its link, the detail and the instruction in its context.
pub fn render(report: &Report, file: &str, src: &str) -> String {
    let mut out = String::new();
    match report.warnings.len() {
        0 => {}
        1 => out.push_str("Check complete, 1 warning has been found!\n"),
        n => out.push_str(&format!("Check complete, {n} warnings have been found!\n")),
    }
    for w in &report.warnings {
        out.push_str(&format!("\nWARNING: {} - {}\n{}\n", w.rule.name, w.rule.url, w.detail));
        out.push_str(&source_excerpt(file, src, w.lines));
    }
    if report.warnings.is_empty() {
        out.push_str("Check complete, no warnings found.\n");
    }
    out
}

/// BuildKit's source excerpt: `FILE:LINE`, the lines around the instruction, the
/// instruction's lines marked `>>>`.
pub fn source_excerpt(file: &str, src: &str, (first, last): (usize, usize)) -> String {
    let src = src.strip_prefix('\u{feff}').unwrap_or(src);
    let lines: Vec<&str> = src.split('\n').collect();
    if first < 1 || first > lines.len() {
        return String::new();
    }
    let (mut start, mut end) = (first, last.min(lines.len()));
    let pad = if end == start { 4 } else { 2 };
    let mut p = 0;
    while p < pad {
        if start > 1 {
            start -= 1;
            p += 1;
        }
        if end != lines.len() {
            end += 1;
            p += 1;
        }
        p += 1;
    }
    let mut out = format!("{file}:{first}\n--------------------\n");
    for i in start..=end {
        let mark = if (first..=last).contains(&i) { ">>>" } else { "   " };
        out.push_str(&format!(" {i:>3} | {mark} {}\n", lines[i - 1]));
    }
    out.push_str("--------------------\n");
    out
}
