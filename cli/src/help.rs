//! `rbuild --help`: the commands grouped as docker's help groups them (common commands,
//! management commands, the rest), each with its one-line description from clap.

use clap::CommandFactory;

const COMMON: &[&str] =
    &["run", "exec", "ps", "build", "pull", "push", "images", "login", "logout", "search", "version", "info"];

/// The grouped top-level help.
pub fn top_level() -> String {
    let cmd = crate::cli::Cli::command();
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    let about = |s: &clap::Command| s.get_about().map(|a| a.to_string()).unwrap_or_default();
    let width = subs.iter().map(|s| s.get_name().len()).max().unwrap_or(10).max(10) + 2;
    let line = |s: &clap::Command| format!("  {:<width$}{}\n", s.get_name(), about(s));
    let mut out = String::from(
        "\nUsage:  rbuild [OPTIONS] COMMAND\n        rbuild [OPTIONS] [BUILD OPTIONS] CONTEXT   (= rbuild build …)\n\n",
    );
    out.push_str("Daemonless Dockerfile builder and container runtime\n\nCommon Commands:\n");
    for name in COMMON {
        if let Some(s) = subs.iter().find(|s| s.get_name() == *name) {
            out.push_str(&line(s));
        }
    }
    out.push_str("\nManagement Commands:\n");
    for s in subs.iter().filter(|s| s.has_subcommands()) {
        out.push_str(&line(s));
    }
    out.push_str("\nCommands:\n");
    let mut rest: Vec<&&clap::Command> =
        subs.iter().filter(|s| !s.has_subcommands() && !COMMON.contains(&s.get_name())).collect();
    rest.sort_by_key(|s| s.get_name());
    for s in rest {
        out.push_str(&line(s));
    }
    out.push_str("\nGlobal Options:\n");
    for a in cmd.get_arguments() {
        let Some(long) = a.get_long() else { continue };
        let value = a.get_value_names().and_then(|v| v.first()).map(|v| format!(" {v}")).unwrap_or_default();
        let flag = format!("--{long}{value}");
        let help = a.get_help().map(|h| h.to_string().replace('\n', " ")).unwrap_or_default();
        out.push_str(&format!("      {flag:<28}{help}\n"));
    }
    out.push_str(&format!("  -{:<32}{}\n", "h, --help", "Print help"));
    out.push_str(&format!("  -{:<32}{}\n", "v, --version", "Print version information and quit"));
    out.push_str("\nRun 'rbuild COMMAND --help' for more information on a command.\n");
    out
}

/// Does `args` ask for the version alone (`rbuild -v`, `--version`, `-V`)?
pub fn wants_version(args: &[std::ffi::OsString]) -> bool {
    let words: Vec<String> = args.iter().skip(1).map(|a| a.to_string_lossy().to_string()).collect();
    matches!(after_globals(&words), [v] if v == "-v" || v == "--version" || v == "-V")
}

/// `words` without the global options (and their values) that come first.
fn after_globals(words: &[String]) -> &[String] {
    let mut rest = words;
    while let Some(first) = rest.first() {
        if (first == "--root" || first == "--insecure-registry") && rest.len() > 1 {
            rest = &rest[2..];
        } else if first.starts_with("--root=") || first.starts_with("--insecure-registry=") {
            rest = &rest[1..];
        } else {
            break;
        }
    }
    rest
}

/// Does `args` (after the program name) ask for the top-level help?
pub fn wants_top_level(args: &[std::ffi::OsString]) -> bool {
    let words: Vec<String> = args.iter().skip(1).map(|a| a.to_string_lossy().to_string()).collect();
    let rest = after_globals(&words);
    matches!(rest, []) || matches!(rest, [h] if h == "-h" || h == "--help" || h == "help")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_like_docker() {
        let h = top_level();
        let common = h.find("Common Commands:").unwrap();
        let mgmt = h.find("Management Commands:").unwrap();
        let cmds = h.find("\nCommands:").unwrap();
        assert!(common < mgmt && mgmt < cmds, "{h}");
        for name in ["container", "image", "volume", "builder", "system"] {
            let at = h.find(&format!("\n  {name} ")).unwrap_or_else(|| panic!("{name} missing: {h}"));
            assert!(at > mgmt && at < cmds, "{name} not a management command");
        }
        for name in ["tag", "rmi", "cp", "commit", "events", "fsck"] {
            assert!(h[cmds..].contains(&format!("\n  {name} ")), "{name} missing");
        }
        assert!(!h.contains("__shim"));
        assert!(wants_top_level(&["rbuild".into()]));
        assert!(wants_top_level(&["rbuild".into(), "--root".into(), "/x".into(), "--help".into()]));
        assert!(!wants_top_level(&["rbuild".into(), "ps".into(), "--help".into()]));
    }
}
