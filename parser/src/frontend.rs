//! What BuildKit's Dockerfile frontend settles before it reads instructions: which
//! frontend the `# syntax=` line asks for, and the platform (with its automatic ARGs).
//!
//! rbuild is its own frontend: the features of `docker/dockerfile:1` (heredocs, mounts,
//! `--link`, `--parents`, `--exclude`, …) are built in, and a frontend image is never
//! pulled or run. It builds for the machine it runs on, linux/amd64, without emulation.

use crate::diagnostic::{Diagnostic, Span};

/// The one platform rbuild builds for.
pub const PLATFORM: &str = "linux/amd64";

/// BuildKit's automatic platform ARGs and their values: defined in the global scope
/// (usable in FROM lines as they are, in a stage after `ARG NAME`).
pub const PLATFORM_ARGS: &[(&str, &str)] = &[
    ("TARGETPLATFORM", "linux/amd64"),
    ("TARGETOS", "linux"),
    ("TARGETARCH", "amd64"),
    ("TARGETVARIANT", ""),
    ("BUILDPLATFORM", "linux/amd64"),
    ("BUILDOS", "linux"),
    ("BUILDARCH", "amd64"),
    ("BUILDVARIANT", ""),
];

/// A platform rbuild does not build for (it builds for [`PLATFORM`] only).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("platform {0:?} is not supported: rbuild builds {PLATFORM} images only (no emulation)")]
pub struct UnsupportedPlatform(pub String);

/// Accepts a platform that means linux/amd64 (`linux/amd64`, `amd64`, `linux/x86_64`,
/// `linux/amd64/v1`, `local`, as containerd normalizes them); anything else is refused.
pub fn check_platform(p: &str) -> Result<(), UnsupportedPlatform> {
    let lower = p.trim().to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('/').collect();
    let (os, arch, variant) = match parts.as_slice() {
        ["local"] => ("linux", "amd64", ""),
        [arch] => ("linux", *arch, ""),
        [os, arch] => (*os, *arch, ""),
        [os, arch, variant] => (*os, *arch, *variant),
        _ => ("", "", ""),
    };
    let arch_ok = matches!(arch, "amd64" | "x86_64" | "x86-64");
    if os == "linux" && arch_ok && matches!(variant, "" | "v1") {
        return Ok(());
    }
    Err(UnsupportedPlatform(p.to_string()))
}

/// Checks the `# syntax=` directive of `src` (if any): the `docker/dockerfile` family
/// (`docker/dockerfile:1`, `:1.7`, `:1.7-labs`, `docker.io/docker/dockerfile:1@sha256:…`,
/// `docker/dockerfile-upstream:…`, and the same repositories on a mirror such as
/// `mirror.gcr.io/docker/dockerfile:1.4`) is built in; any other frontend is refused, located at
/// the directive's line, instead of being pulled.
pub fn check_syntax(syntax: Option<&str>, src: &str) -> Result<(), Diagnostic> {
    let Some(value) = syntax else { return Ok(()) };
    if is_dockerfile_frontend(value) {
        return Ok(());
    }
    let line = directive_line(src, "syntax").unwrap_or(1);
    Err(Diagnostic::at(
        format!("unsupported frontend {value:?}: rbuild reads Dockerfiles itself and does not run frontend images"),
        Span::line(line, 1),
    )
    .with_hint("use # syntax=docker/dockerfile:1, or remove the line"))
}

/// Is `value` an image of the docker/dockerfile family, version 1 (or unversioned)?
fn is_dockerfile_frontend(value: &str) -> bool {
    let v = value.trim();
    let v = v.split_once('@').map_or(v, |(name, _digest)| name);
    // A registry host (a mirror of Docker Hub's repository) comes first, as in any
    // reference: a first component with a dot or a port, or localhost.
    let v = match v.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => rest,
        _ => v,
    };
    let (repo, tag) = v.split_once(':').unwrap_or((v, "latest"));
    if !matches!(repo, "docker/dockerfile" | "docker/dockerfile-upstream") {
        return false;
    }
    // `1`, `1.7`, `1.7.1`, with a channel suffix (`-labs`); `latest`, `labs`, `master`.
    let version = tag.split_once('-').map_or(tag, |(v, _channel)| v);
    matches!(version, "latest" | "labs" | "master")
        || (version == "1" || version.starts_with("1."))
            && version.split('.').all(|p| p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty())
}

/// The 1-based line of the directive `key` among the first lines of `src`.
fn directive_line(src: &str, key: &str) -> Option<usize> {
    for (n, line) in src.strip_prefix('\u{feff}').unwrap_or(src).lines().enumerate() {
        let t = line.trim_start();
        let body = t.strip_prefix('#')?;
        if let Some((k, _)) = body.split_once('=') {
            if k.trim().eq_ignore_ascii_case(key) {
                return Some(n + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerfile_frontends_are_built_in() {
        for ok in [
            "docker/dockerfile:1",
            "docker/dockerfile:1.7",
            "docker/dockerfile:1.7.1-labs",
            "docker/dockerfile:1-labs",
            "docker.io/docker/dockerfile:1@sha256:ac85f380a63b13dfcefa89046420e1781752bab202122f8f50032edf31be0021",
            "docker/dockerfile",
            "docker/dockerfile-upstream:master-labs",
            "mirror.gcr.io/docker/dockerfile:1.4",
            "localhost:5000/docker/dockerfile:1",
        ] {
            assert!(check_syntax(Some(ok), "").is_ok(), "{ok}");
        }
        for bad in [
            "tonistiigi/dockerfile:1",
            "docker/dockerfile:2",
            "example.com/frontend:1",
            "docker/dockerfile:1.x",
            "example.com/other/dockerfile:1",
        ] {
            let src = format!("# escape=`\n# syntax={bad}\nFROM scratch\n");
            let e = check_syntax(Some(bad), &src).unwrap_err();
            assert_eq!(e.span.map(|s| s.start_line), Some(2), "{bad}");
            assert!(e.message.contains("unsupported frontend"), "{e}");
        }
    }

    #[test]
    fn only_linux_amd64() {
        for ok in ["linux/amd64", "amd64", "linux/x86_64", "LINUX/AMD64", "linux/amd64/v1", "local"] {
            assert!(check_platform(ok).is_ok(), "{ok}");
        }
        for bad in ["linux/arm64", "windows/amd64", "linux/arm/v7", "linux/amd64/v3", ""] {
            assert!(check_platform(bad).unwrap_err().to_string().contains("linux/amd64 images only"), "{bad}");
        }
    }
}
