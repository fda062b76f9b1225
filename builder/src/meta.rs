//! Metadata instructions: how ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR, CMD, ENTRYPOINT,
//! SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD and MAINTAINER change the image config, exactly
//! as docker's builder records them.

use crate::error::{BuildError, Result};
use rbuild_parser::instruction::{CommandLine, Healthcheck, KeyValue, Kind};
use rbuild_parser::shell::{EnvLookup, Lexer};
use rbuild_store::config::{ContainerConfig, Empty, HealthConfig, ImageConfig, MAX_CONFIG_SIZE};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The shell docker uses when SHELL was not given.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];
/// The PATH docker adds when an image has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Expands one word with the current environment.
pub struct Words<'a> {
    pub lex: Lexer,
    pub env: &'a dyn EnvLookup,
}

impl Words<'_> {
    pub fn word(&self, w: &str) -> Result<String> {
        Ok(self.lex.process_word(w, self.env)?)
    }
    pub fn words(&self, w: &str) -> Result<Vec<String>> {
        Ok(self.lex.process_words(w, self.env)?)
    }
}

/// A stage's Env indexed by variable name, kept up to date as ENV changes it, and what
/// its instructions have added to the image config so far.
///
/// Cloning the whole Env for every instruction's expansion and scanning it for every ENV
/// pair made a Dockerfile with many ENV lines quadratic (100,000 lines: minutes); with
/// the index each lookup and each ENV pair costs the same however long the Env is.
#[derive(Debug, Clone, Default)]
pub struct StageEnv {
    /// Name → the value of its last entry (a bare `NAME` is the empty string).
    vars: HashMap<String, String>,
    /// Name → (index of its first entry, of its last).
    pos: HashMap<String, (usize, usize)>,
    /// Names with a `NAME=value` entry (what shadows a build arg for RUN).
    assigned: HashSet<String>,
    /// Entries of the Env indexed so far.
    indexed: usize,
    /// Bytes metadata instructions added to the config.
    grown: usize,
}

fn entry_name(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

impl StageEnv {
    /// Indexes what was added to `env` since the last call (a new stage's base Env, the
    /// default PATH); an Env that shrank is indexed again from the start.
    pub fn sync(&mut self, env: &[String]) {
        if env.len() < self.indexed {
            *self = StageEnv { grown: self.grown, ..Default::default() };
        }
        for (i, e) in env.iter().enumerate().skip(self.indexed) {
            let name = entry_name(e);
            let value = e.split_once('=').map_or("", |(_, v)| v);
            self.vars.insert(name.to_string(), value.to_string());
            self.pos.entry(name.to_string()).and_modify(|p| p.1 = i).or_insert((i, i));
            if e.contains('=') {
                self.assigned.insert(name.to_string());
            }
        }
        self.indexed = env.len();
    }

    /// The value of `name` (its last entry), if the Env has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// Is `name` given a value (`NAME=…`) in the Env?
    pub fn assigns(&self, name: &str) -> bool {
        self.assigned.contains(name)
    }

    /// `KEY=value` into `env`, replacing the first entry for KEY in place (as docker does,
    /// and as [`ContainerConfig::env_set`] does), or appended.
    pub fn set(&mut self, env: &mut Vec<String>, key: &str, value: &str) {
        self.sync(env);
        let entry = format!("{key}={value}");
        match self.pos.get(key).copied() {
            Some((first, last)) => {
                env[first] = entry;
                if first == last {
                    self.vars.insert(key.to_string(), value.to_string());
                }
            }
            None => {
                env.push(entry);
                self.vars.insert(key.to_string(), value.to_string());
                self.pos.insert(key.to_string(), (env.len() - 1, env.len() - 1));
                self.indexed = env.len();
            }
        }
        self.assigned.insert(key.to_string());
    }

    /// Counts `bytes` more in the config; an error once the stage's metadata would make a
    /// config larger than rbuild writes.
    pub fn grow(&mut self, bytes: usize) -> Result<()> {
        self.grown = self.grown.saturating_add(bytes);
        if self.grown > MAX_CONFIG_SIZE {
            return Err(BuildError::ConfigTooLarge(MAX_CONFIG_SIZE >> 20));
        }
        Ok(())
    }
}

/// What words expand with in a build step: the stage's Env, then its build args.
pub struct StepEnv<'a> {
    pub env: &'a StageEnv,
    pub args: &'a BTreeMap<String, Option<String>>,
}

impl EnvLookup for StepEnv<'_> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.env.get(name).or_else(|| self.args.get(name).and_then(|v| v.as_deref()))
    }
}

/// ENV's pairs, each expanded with the environment from before the instruction, and its
/// history text.
pub fn expand_env(
    pairs: &[rbuild_parser::instruction::KeyValue],
    words: &Words,
) -> Result<(Vec<(String, String)>, String)> {
    let expanded: Vec<(String, String)> =
        pairs.iter().map(|p| Ok((words.word(&p.key)?, words.word(&p.value)?))).collect::<Result<_>>()?;
    let mut msg = "ENV".to_string();
    for (k, v) in &expanded {
        msg.push_str(&format!(" {k}={v}"));
    }
    Ok((expanded, msg))
}

/// The shell of `cfg` (SHELL) or the default.
pub fn shell_of(cfg: &ContainerConfig) -> Vec<String> {
    if cfg.shell.is_empty() {
        DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
    } else {
        cfg.shell.clone()
    }
}

/// CMD/ENTRYPOINT/RUN arguments as the process argv: shell form runs under the SHELL.
/// docker prepends the shell to a shell form without arguments too (`CMD` alone is
/// `["/bin/sh", "-c"]`, a bare `RUN` runs `sh -c` and fails); only `[]` is empty.
pub fn resolve_cmdline(c: &CommandLine, cfg: &ContainerConfig) -> Vec<String> {
    if c.args.is_empty() && !c.shell_form {
        return vec![];
    }
    if c.shell_form {
        let mut v = shell_of(cfg);
        v.extend(c.args.iter().cloned());
        v
    } else {
        c.args.clone()
    }
}

/// `docker` normalisation of a WORKDIR against the current one.
pub fn normalize_workdir(current: &str, requested: &str) -> Result<String> {
    if requested.is_empty() {
        return Err(BuildError::EmptyWorkdir);
    }
    // docker keeps an absolute WORKDIR as written (`/tmp/` stays `/tmp/`) and cleans
    // only a relative one joined to the current.
    if requested.starts_with('/') {
        return Ok(requested.to_string());
    }
    Ok(clean_path(&format!("/{current}/{requested}")))
}

/// Go's `path.Clean` for absolute paths.
pub fn clean_path(p: &str) -> String {
    crate::ignore::clean(&format!("/{p}"))
}

/// An EXPOSE value `nat.ParsePortSpecs` refuses, in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("invalid proto: {0}")]
    Proto(String),
    /// Not a number from 0 to 65535; the container port as written.
    #[error("invalid containerPort: {0}")]
    Port(String),
    #[error("invalid range specified for container port: {0}")]
    Range(String),
}

/// `nat.ParsePortSpecs` for EXPOSE: `80`, `80/tcp`, `53/udp`, `8000-8002`, `ip:host:ctr/proto`.
pub fn parse_ports(specs: &[String]) -> std::result::Result<Vec<String>, PortError> {
    let mut out = Vec::new();
    for spec in specs {
        let (body, proto) = match spec.rsplit_once('/') {
            Some((b, p)) => (b, p.to_lowercase()),
            None => (spec.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(PortError::Proto(proto));
        }
        // The container port is the last ':' field.
        let port = body.rsplit(':').next().unwrap_or(body);
        let (start, end) = match port.split_once('-') {
            Some((a, b)) => (a, b),
            None => (port, port),
        };
        let parse = |s: &str| -> std::result::Result<u32, PortError> {
            s.parse::<u32>().ok().filter(|p| *p <= 65535).ok_or_else(|| PortError::Port(port.to_string()))
        };
        let (a, b) = (parse(start)?, parse(end)?);
        if b < a {
            return Err(PortError::Range(port.to_string()));
        }
        for p in a..=b {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

/// What a metadata instruction did, for the history.
pub struct Applied {
    pub created_by: String,
}

/// Applies a metadata instruction to the image config. `words` expands with the
/// environment of the moment; `cmd_set` tracks whether CMD was given in this stage (an
/// ENTRYPOINT clears an inherited CMD otherwise).
pub fn apply(cfg: &mut ImageConfig, kind: &Kind, words: &Words, cmd_set: &mut bool) -> Result<Applied> {
    let c = &mut cfg.config;
    let created_by = match kind {
        Kind::Env { pairs } => {
            // Every pair is expanded with the environment from before the instruction.
            let (expanded, msg) = expand_env(pairs, words)?;
            for (k, v) in expanded {
                c.env_set(&k, &v);
            }
            msg
        }
        Kind::Label { pairs } => apply_labels(c, pairs, words)?,
        Kind::Maintainer { name } => {
            cfg.author = Some(name.clone());
            format!("MAINTAINER {name}")
        }
        Kind::Expose { ports } => apply_expose(c, ports, words)?,
        Kind::Volume { paths, .. } => apply_volumes(c, paths, words)?,
        Kind::User { user } => {
            c.user = words.word(user)?;
            format!("USER {}", c.user)
        }
        Kind::Workdir { path } => {
            let p = words.word(path)?;
            c.working_dir = normalize_workdir(&c.working_dir, &p)?;
            format!("WORKDIR {}", c.working_dir)
        }
        Kind::Cmd(cl) => apply_cmd(c, cl, cmd_set),
        Kind::Entrypoint(cl) => apply_entrypoint(c, cl, *cmd_set),
        Kind::Shell { args } => {
            c.shell = args.clone();
            format!("SHELL [{}]", args.join(" "))
        }
        Kind::Stopsignal { signal } => {
            let s = words.word(signal)?;
            rbuild_runtime::signal::parse_signal(&s)?;
            c.stop_signal = s.clone();
            format!("STOPSIGNAL {s}")
        }
        Kind::Healthcheck(h) => apply_healthcheck(c, h),
        Kind::Onbuild(o) => {
            c.on_build.push(o.expression.clone());
            format!("ONBUILD {}", o.expression)
        }
        other => return Err(BuildError::NotMetadata(other.keyword())),
    };
    Ok(Applied { created_by: format!("/bin/sh -c #(nop)  {created_by}") })
}

/// LABEL: every pair expanded, a blank key refused.
fn apply_labels(c: &mut ContainerConfig, pairs: &[KeyValue], words: &Words) -> Result<String> {
    let mut msg = "LABEL".to_string();
    for p in pairs {
        let (k, v) = (words.word(&p.key)?, words.word(&p.value)?);
        if k.is_empty() {
            return Err(BuildError::BlankLabel);
        }
        msg.push_str(&format!(" {k}={v}"));
        c.labels.insert(k, v);
    }
    Ok(msg)
}

/// EXPOSE: the words expanded and split, then parsed as docker's port specs.
fn apply_expose(c: &mut ContainerConfig, ports: &[String], words: &Words) -> Result<String> {
    let mut all = Vec::new();
    for p in ports {
        all.extend(words.words(p)?);
    }
    for p in parse_ports(&all).map_err(BuildError::Port)? {
        c.exposed_ports.insert(p, Empty {});
    }
    Ok(format!("EXPOSE {}", all.join(" ")))
}

/// VOLUME: every path expanded, an empty one refused.
fn apply_volumes(c: &mut ContainerConfig, paths: &[String], words: &Words) -> Result<String> {
    let mut vs = Vec::new();
    for p in paths {
        let v = words.word(p)?;
        if v.is_empty() {
            return Err(BuildError::EmptyVolume);
        }
        c.volumes.insert(v.clone(), Empty {});
        vs.push(v);
    }
    Ok(format!("VOLUME [{}]", vs.join(" ")))
}

/// CMD: the argv (under the SHELL for shell form); a CMD with arguments counts as set.
fn apply_cmd(c: &mut ContainerConfig, cl: &CommandLine, cmd_set: &mut bool) -> String {
    let v = resolve_cmdline(cl, c);
    c.cmd = Some(v.clone());
    c.args_escaped = false;
    if !cl.args.is_empty() {
        *cmd_set = true;
    }
    format!("CMD {}", go_quoted_list(&v))
}

/// ENTRYPOINT: the argv, and an inherited CMD cleared unless this stage set one.
fn apply_entrypoint(c: &mut ContainerConfig, cl: &CommandLine, cmd_set: bool) -> String {
    // docker's parser makes an ENTRYPOINT without arguments (either form) nil.
    let v = if cl.args.is_empty() { vec![] } else { resolve_cmdline(cl, c) };
    c.entrypoint = Some(v.clone());
    c.args_escaped = false;
    if !cmd_set {
        c.cmd = None;
    }
    format!("ENTRYPOINT {}", go_quoted_list(&v))
}

/// HEALTHCHECK: the new config, its unset timings from the one before.
fn apply_healthcheck(c: &mut ContainerConfig, h: &Healthcheck) -> String {
    let mut hc = match h {
        Healthcheck::None => HealthConfig { test: vec!["NONE".into()], ..Default::default() },
        Healthcheck::Cmd(h) => HealthConfig {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        },
    };
    if let Some(old) = &c.healthcheck {
        inherit_unset_health(&mut hc, old);
    }
    let created_by = format!("HEALTHCHECK {}", go_quoted_list(&hc.test));
    c.healthcheck = Some(hc);
    created_by
}

/// The timings a HEALTHCHECK leaves at zero (also under NONE) come from the one before it.
/// A historical accident docker keeps: its builder shares the health config between the
/// step's container config and the next image's, and the daemon fills a container config's
/// zero health fields from its image (`merge` in daemon/commit.go) when it creates the
/// step's container — so `HEALTHCHECK NONE` over a base with `--interval=5s` keeps 5s.
fn inherit_unset_health(hc: &mut HealthConfig, old: &HealthConfig) {
    for (new, old) in [
        (&mut hc.interval, old.interval),
        (&mut hc.timeout, old.timeout),
        (&mut hc.start_period, old.start_period),
        (&mut hc.start_interval, old.start_interval),
        (&mut hc.retries, old.retries),
    ] {
        if *new == 0 {
            *new = old;
        }
    }
}

/// Go's `%q` of a string slice: `["a" "b"]`.
pub fn go_quoted_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| rbuild_parser::dump::go_quote(s)).collect();
    format!("[{}]", items.join(" "))
}

/// Applies `docker import --change` / `commit --change` instructions. Only the
/// instructions docker allows there are accepted.
pub fn apply_changes(cfg: &mut ImageConfig, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for change in changes {
        let ast = rbuild_parser::ast::parse(change).map_err(|e| BuildError::Change(change.clone(), e))?;
        for node in &ast.nodes {
            let ins = rbuild_parser::instruction::from_node(node).map_err(|e| BuildError::Change(change.clone(), e))?;
            if !matches!(
                ins.kind,
                Kind::Cmd(_)
                    | Kind::Entrypoint(_)
                    | Kind::Env { .. }
                    | Kind::Expose { .. }
                    | Kind::Label { .. }
                    | Kind::Onbuild(_)
                    | Kind::User { .. }
                    | Kind::Volume { .. }
                    | Kind::Workdir { .. }
                    | Kind::Stopsignal { .. }
            ) {
                return Err(BuildError::NotAChange(ins.kind.keyword().to_lowercase()));
            }
            let env = cfg.config.env.clone();
            let words = Words { lex: Lexer::new(ast.directives.escape), env: &env };
            apply(cfg, &ins.kind, &words, &mut cmd_set)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: &mut ImageConfig, src: &str, cmd_set: &mut bool) {
        let df = rbuild_parser::Dockerfile::parse(&format!("FROM x\n{src}\n")).unwrap();
        for ins in &df.stages[0].instructions {
            let env = cfg.config.env.clone();
            let w = Words { lex: Lexer::new('\\'), env: &env };
            apply(cfg, &ins.kind, &w, cmd_set).unwrap();
        }
    }

    #[test]
    fn env_pairs_expand_with_the_previous_environment() {
        let mut cfg = ImageConfig::default();
        let mut set = false;
        run(&mut cfg, "ENV A=1\nENV A=2 B=$A\nENV C ${A}x y", &mut set);
        assert_eq!(cfg.config.env, vec!["A=2", "B=1", "C=2x y"]);
    }

    proptest::proptest! {
        /// The index answers as scanning the Env did, and ENV through it changes the Env
        /// as `ContainerConfig::env_set` does — with duplicate and bare entries too (a
        /// base image may have them).
        #[test]
        fn stage_env_answers_as_the_env_itself(
            base in proptest::collection::vec((0u8..5, proptest::option::of("[a-c]{0,3}")), 0..8),
            sets in proptest::collection::vec((0u8..6, "[a-c]{0,3}"), 0..12),
        ) {
            let name = |k: u8| format!("V{k}");
            let mut plain = ContainerConfig::default();
            for (k, v) in &base {
                plain.env.push(match v { Some(v) => format!("{}={v}", name(*k)), None => name(*k) });
            }
            let mut indexed = plain.clone();
            let mut idx = StageEnv::default();
            for (k, v) in &sets {
                plain.env_set(&name(*k), v);
                idx.set(&mut indexed.env, &name(*k), v);
                proptest::prop_assert_eq!(&plain.env, &indexed.env);
                idx.sync(&indexed.env);
                for q in 0..6u8 {
                    proptest::prop_assert_eq!(idx.get(&name(q)), plain.env.lookup(&name(q)));
                    proptest::prop_assert_eq!(idx.assigns(&name(q)), plain.env_get(&name(q)).is_some());
                }
            }
        }
    }

    #[test]
    fn cmd_and_entrypoint() {
        let mut cfg = ImageConfig::default();
        cfg.config.cmd = Some(vec!["inherited".into()]);
        let mut set = false;
        run(&mut cfg, "SHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT echo hi", &mut set);
        assert_eq!(cfg.config.entrypoint, Some(vec!["/bin/bash".into(), "-c".into(), "echo hi".into()]));
        assert_eq!(cfg.config.cmd, None, "ENTRYPOINT without CMD in the stage clears the inherited CMD");
        run(&mut cfg, "CMD [\"a\"]\nENTRYPOINT [\"e\"]", &mut set);
        assert_eq!(cfg.config.cmd, Some(vec!["a".into()]));
    }

    #[test]
    fn cmd_without_arguments_is_the_shell_and_entrypoint_without_arguments_is_none() {
        let mut cfg = ImageConfig::default();
        let mut set = false;
        run(&mut cfg, "CMD", &mut set);
        assert_eq!(cfg.config.cmd, Some(vec!["/bin/sh".into(), "-c".into()]));
        assert!(!set, "a CMD without arguments does not count as set for a later ENTRYPOINT");
        run(&mut cfg, "CMD []", &mut set);
        assert_eq!(cfg.config.cmd, Some(vec![]));
        run(&mut cfg, "ENTRYPOINT", &mut set);
        assert_eq!(cfg.config.entrypoint, Some(vec![]));
    }

    #[test]
    fn a_healthcheck_keeps_the_timings_it_leaves_unset_from_the_one_before() {
        let mut cfg = ImageConfig::default();
        let mut set = false;
        run(&mut cfg, "HEALTHCHECK --interval=5s --retries=7 CMD true", &mut set);
        run(&mut cfg, "HEALTHCHECK NONE", &mut set);
        let hc = cfg.config.healthcheck.clone().unwrap();
        assert_eq!((hc.test, hc.interval, hc.retries), (vec!["NONE".to_string()], 5_000_000_000, 7));
        run(&mut cfg, "HEALTHCHECK --timeout=2s --retries=1 CMD x", &mut set);
        let hc = cfg.config.healthcheck.unwrap();
        assert_eq!((hc.interval, hc.timeout, hc.retries), (5_000_000_000, 2_000_000_000, 1));
    }

    #[test]
    fn ports_workdir_signal() {
        let mut cfg = ImageConfig::default();
        let mut set = false;
        run(
            &mut cfg,
            "ENV P=\"80 443\"\nEXPOSE $P 53/udp 8000-8001\nWORKDIR /a\nWORKDIR b/../c\nSTOPSIGNAL SIGINT",
            &mut set,
        );
        let ports: Vec<&str> = cfg.config.exposed_ports.keys().map(|s| s.as_str()).collect();
        assert_eq!(ports, vec!["443/tcp", "53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        assert_eq!(cfg.config.working_dir, "/a/c");
        assert_eq!(cfg.config.stop_signal, "SIGINT");
        assert_eq!(parse_ports(&["x".into()]).unwrap_err().to_string(), "invalid containerPort: x");
        assert_eq!(parse_ports(&["80/icmp".into()]).unwrap_err().to_string(), "invalid proto: icmp");
        assert_eq!(
            parse_ports(&["90-80".into()]).unwrap_err().to_string(),
            "invalid range specified for container port: 90-80"
        );
        assert_eq!(normalize_workdir("/a", "").unwrap_err().to_string(), "cannot normalize nothing");
    }

    #[test]
    fn changes_allow_only_docker_commit_instructions() {
        let mut cfg = ImageConfig::default();
        apply_changes(&mut cfg, &["CMD [\"sh\"]".into(), "ENV A=b".into()]).unwrap();
        assert_eq!(cfg.config.cmd, Some(vec!["sh".into()]));
        assert!(apply_changes(&mut cfg, &["RUN true".into()]).is_err());
    }
}
