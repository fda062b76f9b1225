//! Metadata instructions: how ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR, CMD, ENTRYPOINT,
//! SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD and MAINTAINER change the image config, exactly
//! as docker's builder records them.

use crate::error::{BuildError, Result};
use rbuild_parser::instruction::{CommandLine, Healthcheck, Kind};
use rbuild_parser::shell::{EnvLookup, Lexer};
use rbuild_parser::Span;
use rbuild_store::config::{ContainerConfig, Empty, HealthConfig, ImageConfig};

/// The shell docker uses when SHELL was not given.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];
/// The PATH docker adds when an image has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Expands one word with the current environment.
pub struct Words<'a> {
    pub lex: Lexer,
    pub env: &'a dyn EnvLookup,
    pub span: Span,
}

impl Words<'_> {
    pub fn word(&self, w: &str) -> Result<String> {
        self.lex.process_word(w, self.env).map_err(|e| BuildError::at(e.to_string(), self.span))
    }
    pub fn words(&self, w: &str) -> Result<Vec<String>> {
        self.lex.process_words(w, self.env).map_err(|e| BuildError::at(e.to_string(), self.span))
    }
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
pub fn resolve_cmdline(c: &CommandLine, cfg: &ContainerConfig) -> Vec<String> {
    if c.args.is_empty() {
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
pub fn normalize_workdir(current: &str, requested: &str) -> Result<String, String> {
    if requested.is_empty() {
        return Err("cannot normalize nothing".into());
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

/// `nat.ParsePortSpecs` for EXPOSE: `80`, `80/tcp`, `53/udp`, `8000-8002`, `ip:host:ctr/proto`.
pub fn parse_ports(specs: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for spec in specs {
        let (body, proto) = match spec.rsplit_once('/') {
            Some((b, p)) => (b, p.to_lowercase()),
            None => (spec.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("invalid proto: {proto}"));
        }
        // The container port is the last ':' field.
        let port = body.rsplit(':').next().unwrap_or(body);
        let (start, end) = match port.split_once('-') {
            Some((a, b)) => (a, b),
            None => (port, port),
        };
        let parse = |s: &str| -> Result<u32, String> {
            s.parse::<u32>().ok().filter(|p| *p <= 65535).ok_or_else(|| format!("invalid containerPort: {port}"))
        };
        let (a, b) = (parse(start)?, parse(end)?);
        if b < a {
            return Err(format!("invalid range specified for container port: {port}"));
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
    let span = words.span;
    let err = |m: String| BuildError::at(m, span);
    let c = &mut cfg.config;
    let created_by = match kind {
        Kind::Env { pairs } => {
            // Every pair is expanded with the environment from before the instruction.
            let expanded: Vec<(String, String)> =
                pairs.iter().map(|p| Ok((words.word(&p.key)?, words.word(&p.value)?))).collect::<Result<_>>()?;
            let mut msg = "ENV".to_string();
            for (k, v) in expanded {
                msg.push_str(&format!(" {k}={v}"));
                c.env_set(&k, &v);
            }
            msg
        }
        Kind::Label { pairs } => {
            let mut msg = "LABEL".to_string();
            for p in pairs {
                let (k, v) = (words.word(&p.key)?, words.word(&p.value)?);
                if k.is_empty() {
                    return Err(err("LABEL names can not be blank".into()));
                }
                msg.push_str(&format!(" {k}={v}"));
                c.labels.insert(k, v);
            }
            msg
        }
        Kind::Maintainer { name } => {
            cfg.author = Some(name.clone());
            format!("MAINTAINER {name}")
        }
        Kind::Expose { ports } => {
            let mut all = Vec::new();
            for p in ports {
                all.extend(words.words(p)?);
            }
            for p in parse_ports(&all).map_err(err)? {
                c.exposed_ports.insert(p, Empty {});
            }
            format!("EXPOSE {}", all.join(" "))
        }
        Kind::Volume { paths, .. } => {
            let mut vs = Vec::new();
            for p in paths {
                let v = words.word(p)?;
                if v.is_empty() {
                    return Err(err("VOLUME specified can not be an empty string".into()));
                }
                c.volumes.insert(v.clone(), Empty {});
                vs.push(v);
            }
            format!("VOLUME [{}]", vs.join(" "))
        }
        Kind::User { user } => {
            c.user = words.word(user)?;
            format!("USER {}", c.user)
        }
        Kind::Workdir { path } => {
            let p = words.word(path)?;
            c.working_dir = normalize_workdir(&c.working_dir, &p).map_err(err)?;
            format!("WORKDIR {}", c.working_dir)
        }
        Kind::Cmd(cl) => {
            let v = resolve_cmdline(cl, c);
            c.cmd = Some(v.clone());
            c.args_escaped = false;
            if !cl.args.is_empty() {
                *cmd_set = true;
            }
            format!("CMD {}", go_quoted_list(&v))
        }
        Kind::Entrypoint(cl) => {
            let v = resolve_cmdline(cl, c);
            c.entrypoint = Some(v.clone());
            c.args_escaped = false;
            if !*cmd_set {
                c.cmd = None;
            }
            format!("ENTRYPOINT {}", go_quoted_list(&v))
        }
        Kind::Shell { args } => {
            c.shell = args.clone();
            format!("SHELL [{}]", args.join(" "))
        }
        Kind::Stopsignal { signal } => {
            let s = words.word(signal)?;
            rbuild_runtime::signal::parse_signal(&s).map_err(|e| err(e.to_string()))?;
            c.stop_signal = s.clone();
            format!("STOPSIGNAL {s}")
        }
        Kind::Healthcheck(h) => {
            c.healthcheck = Some(match h {
                Healthcheck::None => HealthConfig { test: vec!["NONE".into()], ..Default::default() },
                Healthcheck::Cmd(h) => HealthConfig {
                    test: h.test.clone(),
                    interval: h.interval,
                    timeout: h.timeout,
                    start_period: h.start_period,
                    start_interval: h.start_interval,
                    retries: h.retries,
                },
            });
            let test = c.healthcheck.as_ref().map(|h| h.test.clone()).unwrap_or_default();
            format!("HEALTHCHECK {}", go_quoted_list(&test))
        }
        Kind::Onbuild(o) => {
            c.on_build.push(o.expression.clone());
            format!("ONBUILD {}", o.expression)
        }
        other => return Err(err(format!("{} is not a metadata instruction", other.keyword()))),
    };
    Ok(Applied { created_by: format!("/bin/sh -c #(nop)  {created_by}") })
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
        let ast = rbuild_parser::ast::parse(change)
            .map_err(|e| BuildError::msg(format!("invalid change {change:?}: {e}")))?;
        for node in &ast.nodes {
            let ins = rbuild_parser::instruction::from_node(node)
                .map_err(|e| BuildError::msg(format!("invalid change {change:?}: {e}")))?;
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
                return Err(BuildError::msg(format!(
                    "{} is not a valid change command",
                    ins.kind.keyword().to_lowercase()
                )));
            }
            let env = cfg.config.env.clone();
            let words = Words { lex: Lexer::new(ast.directives.escape), env: &env, span: ins.span };
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
            let w = Words { lex: Lexer::new('\\'), env: &env, span: ins.span };
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
        assert!(parse_ports(&["x".into()]).is_err());
        assert!(parse_ports(&["80/icmp".into()]).is_err());
    }

    #[test]
    fn changes_allow_only_docker_commit_instructions() {
        let mut cfg = ImageConfig::default();
        apply_changes(&mut cfg, &["CMD [\"sh\"]".into(), "ENV A=b".into()]).unwrap();
        assert_eq!(cfg.config.cmd, Some(vec!["sh".into()]));
        assert!(apply_changes(&mut cfg, &["RUN true".into()]).is_err());
    }
}
