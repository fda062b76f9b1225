//! What ADD adds to COPY: sources fetched from elsewhere — an http(s) URL (checked
//! against `--checksum`) or a git repository (`https://host/repo.git#ref:subdir`,
//! `git@host:repo.git`, `git://…`, `ssh://…`, `file:///path/repo.git`), cloned with the
//! `git` program, its `.git` directory kept only with `--keep-git-dir`.

use crate::build::Ctx;
use crate::error::{BuildError, Result, SourceError};
use crate::steps::copy::Spec;
use rbuild_store::TempDir;
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A source that is not in the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Remote {
    Http(String),
    Git { url: String, reference: Option<String>, subdir: Option<String> },
}

impl Remote {
    /// Recognizes an ADD source that names a URL or a git repository, as BuildKit does.
    pub(crate) fn parse(s: &str) -> Option<Remote> {
        let (base, fragment) = match s.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (s, None),
        };
        let gitlike = s.starts_with("git@")
            || s.starts_with("git://")
            || s.starts_with("ssh://")
            || (["http://", "https://", "file://"].iter().any(|p| s.starts_with(p))
                && base.split('?').next().unwrap_or(base).trim_end_matches('/').ends_with(".git"));
        if gitlike {
            let (reference, subdir) = match fragment {
                Some(f) => match f.split_once(':') {
                    Some((r, d)) => (Some(r.to_string()), Some(d.to_string())),
                    None => (Some(f.to_string()), None),
                },
                None => (None, None),
            };
            let reference = reference.filter(|r| !r.is_empty());
            let subdir = subdir.filter(|d| !d.is_empty() && d != "/");
            return Some(Remote::Git { url: base.to_string(), reference, subdir });
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            return Some(Remote::Http(s.to_string()));
        }
        None
    }
}

/// A fetched source, kept on disk while the step runs.
pub(crate) struct Fetched {
    /// What it is by content (the download's sha256, the commit checked out).
    pub(crate) digest: String,
    /// A download: its file name, where it is, its Last-Modified time.
    pub(crate) file: Option<(String, PathBuf, i64)>,
    /// A git checkout: the directory whose content is copied.
    pub(crate) checkout: Option<PathBuf>,
    _dir: TempDir,
}

impl Ctx<'_> {
    pub(crate) fn fetch(&self, remote: Remote, spec: &Spec) -> Result<Fetched> {
        let dir = self.store.temp_guard("add")?;
        match remote {
            Remote::Http(url) => {
                let file = dir.path().join("download");
                let (digest, mtime) = download(&url, &file, spec.checksum.as_deref())?;
                let name = url
                    .split(['?', '#'])
                    .next()
                    .unwrap_or(&url)
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .filter(|n| !n.is_empty() && !n.contains(':'))
                    .unwrap_or("download")
                    .to_string();
                Ok(Fetched { digest, file: Some((name, file, mtime)), checkout: None, _dir: dir })
            }
            Remote::Git { url, reference, subdir } => {
                if spec.checksum.is_some() {
                    return Err(BuildError::ChecksumNotHttp);
                }
                let repo = dir.path().join("repo");
                let commit = git_checkout(&url, reference.as_deref(), &repo)?;
                if !spec.keep_git_dir {
                    let git = repo.join(".git");
                    std::fs::remove_dir_all(&git).map_err(BuildError::io("removing", &git))?;
                }
                let checkout = match &subdir {
                    Some(d) => crate::context::resolve_in_root(&repo, crate::context::relative_source(d)?, true)?,
                    None => repo,
                };
                if !checkout.is_dir() {
                    let e: SourceError =
                        format!("no directory {} in the repository", subdir.unwrap_or_default()).into();
                    return Err(BuildError::Git { url, source: e });
                }
                let digest = format!("git:{commit}:{}:{}", subdir.unwrap_or_default(), spec.keep_git_dir);
                Ok(Fetched { digest, file: None, checkout: Some(checkout), _dir: dir })
            }
        }
    }
}

/// Clones `url` into `repo` and checks out `reference` (a branch, a tag or a commit; the
/// default branch when None) with its submodules; returns the commit.
fn git_checkout(url: &str, reference: Option<&str>, repo: &Path) -> Result<String> {
    let failed = |e: SourceError| BuildError::Git { url: url.to_string(), source: e };
    let git = |args: &[&str], cwd: Option<&Path>| -> Result<String> {
        let mut c = Command::new("git");
        c.args(["-c", "advice.detachedHead=false", "-c", "protocol.file.allow=always"]).args(args);
        if let Some(d) = cwd {
            c.current_dir(d);
        }
        // Never ask for a password on the terminal; the user's git config still applies.
        c.env("GIT_TERMINAL_PROMPT", "0").env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
        let out = c.output().map_err(|e| failed(format!("running git: {e}").into()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("git failed").trim().to_string();
            return Err(failed(last.into()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let repo_s = repo.to_string_lossy();
    git(&["clone", "--quiet", "--no-checkout", "--", url, &repo_s], None)?;
    let wanted = reference.unwrap_or("HEAD");
    // A tag or a branch of the remote, else a commit.
    let target = git(&["rev-parse", "--verify", "--quiet", &format!("origin/{wanted}^{{commit}}")], Some(repo))
        .or_else(|_| git(&["rev-parse", "--verify", "--quiet", &format!("{wanted}^{{commit}}")], Some(repo)))?;
    git(&["checkout", "--quiet", &target], Some(repo))?;
    git(&["submodule", "update", "--init", "--recursive", "--quiet"], Some(repo))?;
    Ok(target)
}

/// Downloads `url` to the file `path`; returns its sha256 (checked against `checksum`)
/// and its Last-Modified time (0 when absent).
pub(crate) fn download(url: &str, path: &Path, checksum: Option<&str>) -> Result<(String, i64)> {
    let failed = |source: SourceError| BuildError::Download { url: url.to_string(), source };
    let resp = ureq::get(url).call().map_err(|e| failed(Box::new(e)))?;
    let mtime = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| chrono::DateTime::parse_from_rfc2822(s).ok())
        .map(|d| d.timestamp())
        .unwrap_or(0);
    let mut f = std::fs::File::create(path).map_err(BuildError::io("creating", path))?;
    let mut body = resp.into_body();
    let mut r = body.as_reader();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = std::io::Read::read(&mut r, &mut buf).map_err(|e| failed(Box::new(e)))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        std::io::Write::write_all(&mut f, &buf[..n]).map_err(BuildError::io("writing", path))?;
    }
    let digest = format!("sha256:{}", hex::encode(h.finalize()));
    if let Some(want) = checksum {
        if want != digest {
            return Err(BuildError::Checksum { url: url.to_string(), expected: want.to_string(), got: digest });
        }
    }
    Ok((digest, mtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_and_http_sources() {
        let git = |url: &str, r: Option<&str>, d: Option<&str>| {
            Some(Remote::Git { url: url.into(), reference: r.map(String::from), subdir: d.map(String::from) })
        };
        assert_eq!(
            Remote::parse("https://example.com/r.git#v1:docs"),
            git("https://example.com/r.git", Some("v1"), Some("docs"))
        );
        assert_eq!(Remote::parse("git@github.com:o/r.git"), git("git@github.com:o/r.git", None, None));
        assert_eq!(Remote::parse("file:///srv/r.git#main"), git("file:///srv/r.git", Some("main"), None));
        assert_eq!(Remote::parse("git://h/r#:sub"), git("git://h/r", None, Some("sub")));
        assert_eq!(
            Remote::parse("https://example.com/a.tar.gz"),
            Some(Remote::Http("https://example.com/a.tar.gz".into()))
        );
        assert_eq!(Remote::parse("local/file.txt"), None);
        assert_eq!(Remote::parse("file:///etc/passwd"), None);
    }
}
