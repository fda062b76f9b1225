//! `rbuild parse`: the Dockerfile as BuildKit's AST dump or as the typed stage graph.

use crate::cli::{ParseArgs, ParseFormat};
use crate::commands::Reported;
use anyhow::Context;
use rbuild_parser::{ast, dump, Diagnostic, Dockerfile, Graph};
use std::collections::BTreeMap;
use std::io::Read;
use std::process::ExitCode;

/// Reads a Dockerfile (`-` = stdin) as text; invalid UTF-8 becomes U+FFFD.
pub fn read_dockerfile(file: &str) -> anyhow::Result<String> {
    let bytes = if file == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).context("reading the Dockerfile from standard input")?;
        b
    } else {
        std::fs::read(file).with_context(|| format!("cannot read Dockerfile {file}"))?
    };
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A parse error as a diagnostic with the file, position, line and caret.
pub fn diagnostic(e: &Diagnostic, file: &str, src: &str) -> anyhow::Error {
    let name = if file == "-" { "Dockerfile" } else { file };
    Reported { message: e.render(name, Some(src)), code: 1 }.into()
}

pub fn parse_build_args(args: &[String]) -> BTreeMap<String, String> {
    build_args_from(args, |k| std::env::var(k).ok())
}

/// `--build-arg NAME=VALUE`, or `--build-arg NAME` with the value from the environment
/// (`env`); a bare NAME that the environment lacks gives no value at all, so the ARG's
/// default stays, as docker's CLI sends it (a nil value).
fn build_args_from(args: &[String], env: impl Fn(&str) -> Option<String>) -> BTreeMap<String, String> {
    args.iter()
        .filter_map(|a| match a.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => env(a).map(|v| (a.clone(), v)),
        })
        .collect()
}

pub fn run(a: ParseArgs) -> anyhow::Result<ExitCode> {
    let src = read_dockerfile(&a.file)?;
    match a.format {
        ParseFormat::Buildkit => {
            let tree = ast::parse(&src).map_err(|e| diagnostic(&e, &a.file, &src))?;
            outln!("{}", dump::dump(&tree))?;
        }
        ParseFormat::Json => {
            let df = Dockerfile::parse(&src).map_err(|e| diagnostic(&e, &a.file, &src))?;
            let graph = Graph::build(&df, &parse_build_args(&a.build_args), a.target.as_deref())
                .map_err(|e| diagnostic(&e, &a.file, &src))?;
            let out = serde_json::json!({
                "directives": df.directives,
                "meta_args": df.meta_args,
                "stages": df.stages,
                "graph": graph,
            });
            outln!("{}", serde_json::to_string_pretty(&out)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_build_arg_missing_from_the_environment_leaves_the_default() {
        let env = |k: &str| (k == "SET").then(|| "from-env".to_string());
        let args: Vec<String> = ["A=1", "SET", "UNSET", "EMPTY="].iter().map(|s| s.to_string()).collect();
        let got = build_args_from(&args, env);
        let want: BTreeMap<String, String> = [("A", "1"), ("EMPTY", ""), ("SET", "from-env")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }
}
