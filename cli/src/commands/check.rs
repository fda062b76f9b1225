//! `rbuild check` and `build --check`: BuildKit's build checks without building, printed
//! as `docker build --check` prints them (exit 1 when there are warnings); and the checks
//! a build runs first, printed after it as BuildKit's one-line summaries.

use crate::cli::{CheckArgs, CheckFormat};
use crate::commands::parse::{parse_build_args, read_dockerfile};
use crate::commands::Reported;
use anyhow::Context;
use rbuild_builder::check::{self, BaseImage, CheckConfig, CheckOptions, Report};
use rbuild_builder::ignore::{read_dockerignore, Matcher};
use rbuild_store::Store;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

/// The build argument that replaces the file's `# check=` directive.
const CHECK_ARG: &str = "BUILDKIT_DOCKERFILE_CHECK";

/// What a check needs besides the Dockerfile.
pub struct Input<'a> {
    pub dockerfile: &'a str,
    /// How to name the Dockerfile in messages.
    pub name: &'a str,
    pub context: Option<&'a Path>,
    pub build_args: &'a BTreeMap<String, String>,
    pub target: Option<&'a str>,
}

/// Runs the checks; a Dockerfile that does not parse is a diagnostic error.
pub fn run_checks(store: Option<&Store>, i: &Input<'_>) -> anyhow::Result<Report> {
    let ignore = match i.context.map(|c| c.join(".dockerignore")) {
        Some(p) if p.is_file() => {
            let data = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
            Some(Matcher::new(&read_dockerignore(&data)).with_context(|| format!("reading {}", p.display()))?)
        }
        _ => None,
    };
    let config = match i.build_args.get(CHECK_ARG) {
        Some(v) => Some(CheckConfig::parse(v)?),
        None => None,
    };
    // A base image the store has gives its environment and SHELL; others stay unknown
    // (a check pulls nothing).
    let base = |r: &str| -> Option<BaseImage> {
        let img = store?.image(r).ok()?;
        Some(BaseImage { env: img.config.config.env.clone(), shell: img.config.config.shell.clone() })
    };
    let opts = CheckOptions {
        build_args: i.build_args.clone(),
        target: i.target.map(String::from),
        ignore: ignore.as_ref(),
        base: Some(&base),
        config,
    };
    check::check(i.dockerfile, &opts).map_err(|e| crate::commands::parse::diagnostic(&e, i.name, i.dockerfile))
}

/// Prints a report as `docker build --check` does (or as BuildKit's JSON result) and
/// gives the exit code: 1 when anything was found.
pub fn print(report: &Report, i: &Input<'_>, format: CheckFormat) -> anyhow::Result<ExitCode> {
    match format {
        CheckFormat::Text => out!("{}", check::render(report, i.name, i.dockerfile))?,
        CheckFormat::Json => {
            let warnings: Vec<_> = report
                .warnings
                .iter()
                .map(|w| {
                    let ranges: Vec<_> =
                        (w.lines.0..=w.lines.1).map(|l| json!({"start": {"line": l}, "end": {"line": l}})).collect();
                    json!({
                        "ruleName": w.rule.name,
                        "description": w.rule.description,
                        "url": w.rule.url,
                        "detail": w.detail,
                        "location": {"ranges": ranges},
                    })
                })
                .collect();
            let mut v = json!({ "warnings": warnings });
            if let Some(f) = report.failure() {
                v["buildError"] = json!({ "message": f });
            }
            outln!("{}", serde_json::to_string_pretty(&v)?)?;
        }
    }
    if let Some(f) = report.failure() {
        return Err(Reported { message: f, code: 1 }.into());
    }
    Ok(if report.warnings.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `rbuild check [-f FILE] [CONTEXT]`.
pub fn run(store: Option<&Store>, a: CheckArgs) -> anyhow::Result<ExitCode> {
    let context = Path::new(&a.context);
    let file = a.file.clone().unwrap_or_else(|| context.join("Dockerfile").display().to_string());
    let text = read_dockerfile(&file)?;
    let name = if file == "-" { "Dockerfile".to_string() } else { file.clone() };
    let build_args = parse_build_args(&a.build_args);
    let input = Input {
        dockerfile: &text,
        name: &name,
        context: context.is_dir().then_some(context),
        build_args: &build_args,
        target: a.target.as_deref(),
    };
    let report = run_checks(store, &input)?;
    print(&report, &input, a.format)
}

/// The checks a build runs first: `error=true` with warnings fails it before any step;
/// otherwise the warnings' one-line forms, for after the build.
pub fn before_build(store: &Store, i: &Input<'_>) -> anyhow::Result<Vec<String>> {
    let report = run_checks(Some(store), i)?;
    if let Some(f) = report.failure() {
        let mut msg = String::new();
        for w in &report.warnings {
            msg.push_str(&format!(" - {}\n", w.short()));
        }
        msg.push_str(&f);
        return Err(Reported { message: msg, code: 1 }.into());
    }
    Ok(report.warnings.iter().map(|w| w.short()).collect())
}

/// BuildKit's summary after a build: `N warnings found:` and a line each.
pub fn print_summary(shorts: &[String]) {
    match shorts.len() {
        0 => return,
        1 => errln!("\n 1 warning found:"),
        n => errln!("\n {n} warnings found:"),
    }
    for s in shorts {
        errln!(" - {s}");
    }
}
