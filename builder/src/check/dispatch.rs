//! The checks that need the state of a stage as BuildKit dispatches it: the FROM line's
//! arguments against the global ARGs, then each instruction against the environment the
//! stage has at that point (its base image's, its ARGs and ENVs).

use super::rules::{self, go_quote, suggest};
use super::{from_of, lines_of, CheckConfig, CheckOptions, Sink};
use crate::ignore::Matcher;
use rbuild_parser::ast::Node;
use rbuild_parser::instruction::{CopyArgs, Kind};
use rbuild_parser::shell::{EnvLookup, Lexer};
use rbuild_parser::{Diagnostic, Dockerfile, Graph, Instruction, Stage};
use std::collections::{BTreeMap, BTreeSet};

/// Build arguments BuildKit never puts in the environment.
const NON_ENV_ARGS: &[&str] = &["BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"];

/// An ordered environment (BuildKit's EnvList: a replaced key keeps its place).
#[derive(Debug, Clone, Default)]
struct Env(Vec<(String, String)>);

impl Env {
    fn set(&mut self, k: &str, v: &str) {
        match self.0.iter_mut().find(|(x, _)| x == k) {
            Some(e) => e.1 = v.to_string(),
            None => self.0.push((k.to_string(), v.to_string())),
        }
    }
    fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
    }
}

impl EnvLookup for Env {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name)
    }
}

/// The global ARGs as a build sees them: the platform ARGs, then the ARGs before the first
/// FROM (their defaults, or the build's values when `with_build_args`).
struct Globals {
    env: Env,
    /// Every global ARG name, also those without a value.
    declared: BTreeSet<String>,
}

impl Globals {
    fn new(df: &Dockerfile, opts: &CheckOptions<'_>, with_build_args: bool) -> Globals {
        let target = opts.target.clone().or_else(|| df.stages.last().and_then(|s| s.name().map(String::from)));
        let target = target.unwrap_or_else(|| "default".into());
        let mut env = Env::default();
        for (k, v) in [
            ("BUILDPLATFORM", "linux/amd64"),
            ("BUILDOS", "linux"),
            ("BUILDOSVERSION", ""),
            ("BUILDARCH", "amd64"),
            ("BUILDVARIANT", ""),
            ("TARGETPLATFORM", "linux/amd64"),
            ("TARGETOS", "linux"),
            ("TARGETOSVERSION", ""),
            ("TARGETARCH", "amd64"),
            ("TARGETVARIANT", ""),
            ("TARGETSTAGE", target.as_str()),
        ] {
            env.set(k, opts.build_args.get(k).map(String::as_str).unwrap_or(v));
        }
        let lex = Lexer::new(df.directives.escape);
        let mut declared = BTreeSet::new();
        for ins in &df.meta_args {
            let Kind::Arg { args } = &ins.kind else { continue };
            for a in args {
                declared.insert(a.name.clone());
                let value = match (opts.build_args.get(&a.name).filter(|_| with_build_args), &a.default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => Some(lex.process_word(d, &env).unwrap_or_else(|_| d.clone())),
                    (None, None) => None,
                };
                if let Some(v) = value {
                    env.set(&a.name, &v);
                }
            }
        }
        Globals { env, declared }
    }

    /// The names a FROM line may use: declared ARGs and the platform ones.
    fn known(&self) -> Vec<&str> {
        let mut k: BTreeSet<&str> = self.declared.iter().map(String::as_str).collect();
        k.extend(self.env.keys());
        k.into_iter().collect()
    }
}

pub(crate) fn run(
    df: &Dockerfile,
    nodes: &BTreeMap<usize, &Node>,
    file_cfg: &CheckConfig,
    opts: &CheckOptions<'_>,
    sink: &mut Sink,
) -> Result<(), Diagnostic> {
    invalid_default_args(df, opts, file_cfg, sink);
    let globals = Globals::new(df, opts, true);
    for s in &df.stages {
        let cfg = file_cfg.for_comments(nodes.get(&s.from.span.start_line).map(|n| &n.comments[..]).unwrap_or(&[]));
        from_line(df, s, &globals, &cfg, sink);
    }
    // A target builds what it needs (the graph says which); a check without one
    // dispatches every stage.
    let needed: Vec<bool> = match &opts.target {
        Some(t) => Graph::build(df, &opts.build_args, Some(t))?.stages.iter().map(|s| s.needed).collect(),
        None => vec![true; df.stages.len()],
    };
    let lex = Lexer::new(df.directives.escape);
    let mut done: Vec<Option<State>> = vec![None; df.stages.len()];
    for (i, s) in df.stages.iter().enumerate() {
        if !needed[i] {
            continue;
        }
        let base = lex.process_word(s.base(), &globals.env).unwrap_or_default().to_lowercase();
        // The latest earlier stage of that name (BuildKit keeps the last of duplicates).
        let stage = df.stages[..i].iter().rposition(|p| p.name() == Some(base.as_str()));
        let mut st = match stage {
            Some(j) => done[j].clone().map(State::inherited).unwrap_or_default(),
            None if base == "scratch" => State::from_image(Some(super::BaseImage::default())),
            None => State::from_image(opts.base.and_then(|f| f(&base))),
        };
        let mut d = Dispatch { st: &mut st, lex, globals: &globals, opts, sink };
        for ins in &s.instructions {
            let node = nodes.get(&ins.span.start_line).copied();
            let cfg = file_cfg.for_comments(node.map(|n| &n.comments[..]).unwrap_or(&[]));
            d.instruction(ins, node, &cfg);
        }
        done[i] = Some(st);
    }
    Ok(())
}

/// A FROM line's image and platform against the global ARGs.
fn from_line(df: &Dockerfile, s: &Stage, g: &Globals, cfg: &CheckConfig, sink: &mut Sink) {
    let lex = Lexer::new(df.directives.escape);
    let lines = lines_of(s.from.span);
    let known = g.known();
    let undeclared = |word: &str, sink: &mut Sink| {
        let Ok(e) = lex.process(word, &g.env) else { return None };
        for arg in e.unmatched.iter().filter(|a| !known.contains(&a.as_str())) {
            let mut d = format!("FROM argument '{arg}' is not declared");
            if let Some(s) = suggest(arg, known.iter().copied()) {
                d.push_str(&format!(" (did you mean {s}?)"));
            }
            sink.warn(cfg, &rules::UNDEFINED_ARG_IN_FROM, d, lines);
        }
        Some(e)
    };
    undeclared(s.base(), sink);
    let Some(platform) = from_of(s).and_then(|f| f.platform.as_deref()) else { return };
    let Some(e) = undeclared(platform, sink) else { return };
    let only_target = e.matched.len() == 1 && e.unmatched.is_empty() && e.matched.contains("TARGETPLATFORM");
    if only_target && g.env.get("TARGETPLATFORM") == Some(e.word.as_str()) {
        let d =
            format!("Setting platform to predefined {platform} in FROM is redundant as this is the default behavior");
        sink.warn(cfg, &rules::REDUNDANT_TARGET_PLATFORM, d, lines);
    }
    if e.matched.is_empty() && e.unmatched.is_empty() {
        if let Some((os, arch)) = parse_platform(&e.word) {
            let name = s.name().unwrap_or("");
            if !name.contains(os.as_str()) && !name.contains(arch.as_str()) {
                let d = format!("FROM --platform flag should not use constant value {}", go_quote(&e.word));
                sink.warn(cfg, &rules::FROM_PLATFORM_FLAG_CONST_DISALLOWED, d, lines);
            }
        }
    }
}

/// containerd's platform parser, enough for the checks: `os[/arch[/variant]]` or a bare
/// architecture, normalised (`x86_64` is amd64, `aarch64` arm64).
fn parse_platform(s: &str) -> Option<(String, String)> {
    const OSES: &[&str] =
        &["linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "android", "ios"];
    let norm_arch = |a: &str| match a.to_lowercase().as_str() {
        "x86_64" | "x86-64" | "amd64" => Some("amd64".to_string()),
        "aarch64" | "arm64" => Some("arm64".to_string()),
        "i386" | "386" => Some("386".to_string()),
        a @ ("arm" | "ppc64le" | "s390x" | "riscv64" | "mips64le" | "mips64" | "loong64" | "ppc64" | "wasm") => {
            Some(a.to_string())
        }
        _ => None,
    };
    let parts: Vec<&str> = s.split('/').collect();
    let os = parts[0].to_lowercase();
    match parts.len() {
        1 if OSES.contains(&os.as_str()) => Some((os, "amd64".into())),
        1 => norm_arch(parts[0]).map(|a| ("linux".into(), a)),
        2 | 3 if OSES.contains(&os.as_str()) => norm_arch(parts[1]).map(|a| (os, a)),
        _ => None,
    }
}

/// With only the global ARGs' defaults, every FROM must name a valid image.
fn invalid_default_args(df: &Dockerfile, opts: &CheckOptions<'_>, cfg: &CheckConfig, sink: &mut Sink) {
    let g = Globals::new(df, opts, false);
    let lex = Lexer::new(df.directives.escape);
    for s in &df.stages {
        let Ok(name) = lex.process_word(s.base(), &g.env) else { return };
        if name.is_empty() || rbuild_store::Reference::parse(&name).is_err() {
            let d = format!("Default value for ARG {} results in empty or invalid base image name", s.base());
            sink.warn(cfg, &rules::INVALID_DEFAULT_ARG_IN_FROM, d, lines_of(s.from.span));
        }
    }
}

/// Where CMD, ENTRYPOINT or HEALTHCHECK was last set in the stage.
type Tracker = Option<(usize, usize)>;

/// What a stage has at an instruction.
#[derive(Debug, Clone, Default)]
struct State {
    env: Env,
    /// The base image's environment is unknown: undefined variables cannot be told.
    env_unknown: bool,
    shell: Vec<String>,
    /// ARGs declared in the stage (and the stages it builds on).
    declared: Vec<String>,
    workdir_set: bool,
    cmd: Tracker,
    entrypoint: Tracker,
    healthcheck: Tracker,
}

impl State {
    fn from_image(img: Option<super::BaseImage>) -> State {
        let mut st = State { env_unknown: img.is_none(), ..Default::default() };
        if let Some(img) = img {
            for e in &img.env {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                st.env.set(k, v);
            }
            st.shell = img.shell;
            // BuildKit gives every stage a PATH.
            if st.env.get("PATH").is_none() {
                st.env.set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            }
        }
        st
    }

    /// A stage built on this one: its environment, SHELL, ARGs and WORKDIR, not where
    /// CMD and the like were set.
    fn inherited(self) -> State {
        State { cmd: None, entrypoint: None, healthcheck: None, ..self }
    }
}

struct Dispatch<'a, 'b> {
    st: &'a mut State,
    lex: Lexer,
    globals: &'a Globals,
    opts: &'a CheckOptions<'b>,
    sink: &'a mut Sink,
}

impl Dispatch<'_, '_> {
    /// Expands `word` with the stage's environment, reporting variables it lacks.
    fn expand(&mut self, word: &str, lines: (usize, usize), cfg: &CheckConfig) -> String {
        self.expand_with(self.lex, word, lines, cfg)
    }

    fn expand_with(&mut self, lex: Lexer, word: &str, lines: (usize, usize), cfg: &CheckConfig) -> String {
        let Ok(e) = lex.process(word, &self.st.env) else { return word.to_string() };
        if !self.st.env_unknown {
            for v in &e.unmatched {
                if self.st.declared.contains(v) || NON_ENV_ARGS.contains(&v.as_str()) {
                    continue;
                }
                let mut d = format!("Usage of undefined variable '${v}'");
                if let Some(s) = suggest(v, self.st.env.keys()) {
                    d.push_str(&format!(" (did you mean ${s}?)"));
                }
                self.sink.warn(cfg, &rules::UNDEFINED_VAR, d, lines);
            }
        }
        e.word
    }

    fn secret(&mut self, ins: &str, key: &str, lines: (usize, usize), cfg: &CheckConfig) {
        if looks_secret(key) {
            let d = format!("Do not use ARG or ENV instructions for sensitive data ({ins} {})", go_quote(key));
            self.sink.warn(cfg, &rules::SECRETS_USED_IN_ARG_OR_ENV, d, lines);
        }
    }

    fn legacy(&mut self, kw: &str, lines: (usize, usize), cfg: &CheckConfig) {
        let d = format!("\"{kw} key=value\" should be used instead of legacy \"{kw} key value\" format");
        self.sink.warn(cfg, &rules::LEGACY_KEY_VALUE_FORMAT, d, lines);
    }

    fn once(&mut self, which: fn(&mut State) -> &mut Tracker, kw: &str, lines: (usize, usize), cfg: &CheckConfig) {
        if let Some(prev) = which(self.st).replace(lines) {
            let d = format!(
                "Multiple {kw} instructions should not be used in the same stage because only the last one will be used"
            );
            self.sink.warn(cfg, &rules::MULTIPLE_INSTRUCTIONS_DISALLOWED, d, prev);
        }
    }

    fn instruction(&mut self, ins: &Instruction, node: Option<&Node>, cfg: &CheckConfig) {
        let lines = lines_of(ins.span);
        let kw = node.map(|n| n.keyword.as_str()).unwrap_or("");
        match &ins.kind {
            Kind::Env { pairs } | Kind::Label { pairs } => {
                let is_env = matches!(ins.kind, Kind::Env { .. });
                let expanded: Vec<(String, String)> = pairs
                    .iter()
                    .map(|p| (self.expand(&p.key, lines, cfg), self.expand(&p.value, lines, cfg)))
                    .collect();
                for (p, (k, v)) in pairs.iter().zip(&expanded) {
                    if p.legacy {
                        self.legacy(kw, lines, cfg);
                    }
                    if is_env {
                        self.secret("ENV", k, lines, cfg);
                        self.st.env.set(k, v);
                    }
                }
            }
            Kind::Arg { args } => self.arg(args, lines, cfg),
            Kind::Copy(c) => self.copy(c, "Copy", lines, cfg),
            Kind::Add(c) => self.copy(c, "Add", lines, cfg),
            Kind::Workdir { path } => {
                let p = self.expand(path, lines, cfg);
                if !self.st.workdir_set && !p.starts_with('/') {
                    let d = format!(
                        "Relative workdir {} can have unexpected results if the base image changes",
                        go_quote(&p)
                    );
                    self.sink.warn(cfg, &rules::WORKDIR_RELATIVE_PATH, d, lines);
                }
                self.st.workdir_set = true;
            }
            Kind::User { user: w } | Kind::Stopsignal { signal: w } => {
                self.expand(w, lines, cfg);
            }
            Kind::Volume { paths, .. } => paths.iter().for_each(|p| {
                self.expand(p, lines, cfg);
            }),
            Kind::Run(r) => {
                for m in &r.mounts {
                    for w in [&m.source, &m.id].into_iter().flatten().chain([&m.target]) {
                        self.expand(w, lines, cfg);
                    }
                }
            }
            Kind::Cmd(c) | Kind::Entrypoint(c) => {
                let is_cmd = matches!(ins.kind, Kind::Cmd(_));
                self.once(if is_cmd { |s| &mut s.cmd } else { |s| &mut s.entrypoint }, kw, lines, cfg);
                if c.shell_form && self.st.shell.is_empty() {
                    let d = format!(
                        "JSON arguments recommended for {kw} to prevent unintended behavior related to OS signals"
                    );
                    self.sink.warn(cfg, &rules::JSON_ARGS_RECOMMENDED, d, lines);
                }
            }
            Kind::Healthcheck(_) => self.once(|s| &mut s.healthcheck, kw, lines, cfg),
            Kind::Shell { args } => self.st.shell = args.clone(),
            // The ports as written, in their order (the typed instruction sorts them).
            Kind::Expose { ports } => self.expose(node.map(|n| &n.args[..]).unwrap_or(ports), lines, cfg),
            _ => {}
        }
    }

    fn arg(&mut self, args: &[rbuild_parser::instruction::ArgDecl], lines: (usize, usize), cfg: &CheckConfig) {
        for a in args {
            self.secret("ARG", &a.name, lines, cfg);
            let value = if let Some(v) = self.opts.build_args.get(&a.name) {
                Some(v.clone())
            } else if let Some(d) = &a.default {
                Some(self.expand(d, lines, cfg))
            } else {
                self.globals.env.get(&a.name).map(String::from)
            };
            if let Some(v) = value.filter(|_| !NON_ENV_ARGS.contains(&a.name.as_str())) {
                self.st.env.set(&a.name, &v);
            }
            if !self.st.declared.contains(&a.name) {
                self.st.declared.push(a.name.clone());
            }
        }
    }

    fn copy(&mut self, c: &CopyArgs, cmd: &str, lines: (usize, usize), cfg: &CheckConfig) {
        let mut words: Vec<&String> = vec![];
        words.extend(c.chown.iter());
        words.extend(c.chmod.iter());
        words.extend(c.checksum.iter());
        for w in words {
            self.expand(w, lines, cfg);
        }
        let sources: Vec<String> = c.sources.iter().map(|s| self.expand(s, lines, cfg)).collect();
        self.expand(&c.dest, lines, cfg);
        let raw = Lexer { skip_process_quotes: true, ..Lexer::new('\\') };
        for h in c.inline.iter().filter(|h| h.expand) {
            self.expand_with(raw, &h.content, lines, cfg);
        }
        if c.from.is_some() {
            return;
        }
        let Some(m) = self.opts.ignore.filter(|m| !m.has_exclusions()) else { return };
        for src in sources {
            if cmd == "Add" && is_remote(&src) {
                continue;
            }
            if let Some(s) = ignored_source(m, &src) {
                let d = format!("Attempting to {cmd} file {} that is excluded by .dockerignore", go_quote(&s));
                self.sink.warn(cfg, &rules::COPY_IGNORED_FILE, d, lines);
            }
        }
    }

    fn expose(&mut self, ports: &[String], lines: (usize, usize), cfg: &CheckConfig) {
        for p in ports {
            let Ok(words) = self.lex.process_words(p, &self.st.env) else { continue };
            for raw in words {
                let (rest, proto) = raw.rsplit_once('/').unwrap_or((raw.as_str(), "tcp"));
                if proto != proto.to_lowercase() {
                    let d = format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase");
                    self.sink.warn(cfg, &rules::EXPOSE_PROTO_CASING, d, lines);
                }
                if has_host_part(rest) {
                    let d = format!(
                        "EXPOSE instruction should not define an IP address or host-port mapping, found '{raw}'"
                    );
                    self.sink.warn(cfg, &rules::EXPOSE_INVALID_FORMAT, d, lines);
                }
            }
        }
    }
}

fn is_remote(src: &str) -> bool {
    src.starts_with("http://") || src.starts_with("https://") || src.starts_with("git@") || src.contains(".git#")
}

/// `[ip:]host:container` has more than the container port (an IPv6 address in brackets).
fn has_host_part(s: &str) -> bool {
    let s = match s.rfind(']') {
        Some(i) => &s[i..],
        None => s,
    };
    s.contains(':') || s.starts_with(']')
}

/// The source as BuildKit names it when .dockerignore excludes it (or one of its parents);
/// `.` and `/` only when a pattern excludes everything.
fn ignored_source(m: &Matcher, src: &str) -> Option<String> {
    let s = crate::ignore::clean(src);
    if s == "." || s == "/" {
        let all = m.patterns.iter().any(|p| !p.exclusion && matches!(p.cleaned.as_str(), "*" | "**" | "**/*"));
        if !all {
            return None;
        }
    }
    m.matches(&s).then_some(s)
}

/// BuildKit's secret-name test: a word (between `_` or the ends) that names a secret, and
/// none that says it is public.
fn looks_secret(key: &str) -> bool {
    let words: Vec<String> = key.split('_').map(|w| w.to_lowercase()).collect();
    let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    has(&["apikey", "auth", "credential", "credentials", "key", "password", "pword", "passwd", "secret", "token"])
        && !has(&["public", "file", "version"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for k in ["AWS_SECRET_ACCESS_KEY", "api_key", "GITHUB_TOKEN", "password", "AUTH", "db_Password_x"] {
            assert!(looks_secret(k), "{k}");
        }
        for k in ["KEYBOARD", "PUBLIC_KEY", "TOKEN_FILE", "NODE_VERSION", "MONKEY", "passwords"] {
            assert!(!looks_secret(k), "{k}");
        }
    }

    #[test]
    fn platforms() {
        assert_eq!(parse_platform("linux/amd64"), Some(("linux".into(), "amd64".into())));
        assert_eq!(parse_platform("linux/arm64/v8"), Some(("linux".into(), "arm64".into())));
        assert_eq!(parse_platform("x86_64"), Some(("linux".into(), "amd64".into())));
        assert_eq!(parse_platform("nonsense/x"), None);
    }

    #[test]
    fn host_parts() {
        assert!(!has_host_part("80"));
        assert!(has_host_part("8080:80"));
        assert!(has_host_part("127.0.0.1:8080:80"));
        assert!(has_host_part("[::1]:8080:80"));
        assert!(!has_host_part("80-90"));
    }
}
