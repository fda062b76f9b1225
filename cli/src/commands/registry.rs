//! Registry verbs (pull, push, login, logout) and the registry behind builds and runs:
//! FROM and `run` pull images the store lacks, `--cache-to` / `--cache-from` move the
//! build cache.

use crate::cli::{CompressionArg, LoginArgs, ManifestFormatArg, PullArgs, PushArgs, SearchArgs};
use crate::commands::event;
use crate::commands::util::{clear, human_size};
use anyhow::{bail, Context};
use rbuild_builder::{CacheSource, ImageSource, SourceError};
use rbuild_registry::auth::{Credentials, DockerConfig};
use rbuild_registry::cache::{CacheImport, CacheLocation};
use rbuild_registry::client::{Client, ClientOptions};
use rbuild_registry::progress::{BlobEvent, Progress};
use rbuild_registry::push::PushOptions;
use rbuild_store::archive::ManifestFormat;
use rbuild_store::compress::Compression;
use rbuild_store::{CacheRecord, Digest, Image, Reference, Store, StoreError};
use std::io::{BufRead, IsTerminal, Read, Write};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

/// Client options from `--insecure-registry` and the environment.
pub fn client_options(insecure: &[String], pull_timeout: std::time::Duration, min_rate: u64) -> ClientOptions {
    let mut o = ClientOptions::from_env();
    o.insecure.extend(insecure.iter().cloned());
    o.pull_timeout = Some(pull_timeout).filter(|d| !d.is_zero());
    o.min_rate = (min_rate > 0).then_some(rbuild_registry::client::MinRate {
        bytes_per_sec: min_rate,
        window: rbuild_registry::client::DEFAULT_MIN_RATE.window,
    });
    o
}

/// Blob progress on stderr: on a terminal a live line per blob, otherwise a line when a
/// blob is done.
pub struct Printer {
    quiet: bool,
    tty: bool,
    verb: &'static str,
    state: Mutex<Live>,
}

/// The live area: a line per blob, how many lines were drawn, when.
#[derive(Default)]
struct Live {
    lines: Vec<(Digest, String)>,
    drawn: usize,
    last: Option<Instant>,
}

impl Printer {
    pub fn new(quiet: bool, verb: &'static str) -> Printer {
        Printer { quiet, tty: std::io::stderr().is_terminal(), verb, state: Mutex::new(Live::default()) }
    }

    fn set(&self, d: &Digest, line: String, force: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !self.tty {
            if force {
                errln!("{}: {line}", d.short());
            }
            return;
        }
        match s.lines.iter_mut().find(|(x, _)| x == d) {
            Some(e) => e.1 = line,
            None => s.lines.push((*d, line)),
        }
        if !force && s.last.is_some_and(|t| t.elapsed().as_millis() < 100) {
            return;
        }
        let mut out = String::new();
        clear(&mut out, s.drawn);
        for (d, l) in &s.lines {
            out.push_str(&format!("{}: {l}\n", d.short()));
        }
        s.drawn = s.lines.len();
        s.last = Some(Instant::now());
        let _ = std::io::stderr().write_all(out.as_bytes());
    }
}

impl Progress for Printer {
    fn status(&self, line: &str) {
        if !self.quiet {
            errln!("{line}");
            // Lines after a status start a new live area.
            *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Live::default();
        }
    }

    fn blob(&self, d: &Digest, e: BlobEvent<'_>) {
        if self.quiet {
            return;
        }
        let (line, force) = match e {
            BlobEvent::Start { total } => (format!("{} 0B/{}", self.verb, human_size(total)), false),
            BlobEvent::Bytes { done, total } => {
                (format!("{} {}/{}", self.verb, human_size(done), human_size(total)), false)
            }
            BlobEvent::Exists => ("Already exists".to_string(), true),
            BlobEvent::Mounted { from } => (format!("Mounted from {from}"), true),
            BlobEvent::Done => {
                (if self.verb == "Pushing" { "Pushed".to_string() } else { "Pull complete".to_string() }, true)
            }
        };
        self.set(d, line, force);
    }
}

fn parse_ref(name: &str) -> anyhow::Result<Reference> {
    Reference::parse(name).with_context(|| format!("invalid reference {name:?}"))
}

/// Pulls `r`, reporting on stderr through `printer`; records the registry's digest
/// (RepoDigests) and the event.
fn pull_ref(store: &Store, opts: &ClientOptions, r: &Reference, printer: &Printer) -> anyhow::Result<Image> {
    let client = Client::new(&r.domain, opts)?;
    let pulled = rbuild_registry::pull::pull(store, &client, r, printer).map_err(|e| pull_error(r, e))?;
    store.record_repo_digest(&pulled.image.config_digest, &r.repository(), &pulled.digest)?;
    event(store, "image", "pull", &r.familiar(), &[("name", &r.familiar_repository())]);
    Ok(pulled.image)
}

/// A pull's error, with the image named unless the error names it already.
fn pull_error(r: &Reference, e: rbuild_registry::RegistryError) -> anyhow::Error {
    match e {
        e @ rbuild_registry::RegistryError::NotFound { .. } => e.into(),
        e => anyhow::Error::from(e).context(format!("pulling {}", r.familiar())),
    }
}

pub fn pull(store: &Store, opts: &ClientOptions, a: PullArgs) -> anyhow::Result<ExitCode> {
    let r = parse_ref(&a.name)?;
    pull_ref(store, opts, &r, &Printer::new(a.quiet, "Downloading"))?;
    if !a.quiet {
        errln!("Status: Downloaded image for {}", r.familiar());
    }
    outln!("{}", r)?;
    Ok(ExitCode::SUCCESS)
}

pub fn push(store: &Store, opts: &ClientOptions, a: PushArgs) -> anyhow::Result<ExitCode> {
    let r = parse_ref(&a.name)?;
    let image = store.image(&a.name)?;
    let client = Client::new(&r.domain, opts)?;
    let popts = PushOptions {
        format: match a.format {
            ManifestFormatArg::Oci => ManifestFormat::Oci,
            ManifestFormatArg::Docker => ManifestFormat::Docker,
        },
        compression: match a.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
        },
        chunk_size: a.chunk_size.max(1),
    };
    let printer = Printer::new(a.quiet, "Pushing");
    let d = rbuild_registry::push::push(store, &client, &image, &r, &popts, &printer)
        .with_context(|| format!("pushing {}", r.familiar()))?;
    store.record_repo_digest(&image.config_digest, &r.repository(), &d)?;
    event(store, "image", "push", &r.familiar(), &[("name", &r.familiar_repository())]);
    if a.quiet {
        outln!("{d}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `http://host:5000/v2/` → `host:5000`; Docker Hub's names → `docker.io`.
fn registry_host(s: &str) -> anyhow::Result<String> {
    let s = s.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or_default().to_string();
    if host.is_empty() {
        bail!("invalid registry {s:?}");
    }
    Ok(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
        _ => host,
    })
}

/// Reads one line from standard input after `prompt` (on stdout, as docker's); with
/// `secret` and a terminal, without echo.
fn prompt_line(prompt: &str, secret: bool) -> anyhow::Result<String> {
    out!("{prompt}")?;
    std::io::stdout().flush()?;
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let saved = if secret && tty { rustix::termios::tcgetattr(&stdin).ok() } else { None };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, t);
        outln!()?;
    }
    r.context("reading standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

pub fn login(opts: &ClientOptions, a: LoginArgs) -> anyhow::Result<ExitCode> {
    let host = registry_host(a.registry.as_deref().unwrap_or("docker.io"))?;
    if a.password.is_some() {
        errln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    if a.password_stdin && a.username.as_deref().is_none_or(str::is_empty) {
        bail!("Must provide --username with --password-stdin");
    }
    let username = match a.username.clone().filter(|u| !u.is_empty()) {
        Some(u) => u,
        None => prompt_line("Username: ", false)?.trim().to_string(),
    };
    if username.is_empty() {
        bail!("Error: Non-null Username Required");
    }
    let password = match (&a.password, a.password_stdin) {
        (Some(p), _) => p.clone(),
        (None, true) => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).context("reading the password from standard input")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt_line("Password: ", true)?,
    };
    if password.is_empty() {
        bail!("Error: Password Required");
    }
    let creds = Credentials { username, password };
    let mut o = opts.clone();
    o.credentials = Some(creds.clone());
    Client::new(&host, &o)?.check_login()?;
    let mut cfg = DockerConfig::load(&opts.config_path())?;
    let helper = cfg.helper_for(&host);
    cfg.store_credentials(&host, &creds)?;
    cfg.save()?;
    if helper.is_none() {
        errln!(
            "WARNING! Your password will be stored unencrypted in {}.\nConfigure a credential helper to remove this warning.",
            cfg.path().display()
        );
    }
    outln!("Login Succeeded")?;
    Ok(ExitCode::SUCCESS)
}

pub fn logout(opts: &ClientOptions, registry: &str) -> anyhow::Result<ExitCode> {
    let host = registry_host(registry)?;
    let mut cfg = DockerConfig::load(&opts.config_path())?;
    if cfg.erase_credentials(&host)? {
        cfg.save()?;
        outln!("Removing login credentials for {host}")?;
    } else {
        outln!("Not logged in to {host}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `search HOST[:PORT]/TERM`: the registry's catalog, names containing TERM, as docker's
/// search table. Docker Hub has no catalog: refused before anything is sent.
pub fn search(opts: &ClientOptions, a: SearchArgs) -> anyhow::Result<ExitCode> {
    crate::commands::format::check_format(a.format.as_deref())?;
    let (host, term) = match a.term.split_once('/') {
        Some((h, t)) if h.contains(['.', ':']) || h == "localhost" => (h.to_string(), t.to_string()),
        _ => ("docker.io".to_string(), a.term.clone()),
    };
    let mut min_stars = 0u64;
    let mut official_or_automated = false;
    for f in &a.filter {
        match f.split_once('=') {
            Some(("stars", v)) => min_stars = v.parse().with_context(|| format!("invalid filter 'stars={v}'"))?,
            Some(("is-official" | "is-automated", v)) => {
                official_or_automated |= v.parse::<bool>().with_context(|| format!("invalid filter {f:?}"))?
            }
            _ => bail!("invalid filter {f:?} (stars=, is-official=, is-automated=)"),
        }
    }
    if a.limit == 0 || a.limit > 100 {
        bail!("limit {} is outside the range of [1, 100]", a.limit);
    }
    let client = Client::new(&host, opts)?;
    let repos = rbuild_registry::catalog::catalog(&client)?;
    let rows: Vec<rbuild_template::Value> = repos
        .iter()
        .filter(|r| r.contains(term.as_str()) && min_stars == 0 && !official_or_automated)
        .take(a.limit)
        .map(|r| {
            rbuild_template::Value::object([
                ("Description", rbuild_template::Value::from("")),
                ("IsAutomated", "".into()),
                ("IsOfficial", "".into()),
                ("Name", format!("{host}/{r}").into()),
                ("StarCount", "0".into()),
            ])
        })
        .collect();
    let header = rbuild_template::Value::map([
        ("Description", rbuild_template::Value::from("DESCRIPTION")),
        ("IsAutomated", "AUTOMATED".into()),
        ("IsOfficial", "OFFICIAL".into()),
        ("Name", "NAME".into()),
        ("StarCount", "STARS".into()),
    ]);
    crate::commands::format::print_rows(
        a.format.as_deref(),
        "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}\t{{.IsAutomated}}",
        &rows,
        &header,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Pulls `name` when the store lacks it (`rbuild run` and `create`).
pub fn ensure_image(store: &Store, opts: &ClientOptions, name: &str) -> anyhow::Result<()> {
    match store.image(name) {
        Ok(_) => Ok(()),
        Err(StoreError::ImageNotFound(_)) => {
            let r = parse_ref(name)?;
            errln!("Unable to find image '{}' locally", r.familiar());
            pull_ref(store, opts, &r, &Printer::new(false, "Downloading")).map(|_| ())
        }
        Err(e) => Err(e.into()),
    }
}

/// FROM's images from their registries.
#[derive(Debug)]
pub struct RegistryImages(pub ClientOptions);

impl ImageSource for RegistryImages {
    fn pull(&self, store: &Store, reference: &str) -> Result<Image, SourceError> {
        let r = Reference::parse(reference)?;
        // Plain lines: the build's own display owns the terminal.
        let printer = Printer { tty: false, ..Printer::new(false, "Downloading") };
        Ok(pull_ref(store, &self.0, &r, &printer)?)
    }
}

/// A `--cache-from` cache.
#[derive(Debug)]
pub struct RemoteCache(pub CacheImport);

impl CacheSource for RemoteCache {
    fn fetch(&self, store: &Store, key: &str) -> Result<Option<CacheRecord>, SourceError> {
        let r = self.0.fetch(store, key, &rbuild_registry::progress::Quiet);
        Ok(r.with_context(|| self.0.name().to_string())?)
    }

    fn journal(&self) -> Option<rbuild_builder::explain::Journal> {
        serde_json::from_value(self.0.journal()?.clone()).ok()
    }

    fn cache_mount(&self, store: &Store, name: &str) -> Result<Option<rbuild_store::Digest>, SourceError> {
        let r = self.0.fetch_mount(store, name, &rbuild_registry::progress::Quiet);
        Ok(r.with_context(|| self.0.name().to_string())?)
    }
}

/// What `--cache-to` exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// The steps that made the image's layers.
    Min,
    /// Every step of every stage.
    Max,
}

/// A parsed `--cache-to` / `--cache-from` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    pub location: CacheLocation,
    pub mode: CacheMode,
    pub ignore_error: bool,
    /// Export the build's cache mounts too, up to this many bytes of them
    /// (`cache-mounts=true|false|SIZE`; on with 1 GiB for mode=max, off for mode=min).
    pub cache_mounts: Option<u64>,
}

/// What `cache-mounts=true` (and mode=max without the option) lets through.
pub const DEFAULT_CACHE_MOUNTS_CAP: u64 = 1 << 30;

/// `true`, `false` (or 0), or a size as docker reads sizes (`512m`, `2g`).
fn parse_cache_mounts(v: &str) -> anyhow::Result<Option<u64>> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(Some(DEFAULT_CACHE_MOUNTS_CAP)),
        "false" => Ok(None),
        _ => match super::options::bytes(v) {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => bail!("invalid cache-mounts value {v:?} (true, false or a size such as 512m)"),
        },
    }
}

/// Parses `type=registry,ref=R[,mode=min|max]`, `type=local,dest=DIR` (export) or
/// `type=local,src=DIR` (import); a bare NAME is a registry reference.
pub fn parse_cache_spec(s: &str, export: bool) -> anyhow::Result<CacheSpec> {
    let mut typ = None;
    let (mut reference, mut dir, mut mode, mut ignore_error) = (None, None, CacheMode::Min, false);
    let mut cache_mounts: Option<Option<u64>> = None;
    if !s.contains('=') {
        let location = CacheLocation::Registry(parse_ref(s)?);
        return Ok(CacheSpec { location, mode, ignore_error, cache_mounts: None });
    }
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            bail!("invalid cache option {part:?} in {s:?} (expected KEY=VALUE)")
        };
        match (k.trim(), export) {
            ("type", _) => typ = Some(v.to_string()),
            ("ref", _) => reference = Some(v.to_string()),
            ("dest", true) | ("src", false) => dir = Some(v.to_string()),
            ("mode", true) => {
                mode = match v {
                    "min" => CacheMode::Min,
                    "max" => CacheMode::Max,
                    _ => bail!("invalid cache mode {v:?} (min or max)"),
                }
            }
            ("cache-mounts", true) => cache_mounts = Some(parse_cache_mounts(v)?),
            ("ignore-error", true) => {
                ignore_error = v.parse().with_context(|| format!("invalid ignore-error value {v:?}"))?
            }
            (k, _) => bail!("unknown cache option {k:?} in {s:?}"),
        }
    }
    let location = match typ.as_deref().unwrap_or(if reference.is_some() { "registry" } else { "local" }) {
        "registry" => CacheLocation::Registry(parse_ref(
            &reference.with_context(|| format!("{s:?}: type=registry needs ref=NAME"))?,
        )?),
        "local" => {
            let key = if export { "dest" } else { "src" };
            CacheLocation::Local(dir.with_context(|| format!("{s:?}: type=local needs {key}=DIR"))?.into())
        }
        other => bail!("unsupported cache type {other:?} (registry or local)"),
    };
    let cache_mounts = match cache_mounts {
        Some(c) => c,
        None if mode == CacheMode::Max => Some(DEFAULT_CACHE_MOUNTS_CAP),
        None => None,
    };
    Ok(CacheSpec { location, mode, ignore_error, cache_mounts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_specs() {
        let s = parse_cache_spec("type=registry,ref=127.0.0.1:5000/c:t,mode=max", true).unwrap();
        assert_eq!(s.mode, CacheMode::Max);
        assert!(
            matches!(&s.location, CacheLocation::Registry(r) if r.domain == "127.0.0.1:5000" && r.tag.as_deref() == Some("t"))
        );
        let s = parse_cache_spec("type=local,dest=/tmp/c", true).unwrap();
        assert_eq!(s.location, CacheLocation::Local("/tmp/c".into()));
        assert_eq!(s.mode, CacheMode::Min);
        assert_eq!(
            parse_cache_spec("type=local,src=/tmp/c", false).unwrap().location,
            CacheLocation::Local("/tmp/c".into())
        );
        assert!(matches!(parse_cache_spec("org/cache:1", false).unwrap().location, CacheLocation::Registry(_)));
        for bad in [
            "type=s3,ref=x",
            "type=local",
            "type=registry",
            "type=local,src=/x,mode=max",
            "type=local,dest=/x,mode=all",
            "type=local,dest=/x,foo=1",
            "type=local,dest=/x,cache-mounts=lots",
            "type=local,src=/x,cache-mounts=true",
        ] {
            let export = !bad.contains("src=");
            assert!(parse_cache_spec(bad, export).is_err(), "{bad}");
        }
    }

    #[test]
    fn cache_mounts_are_exported_with_mode_max_unless_told() {
        let cap = |s: &str| parse_cache_spec(s, true).unwrap().cache_mounts;
        assert_eq!(cap("type=local,dest=/c,mode=max"), Some(DEFAULT_CACHE_MOUNTS_CAP));
        assert_eq!(cap("type=local,dest=/c"), None);
        assert_eq!(cap("type=local,dest=/c,mode=min,cache-mounts=true"), Some(1 << 30));
        assert_eq!(cap("type=local,dest=/c,mode=max,cache-mounts=false"), None);
        assert_eq!(cap("type=local,dest=/c,mode=max,cache-mounts=0"), None);
        assert_eq!(cap("type=local,dest=/c,cache-mounts=512m"), Some(512 << 20));
        assert_eq!(cap("type=registry,ref=127.0.0.1:5000/c,cache-mounts=2g,mode=max"), Some(2 << 30));
        assert_eq!(cap("127.0.0.1:5000/c"), None);
        let e = parse_cache_spec("type=local,dest=/c,cache-mounts=-1", true).unwrap_err();
        assert!(e.to_string().contains("invalid cache-mounts value"), "{e}");
    }

    #[test]
    fn registry_hosts() {
        assert_eq!(registry_host("http://127.0.0.1:5000/v2/").unwrap(), "127.0.0.1:5000");
        assert_eq!(registry_host("index.docker.io").unwrap(), "docker.io");
        assert!(registry_host("").is_err());
    }
}
