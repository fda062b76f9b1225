//! The meaning layer: [`Node`]s become typed [`Instruction`]s with validated flags.
//!
//! Values stay as written (variables are expanded late, by the builder, with the ARG and
//! ENV state of the moment). Errors and their wording follow BuildKit's `instructions`
//! package, which docker's builder also uses.

mod error;
mod flags;
mod healthcheck;
mod mount;

use crate::ast::{go_lower, parse_heredoc_marker, Heredoc, Node};
use crate::diagnostic::{suggest, Diagnostic, Span};
pub use error::InstructionError;
pub use flags::{parse_go_duration, CsvError, DurationError, FlagError};
use flags::{FlagType, Flags};
use healthcheck::parse_healthcheck;
use mount::parse_mount;
pub use mount::{Mount, MountError, MountType, Sharing};
use serde::Serialize;

/// Every instruction keyword, for "did you mean" hints.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// One typed instruction with its place in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    pub span: Span,
    /// The instruction line as written (continuations joined).
    pub source: String,
    #[serde(flatten)]
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "UPPERCASE")]
pub enum Kind {
    From(FromArgs),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Shell { args: Vec<String> },
    Copy(CopyArgs),
    Add(CopyArgs),
    Env { pairs: Vec<KeyValue> },
    Label { pairs: Vec<KeyValue> },
    Maintainer { name: String },
    Expose { ports: Vec<String> },
    Volume { paths: Vec<String>, json: bool },
    User { user: String },
    Workdir { path: String },
    Arg { args: Vec<ArgDecl> },
    Onbuild(Onbuild),
    Stopsignal { signal: String },
    Healthcheck(Healthcheck),
}

impl Kind {
    /// The keyword in upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::From(_) => "FROM",
            Kind::Run(_) => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Shell { .. } => "SHELL",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Env { .. } => "ENV",
            Kind::Label { .. } => "LABEL",
            Kind::Maintainer { .. } => "MAINTAINER",
            Kind::Expose { .. } => "EXPOSE",
            Kind::Volume { .. } => "VOLUME",
            Kind::User { .. } => "USER",
            Kind::Workdir { .. } => "WORKDIR",
            Kind::Arg { .. } => "ARG",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Stopsignal { .. } => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
        }
    }
}

/// FROM's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromArgs {
    /// The image reference as written (may contain `$ARG`s).
    pub image: String,
    /// The stage name, lower-cased.
    pub name: Option<String>,
    pub platform: Option<String>,
}

/// RUN, CMD and ENTRYPOINT arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    /// Exec form: the argv. Shell form: one string, run by the SHELL.
    pub args: Vec<String>,
    /// True for shell form (the SHELL is prepended).
    pub shell_form: bool,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The command as written; its here-documents are in `cmd.heredocs`.
    #[serde(flatten)]
    pub cmd: CommandLine,
    /// What runs when the shell-form command has here-documents (see
    /// [`assemble_script`]); None when it has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<Script>,
    pub mounts: Vec<Mount>,
    pub network: Option<NetworkMode>,
    pub security: Option<Security>,
    pub devices: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Sandbox,
    Insecure,
}

/// COPY's and ADD's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyArgs {
    pub sources: Vec<String>,
    /// Here-documents used as sources (`COPY <<EOF /dst`).
    pub inline: Vec<Heredoc>,
    pub dest: String,
    /// `--from`: a stage, an image or a named context to copy from.
    pub from: Option<FromRef>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// ADD only.
    pub checksum: Option<String>,
    /// ADD only.
    pub keep_git_dir: bool,
    /// ADD only: `--unpack` (an archive's content is extracted; by default a local
    /// archive is, a downloaded one is not).
    pub unpack: Option<bool>,
    /// Written in JSON form.
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the old `KEY value` form.
    pub legacy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

/// What `COPY --from` or `RUN --mount=from=` names, as written, and the stage it is.
///
/// The value is never expanded (docker's builders take it literally: dependencies between
/// stages must be known before anything runs). A number is a stage index; a name is a
/// stage when one has it, else an image or a named build context.
/// [`crate::Dockerfile::parse`] resolves `stage` once for the whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FromRef {
    pub name: String,
    /// The stage it names; None: an image (or a named build context).
    pub stage: Option<usize>,
}

impl FromRef {
    pub fn new(name: &str) -> Self {
        FromRef { name: name.to_string(), stage: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger as written, keyword included, heredoc bodies appended: what the image
    /// config records.
    pub expression: String,
    /// The trigger's keyword in upper case.
    pub trigger: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "UPPERCASE")]
pub enum Healthcheck {
    None,
    Cmd(HealthConfig),
}

/// Durations are in nanoseconds, as the image config stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthConfig {
    /// `["CMD", args...]` or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub start_period: i64,
    pub start_interval: i64,
    pub retries: i64,
}

fn exactly_one(n: &Node, what: &'static str) -> Result<String, InstructionError> {
    if n.args.len() != 1 {
        return Err(InstructionError::ExactlyOne(what));
    }
    Ok(n.args[0].clone())
}

fn key_values(n: &Node, what: &'static str) -> Result<Vec<KeyValue>, InstructionError> {
    if n.args.is_empty() {
        return Err(InstructionError::AtLeastOne(what));
    }
    if !n.args.len().is_multiple_of(3) {
        return Err(InstructionError::TooManyArguments(what));
    }
    n.args
        .chunks(3)
        .map(|c| {
            if c[0].is_empty() {
                return Err(InstructionError::BlankName(what));
            }
            Ok(KeyValue { key: c[0].clone(), value: c[1].clone(), legacy: c[2].is_empty() })
        })
        .collect()
}

fn command_line(n: &Node) -> CommandLine {
    let args = if n.args.is_empty() {
        vec![]
    } else if n.json {
        n.args.clone()
    } else {
        vec![n.args.join(" ")]
    };
    CommandLine { args, shell_form: !n.json, heredocs: n.heredocs.clone() }
}

/// How a shell-form RUN with here-documents runs, as BuildKit's frontend assembles it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Script {
    /// One text the SHELL runs (`sh -c TEXT`).
    Shell(String),
    /// A lone here-document that starts with `#!`: written to `/dev/pipes/NAME` (mode
    /// 0755) and run through the SHELL, so its own interpreter runs it.
    File { name: String, content: String },
}

/// The script a shell-form RUN with here-documents runs: a lone `<<EOF` runs the
/// document's body (as a file when it starts with `#!`); otherwise each body (and its
/// delimiter) follows the line, for the shell to read as here-documents. `<<-` bodies
/// lose their leading tabs.
pub fn assemble_script(cmd: &CommandLine) -> Option<Script> {
    if !cmd.shell_form || cmd.heredocs.is_empty() {
        return None;
    }
    let body = |h: &Heredoc| -> String {
        if h.chomp {
            h.content.lines().map(|l| l.trim_start_matches('\t')).collect::<Vec<_>>().join("\n") + "\n"
        } else {
            h.content.clone()
        }
    };
    let line = cmd.args.join(" ");
    let lone = cmd.heredocs.len() == 1
        && line.trim().trim_start_matches("<<").trim_start_matches('-').trim_matches(|c| c == '"' || c == '\'')
            == cmd.heredocs[0].name;
    if lone {
        let h = &cmd.heredocs[0];
        if h.content.starts_with("#!") {
            return Some(Script::File { name: h.name.clone(), content: body(h) });
        }
        return Some(Script::Shell(body(h)));
    }
    let mut s = line;
    for h in &cmd.heredocs {
        s.push('\n');
        s.push_str(&body(h));
        s.push_str(&h.name);
    }
    Some(Script::Shell(s))
}

fn parse_copy(n: &Node, add: bool) -> Result<CopyArgs, InstructionError> {
    let what = if add { "ADD" } else { "COPY" };
    if n.args.len() < 2 {
        return Err(InstructionError::NoDestination(what));
    }
    let mut defs = vec![
        ("chown", FlagType::Str),
        ("chmod", FlagType::Str),
        ("link", FlagType::Bool),
        ("exclude", FlagType::Strings),
    ];
    if add {
        defs.extend([("checksum", FlagType::Str), ("keep-git-dir", FlagType::Bool), ("unpack", FlagType::Bool)]);
    } else {
        defs.extend([("from", FlagType::Str), ("parents", FlagType::Bool)]);
    }
    let f = Flags::parse(&n.flags, &defs)?;
    let dest = n.args[n.args.len() - 1].clone();
    if parse_heredoc_marker(&dest).is_some() && !n.json {
        return Err(InstructionError::HeredocDestination(what));
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for s in &n.args[..n.args.len() - 1] {
        // A marker counts only when the line reader found its body (an unbalanced quote
        // elsewhere on the line hides heredocs from it); otherwise it is a plain path.
        let found = parse_heredoc_marker(s)
            .filter(|_| !n.json)
            .and_then(|h| n.heredocs.iter().find(|d| d.name == h.name).cloned());
        match found {
            Some(doc) => {
                let mut doc = doc;
                if doc.chomp {
                    doc.content = doc.content.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect();
                }
                inline.push(doc);
            }
            None => sources.push(s.clone()),
        }
    }
    Ok(CopyArgs {
        sources,
        inline,
        dest,
        from: f.string("from").as_deref().map(FromRef::new),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link"),
        parents: f.bool("parents"),
        exclude: f.strings("exclude"),
        checksum: f.string("checksum"),
        keep_git_dir: f.bool("keep-git-dir"),
        unpack: f.string("unpack").map(|v| v == "true"),
        json: n.json,
    })
}

fn valid_stage_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some('a'..='z'))
        && c.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Gives a node its meaning.
pub fn from_node(n: &Node) -> Result<Instruction, Diagnostic> {
    let kind =
        kind_from_node(n).map_err(|e| Diagnostic { message: e.to_string(), span: Some(n.span), hint: e.hint() })?;
    Ok(Instruction { span: n.span, source: n.original.trim().to_string(), kind })
}

fn no_flags(n: &Node) -> Result<(), FlagError> {
    Flags::parse(&n.flags, &[]).map(|_| ())
}

fn kind_from_node(n: &Node) -> Result<Kind, InstructionError> {
    let name = n.name();
    Ok(match name.as_str() {
        "from" => parse_from(n)?,
        "run" => parse_run(n)?,
        "cmd" => {
            no_flags(n)?;
            Kind::Cmd(command_line(n))
        }
        "entrypoint" => {
            no_flags(n)?;
            Kind::Entrypoint(command_line(n))
        }
        "shell" => {
            no_flags(n)?;
            if n.args.is_empty() {
                return Err(InstructionError::AtLeastOne("SHELL"));
            }
            if !n.json {
                return Err(InstructionError::ShellNotJson);
            }
            Kind::Shell { args: n.args.clone() }
        }
        "copy" => Kind::Copy(parse_copy(n, false)?),
        "add" => Kind::Add(parse_copy(n, true)?),
        "env" => {
            no_flags(n)?;
            Kind::Env { pairs: key_values(n, "ENV")? }
        }
        "label" => {
            no_flags(n)?;
            Kind::Label { pairs: key_values(n, "LABEL")? }
        }
        "maintainer" => {
            let name = exactly_one(n, "MAINTAINER")?;
            no_flags(n)?;
            Kind::Maintainer { name }
        }
        "expose" => {
            if n.args.is_empty() {
                return Err(InstructionError::AtLeastOne("EXPOSE"));
            }
            no_flags(n)?;
            let mut ports = n.args.clone();
            ports.sort();
            Kind::Expose { ports }
        }
        "volume" => {
            if n.args.is_empty() {
                return Err(InstructionError::AtLeastOne("VOLUME"));
            }
            no_flags(n)?;
            let mut paths = Vec::new();
            for v in &n.args {
                let v = v.trim();
                if v.is_empty() {
                    return Err(InstructionError::EmptyVolume);
                }
                paths.push(v.to_string());
            }
            Kind::Volume { paths, json: n.json }
        }
        "user" => {
            let user = exactly_one(n, "USER")?;
            no_flags(n)?;
            Kind::User { user }
        }
        "workdir" => {
            let path = exactly_one(n, "WORKDIR")?;
            no_flags(n)?;
            Kind::Workdir { path }
        }
        "arg" => parse_arg(n)?,
        "onbuild" => parse_onbuild(n)?,
        "stopsignal" => Kind::Stopsignal { signal: exactly_one(n, "STOPSIGNAL")? },
        "healthcheck" => Kind::Healthcheck(parse_healthcheck(n)?),
        _ => {
            return Err(InstructionError::Unknown {
                keyword: n.keyword.clone(),
                suggestion: suggest(&n.keyword, KEYWORDS),
            })
        }
    })
}

/// `FROM [--platform=P] IMAGE [AS NAME]`.
fn parse_from(n: &Node) -> Result<Kind, InstructionError> {
    let f = Flags::parse(&n.flags, &[("platform", FlagType::Str)])?;
    let stage = match n.args.len() {
        3 if n.args[1].eq_ignore_ascii_case("as") => {
            let s = n.args[2].to_lowercase();
            if !valid_stage_name(&s) {
                return Err(InstructionError::StageName(n.args[2].clone()));
            }
            Some(s)
        }
        1 => None,
        _ => return Err(InstructionError::FromArguments),
    };
    Ok(Kind::From(FromArgs { image: n.args[0].clone(), name: stage, platform: f.string("platform") }))
}

/// `RUN [--mount=…] [--network=…] [--security=…] [--device=…] COMMAND`.
fn parse_run(n: &Node) -> Result<Kind, InstructionError> {
    let f = Flags::parse(
        &n.flags,
        &[
            ("mount", FlagType::Strings),
            ("network", FlagType::Str),
            ("security", FlagType::Str),
            ("device", FlagType::Strings),
        ],
    )?;
    let mounts = f.strings("mount").iter().map(|s| parse_mount(s)).collect::<Result<Vec<_>, _>>()?;
    let network = match f.string("network").as_deref() {
        None => None,
        Some("default") => Some(NetworkMode::Default),
        Some("none") => Some(NetworkMode::None),
        Some("host") => Some(NetworkMode::Host),
        Some(other) => return Err(InstructionError::NetworkMode(other.to_string())),
    };
    let security = match f.string("security").as_deref() {
        None => None,
        Some("sandbox") => Some(Security::Sandbox),
        Some("insecure") => Some(Security::Insecure),
        Some(other) => return Err(InstructionError::SecurityMode(other.to_string())),
    };
    let cmd = command_line(n);
    Ok(Kind::Run(Run { script: assemble_script(&cmd), cmd, mounts, network, security, devices: f.strings("device") }))
}

/// `ARG NAME[=DEFAULT] …`.
fn parse_arg(n: &Node) -> Result<Kind, InstructionError> {
    if n.args.is_empty() {
        return Err(InstructionError::AtLeastOne("ARG"));
    }
    no_flags(n)?;
    let args = n
        .args
        .iter()
        .map(|a| match a.split_once('=') {
            Some(("", _)) => Err(InstructionError::BlankName("ARG")),
            Some((k, v)) => Ok(ArgDecl { name: k.to_string(), default: Some(v.to_string()) }),
            None => Ok(ArgDecl { name: a.clone(), default: None }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Kind::Arg { args })
}

/// `ONBUILD INSTRUCTION`: the trigger checked now, kept as text for the images built
/// FROM this one.
fn parse_onbuild(n: &Node) -> Result<Kind, InstructionError> {
    let Some(sub) = &n.sub else { return Err(InstructionError::AtLeastOne("ONBUILD")) };
    no_flags(n)?;
    let trigger = go_lower(&sub.keyword).to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err(InstructionError::OnbuildChain),
        "MAINTAINER" | "FROM" => return Err(InstructionError::OnbuildTrigger(trigger)),
        _ => {}
    }
    // The trigger must itself be a valid instruction.
    kind_from_node(sub)?;
    let mut expression = strip_onbuild_keyword(&n.original);
    for h in &n.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Kind::Onbuild(Onbuild { expression, trigger }))
}

/// `(?i)^\s*ONBUILD\s*` removed.
fn strip_onbuild_keyword(s: &str) -> String {
    let t = s.trim_start();
    let rest = if t.len() >= 7 && t[..7].eq_ignore_ascii_case("onbuild") { &t[7..] } else { t };
    rest.trim_start().to_string()
}

#[cfg(test)]
mod tests;
