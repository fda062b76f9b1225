//! The builder's API: a [`Builder`] configured step by step, what a build reports as it
//! goes ([`Progress`]) and what it gives back ([`Built`], [`Failure`]).

use crate::cache_key::CacheKey;
use crate::error::{BuildError, SourceError};
use rbuild_parser::{Diagnostic, Span};
use rbuild_runtime::{Network, SecurityOptions};
use rbuild_store::{CacheRecord, Image, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Builds a Dockerfile into an image in a store.
///
/// ```no_run
/// # use rbuild_builder::{Builder, Event, Progress};
/// struct Quiet;
/// impl Progress for Quiet {
///     fn event(&self, _: Event<'_>) {}
/// }
/// let store = rbuild_store::Store::open("/var/lib/rbuild").unwrap();
/// let built = Builder::new(&store, "FROM scratch\nCOPY . /\n")
///     .context(Some("./app".into()))
///     .build_arg("VERSION", "1.2")
///     .build(&Quiet)
///     .unwrap();
/// println!("{}", built.image.id());
/// ```
#[derive(Debug, Clone)]
pub struct Builder<'s> {
    store: &'s Store,
    opts: BuildOptions,
}

impl<'s> Builder<'s> {
    /// A build of `dockerfile` (its text) into `store`, with docker's defaults: no context,
    /// no build args, the last stage, the cache on, RUN steps on their own network with
    /// outbound access, docker's security options.
    pub fn new(store: &'s Store, dockerfile: impl Into<String>) -> Self {
        Builder {
            store,
            opts: BuildOptions {
                dockerfile: dockerfile.into(),
                context: None,
                build_args: BTreeMap::new(),
                target: None,
                no_cache: false,
                network: Network::build_step(),
                security: SecurityOptions::default(),
                labels: BTreeMap::new(),
                extra_hosts: Vec::new(),
                source_date_epoch: None,
                cancel: Arc::new(AtomicBool::new(false)),
                pull: false,
                images: None,
                cache_from: Vec::new(),
                secrets: BTreeMap::new(),
                ssh: BTreeMap::new(),
                contexts: BTreeMap::new(),
                platform: None,
                allow: Vec::new(),
                explain_cache: false,
                dockerfile_name: "Dockerfile".into(),
            },
        }
    }

    /// The context directory (None: no context, as `rbuild build - < Dockerfile`).
    pub fn context(mut self, dir: Option<PathBuf>) -> Self {
        self.opts.context = dir;
        self
    }

    /// A `--build-arg`.
    pub fn build_arg(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.opts.build_args.insert(name.into(), value.into());
        self
    }

    /// All `--build-arg`s at once (replacing those given before).
    pub fn build_args(mut self, args: BTreeMap<String, String>) -> Self {
        self.opts.build_args = args;
        self
    }

    /// The stage to build (`--target`); the last stage by default.
    pub fn target(mut self, stage: Option<String>) -> Self {
        self.opts.target = stage;
        self
    }

    /// Reports, for each step that misses the cache, which of its inputs changed since
    /// the last build of the same Dockerfile, context and target (`--explain-cache`).
    pub fn explain_cache(mut self, yes: bool) -> Self {
        self.opts.explain_cache = yes;
        self
    }

    /// The Dockerfile's path as the user gave it (it names the build for
    /// `explain_cache`).
    pub fn dockerfile_name(mut self, name: impl Into<String>) -> Self {
        self.opts.dockerfile_name = name.into();
        self
    }

    /// Runs every step, ignoring the cache (`--no-cache`).
    pub fn no_cache(mut self, yes: bool) -> Self {
        self.opts.no_cache = yes;
        self
    }

    /// The network of RUN steps that do not ask for one (`--network`).
    pub fn network(mut self, network: Network) -> Self {
        self.opts.network = network;
        self
    }

    /// RUN steps' capabilities and no_new_privs (`--security-opt`).
    pub fn security(mut self, security: SecurityOptions) -> Self {
        self.opts.security = security;
        self
    }

    /// Labels added to the image (`--label`).
    pub fn labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.opts.labels = labels;
        self
    }

    /// `--add-host NAME:IP` pairs, written into every RUN step's /etc/hosts.
    pub fn extra_hosts(mut self, hosts: Vec<(String, String)>) -> Self {
        self.opts.extra_hosts = hosts;
        self
    }

    /// The time recorded in the image and clamped in its layers (`SOURCE_DATE_EPOCH`);
    /// None: the base image's creation time.
    pub fn source_date_epoch(mut self, secs: Option<i64>) -> Self {
        self.opts.source_date_epoch = secs;
        self
    }

    /// A flag that stops the build at the next step boundary (and kills a running step)
    /// when it turns true, e.g. from a signal handler.
    pub fn cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.opts.cancel = flag;
        self
    }

    /// Refresh base images from the image source before using them (`--pull`).
    pub fn pull(mut self, yes: bool) -> Self {
        self.opts.pull = yes;
        self
    }

    /// Where images the store lacks come from (a registry).
    pub fn images(mut self, source: Arc<dyn ImageSource>) -> Self {
        self.opts.images = Some(source);
        self
    }

    /// A cache consulted when the store has no record for a step (`--cache-from`).
    pub fn cache_from(mut self, cache: Arc<dyn CacheSource>) -> Self {
        self.opts.cache_from.push(cache);
        self
    }

    /// A secret for `RUN --mount=type=secret,id=ID` (`--secret id=ID,src=FILE|env=VAR`):
    /// kept in memory, mounted from memory, never part of a layer, a cache key or the log.
    pub fn secret(mut self, id: impl Into<String>, value: Vec<u8>) -> Self {
        self.opts.secrets.insert(id.into(), Secret(value));
        self
    }

    /// An ssh agent socket for `RUN --mount=type=ssh,id=ID` (`--ssh ID=SOCKET`).
    pub fn ssh(mut self, id: impl Into<String>, agent: PathBuf) -> Self {
        self.opts.ssh.insert(id.into(), agent);
        self
    }

    /// A named build context (`--build-context NAME=…`), used by `FROM NAME`,
    /// `COPY --from=NAME` and `RUN --mount=from=NAME`; it replaces a stage of that name.
    pub fn build_context(mut self, name: impl Into<String>, context: NamedContext) -> Self {
        self.opts.contexts.insert(name.into(), context);
        self
    }

    /// An entitlement RUN steps may ask for (`--allow network.host|security.insecure`):
    /// without it, `RUN --network=host` and `RUN --security=insecure` are refused, as
    /// BuildKit refuses them.
    pub fn allow(mut self, entitlement: Entitlement) -> Self {
        self.opts.allow.push(entitlement);
        self
    }

    /// The target platform (`--platform`): linux/amd64 is the only one.
    pub fn platform(mut self, platform: Option<String>) -> Self {
        self.opts.platform = platform;
        self
    }

    /// Runs the build; the image of the target stage is stored, not named.
    pub fn build(&self, progress: &dyn Progress) -> Result<Built, Failure> {
        let built = crate::build::build(self.store, &self.opts, progress);
        // The RUN steps' directories, kept from step to step, go with the build.
        rbuild_runtime::step::release_scratch();
        built
    }
}

/// What to build and how (set through [`Builder`]).
#[derive(Debug, Clone)]
pub(crate) struct BuildOptions {
    /// The Dockerfile text.
    pub(crate) dockerfile: String,
    /// The context directory; None builds without a context (`rbuild build - < Dockerfile`).
    pub(crate) context: Option<PathBuf>,
    pub(crate) build_args: BTreeMap<String, String>,
    pub(crate) target: Option<String>,
    pub(crate) no_cache: bool,
    /// The network of RUN steps that do not ask for one (`--network`).
    pub(crate) network: Network,
    /// RUN steps' capabilities and no_new_privs (`--security-opt`); docker's by default.
    pub(crate) security: SecurityOptions,
    pub(crate) labels: BTreeMap<String, String>,
    /// (name, address) lines every RUN step's /etc/hosts gets (`--add-host`).
    pub(crate) extra_hosts: Vec<(String, String)>,
    /// Times in the image; None means fixed (the base image's creation time).
    pub(crate) source_date_epoch: Option<i64>,
    /// Set from a signal handler: the build stops at the next step boundary.
    pub(crate) cancel: Arc<AtomicBool>,
    /// Refresh base images from `images` before using them (`--pull`).
    pub(crate) pull: bool,
    /// Where images the store lacks come from (a registry); None: the store only.
    pub(crate) images: Option<Arc<dyn ImageSource>>,
    /// Caches consulted when the store has no record for a step (`--cache-from`).
    pub(crate) cache_from: Vec<Arc<dyn CacheSource>>,
    pub(crate) secrets: BTreeMap<String, Secret>,
    /// ssh agent sockets by id.
    pub(crate) ssh: BTreeMap<String, PathBuf>,
    pub(crate) contexts: BTreeMap<String, NamedContext>,
    pub(crate) platform: Option<String>,
    pub(crate) allow: Vec<Entitlement>,
    /// Say why each step that misses the cache missed (`--explain-cache`).
    pub(crate) explain_cache: bool,
    /// The Dockerfile's path as given, which (with the context and target) names the
    /// build whose steps the next one is compared with.
    pub(crate) dockerfile_name: String,
}

/// What a build may let RUN steps do beyond the sandbox's defaults (BuildKit's
/// entitlements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entitlement {
    /// `RUN --network=host`.
    NetworkHost,
    /// `RUN --security=insecure`: the step runs privileged.
    SecurityInsecure,
}

/// An `--allow` value that names no entitlement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid entitlement {0:?} (network.host or security.insecure)")]
pub struct UnknownEntitlement(pub String);

impl Entitlement {
    /// `network.host` or `security.insecure`.
    pub fn parse(s: &str) -> Result<Entitlement, UnknownEntitlement> {
        match s {
            "network.host" => Ok(Entitlement::NetworkHost),
            "security.insecure" => Ok(Entitlement::SecurityInsecure),
            other => Err(UnknownEntitlement(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Entitlement::NetworkHost => "network.host",
            Entitlement::SecurityInsecure => "security.insecure",
        }
    }
}

/// A secret's value; its `Debug` does not show it.
#[derive(Clone)]
pub(crate) struct Secret(pub(crate) Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// What a named build context is (`--build-context NAME=VALUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory (`NAME=DIR`).
    Dir(PathBuf),
    /// An image (`NAME=docker-image://REF`).
    Image(String),
    /// An image in an OCI layout directory (`NAME=oci-layout://PATH[:TAG|@DIGEST]`).
    OciLayout { path: PathBuf, reference: Option<String> },
}

/// A `--build-context` value rbuild cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamedContextError {
    /// `docker-image://` with nothing after it.
    #[error("invalid build context {0:?}: no image")]
    NoImage(String),
    /// A URL of another kind (git, http, …).
    #[error("unsupported build context {value:?}: {scheme}:// (use a directory, docker-image:// or oci-layout://)")]
    Scheme { value: String, scheme: String },
}

impl NamedContext {
    /// Parses the value of `--build-context NAME=VALUE`.
    pub fn parse(value: &str) -> Result<NamedContext, NamedContextError> {
        if let Some(r) = value.strip_prefix("docker-image://") {
            if r.is_empty() {
                return Err(NamedContextError::NoImage(value.to_string()));
            }
            return Ok(NamedContext::Image(r.to_string()));
        }
        if let Some(p) = value.strip_prefix("oci-layout://") {
            let (path, reference) = match p.rsplit_once('@') {
                Some((path, d)) => (path, Some(d.to_string())),
                None => match p.rsplit_once(':').filter(|(_, tag)| !tag.contains('/')) {
                    Some((path, tag)) => (path, Some(tag.to_string())),
                    None => (p, None),
                },
            };
            return Ok(NamedContext::OciLayout { path: PathBuf::from(path), reference });
        }
        if let Some((scheme, _)) = value.split_once("://") {
            return Err(NamedContextError::Scheme { value: value.to_string(), scheme: scheme.to_string() });
        }
        Ok(NamedContext::Dir(PathBuf::from(value)))
    }
}

/// Where FROM and `COPY --from` find images the store lacks (and, with `pull`, fresher
/// ones). Implemented by the CLI over the registry client.
pub trait ImageSource: Sync + Send + std::fmt::Debug {
    /// Fetches `reference` into the store and names it; an error is shown at the
    /// instruction that needed the image.
    fn pull(&self, store: &Store, reference: &str) -> Result<Image, SourceError>;
}

/// A build cache from elsewhere (`--cache-from`), asked when the store has no record for
/// a step's key.
pub trait CacheSource: Sync + Send + std::fmt::Debug {
    /// The record for `key`, stored (with the blobs it needs) in `store`; None when this
    /// cache lacks the key. An error is shown as a warning and counts as a miss.
    fn fetch(&self, store: &Store, key: &str) -> Result<Option<CacheRecord>, SourceError>;

    /// The journal of the build that made this cache, which `explain_cache` compares a
    /// build with when the store has none of its own.
    fn journal(&self) -> Option<crate::explain::Journal> {
        None
    }

    /// The layer holding the contents of the cache mount `name` (the store's name for
    /// it), fetched into `store`; None when this cache does not carry it.
    fn cache_mount(&self, store: &Store, name: &str) -> Result<Option<rbuild_store::Digest>, SourceError> {
        let _ = (store, name);
        Ok(None)
    }
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The target stage's image (not named yet).
    pub image: Image,
    /// The cache keys of the steps that made the image's layers: the target stage and
    /// the stages it is built FROM, in build order (`--cache-to …,mode=min`).
    pub image_keys: Vec<CacheKey>,
    /// Every cache key the build used, of every stage (`mode=max`).
    pub all_keys: Vec<CacheKey>,
    /// The build's steps and the parts of their keys, for explaining the next build's
    /// misses (also where the cache is exported to).
    pub journal: crate::explain::Journal,
    /// The cache mounts the build's RUN steps use, whether they ran or were cached: the
    /// store's name for each and its directory, which does not exist when no step that
    /// uses it ran on this machine. (A `sharing=private` mount's extra instances, made
    /// while its directory was busy, are not listed.)
    pub cache_mounts: Vec<(String, PathBuf)>,
}

/// What the build reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A step starts. `id` is unique in the build.
    Step {
        id: usize,
        stage: &'a str,
        index: usize,
        total: usize,
        text: &'a str,
    },
    Cached {
        id: usize,
    },
    Output {
        id: usize,
        data: &'a [u8],
    },
    Done {
        id: usize,
        secs: f64,
    },
    Failed {
        id: usize,
    },
    /// A step missed the cache, and why (with `explain_cache`).
    CacheMiss {
        id: usize,
        reason: &'a str,
    },
    Warning {
        message: String,
    },
}

pub trait Progress: Sync {
    fn event(&self, e: Event<'_>);
}

/// A build failure: the error, where in the Dockerfile, and (for RUN) the exit code and
/// the last lines of output.
#[derive(Debug)]
pub struct Failure {
    pub error: BuildError,
    /// The instruction that failed (the stage's FROM for its base image and triggers);
    /// None for what is not an instruction's (the context's .dockerignore, the store).
    pub span: Option<Span>,
    pub exit_code: Option<i32>,
    pub tail: Vec<String>,
}

impl Failure {
    /// Locates the failure at `span` unless it already has a place.
    pub(crate) fn at(mut self, span: Span) -> Self {
        self.span.get_or_insert(span);
        self
    }

    /// What the CLI shows: the message (the error and its sources), the place (a parse
    /// error's own, else the instruction's) and a hint.
    pub fn diagnostic(&self) -> Diagnostic {
        let (span, hint) = match &self.error {
            BuildError::Parse(d) => (d.span.or(self.span), d.hint.clone()),
            e => (self.span, e.hint().map(String::from)),
        };
        let message = match &self.error {
            BuildError::Parse(d) => d.message.clone(),
            e => crate::error::message(e),
        };
        Diagnostic { message, span, hint }
    }
}

impl From<BuildError> for Failure {
    fn from(error: BuildError) -> Self {
        Failure { error, span: None, exit_code: None, tail: vec![] }
    }
}

macro_rules! failure_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Self {
                Failure::from(BuildError::from(e))
            }
        }
    )*};
}
failure_from!(rbuild_store::StoreError, rbuild_runtime::RuntimeError, Diagnostic, rbuild_parser::shell::ShellError);

#[cfg(test)]
mod tests {
    use super::*;

    /// The errors of `--allow` and `--build-context` values, as the CLI prints them.
    #[test]
    fn bad_option_values_say_why() {
        assert_eq!(
            Entitlement::parse("net.host").unwrap_err().to_string(),
            "invalid entitlement \"net.host\" (network.host or security.insecure)"
        );
        assert_eq!(
            NamedContext::parse("docker-image://").unwrap_err().to_string(),
            "invalid build context \"docker-image://\": no image"
        );
        assert_eq!(
            NamedContext::parse("https://x/y.git").unwrap_err().to_string(),
            "unsupported build context \"https://x/y.git\": https:// (use a directory, docker-image:// or oci-layout://)"
        );
        assert_eq!(
            NamedContext::parse("oci-layout:///l:v1"),
            Ok(NamedContext::OciLayout { path: "/l".into(), reference: Some("v1".into()) })
        );
    }
}
