//! One registry: the `/v2/` endpoint, authentication (anonymous, Basic, Bearer tokens),
//! and requests with the errors the distribution spec defines turned into messages.

use crate::auth::{parse_challenge, Challenge, Credentials, DockerConfig};
use crate::error::{RegistryError, Result};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use ureq::http::{Request, Response};

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (host[:port]) spoken to over plain http, beside loopback ones.
    pub insecure: Vec<String>,
    /// docker's config.json (None: `$DOCKER_CONFIG` or `~/.docker`).
    pub config_path: Option<std::path::PathBuf>,
    /// Credentials to use instead of those stored.
    pub credentials: Option<Credentials>,
    /// How long everything a client downloads may take, all together (a pull: manifests,
    /// config, layers); None: no limit.
    pub pull_timeout: Option<Duration>,
    /// The slowest a download may be; None: any speed.
    pub min_rate: Option<MinRate>,
}

/// A minimum download rate: at least `bytes_per_sec` on average over every `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    pub bytes_per_sec: u64,
    pub window: Duration,
}

/// The default deadline of a pull: an hour.
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(3600);
/// The default minimum rate: 1 KiB/s over 30 s (a stalled or trickling server fails
/// within half a minute; a slow link does not).
pub const DEFAULT_MIN_RATE: MinRate = MinRate { bytes_per_sec: 1024, window: Duration::from_secs(30) };

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: vec![],
            config_path: None,
            credentials: None,
            pull_timeout: Some(DEFAULT_PULL_TIMEOUT),
            min_rate: Some(DEFAULT_MIN_RATE),
        }
    }
}

impl ClientOptions {
    /// Options from the environment: `RBUILD_INSECURE_REGISTRIES` (comma-separated).
    pub fn from_env() -> ClientOptions {
        let insecure = std::env::var("RBUILD_INSECURE_REGISTRIES")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        ClientOptions { insecure, ..Default::default() }
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.config_path.clone().unwrap_or_else(crate::auth::default_config_path)
    }
}

/// Is `registry` (host[:port]) on this machine? Those are spoken to over plain http.
pub fn is_loopback(registry: &str) -> bool {
    if let Ok(ip) = registry.parse::<std::net::IpAddr>() {
        return ip.is_loopback();
    }
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => {
            registry
                .rsplit_once(':')
                .map_or(registry, |(h, p)| if p.bytes().all(|c| c.is_ascii_digit()) { h } else { registry })
        }
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A request body.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A stream of exactly this many bytes (sent with that Content-Length; a reader that
    /// fails, as a corrupt blob's does, cuts the upload short).
    Reader(&'a mut (dyn std::io::Read + Send), u64),
    /// A stream of unknown length, sent with chunked transfer encoding (a layer as it is
    /// compressed).
    Stream(&'a mut (dyn std::io::Read + Send)),
}

#[derive(Default)]
struct AuthState {
    pinged: bool,
    challenge: Option<Challenge>,
    /// Bearer tokens by scope list.
    tokens: HashMap<String, String>,
}

/// A connection to one registry.
pub struct Client {
    registry: String,
    base: String,
    agent: ureq::Agent,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    /// When downloads through this client must be over, and what they were given.
    deadline: Option<(Instant, Duration)>,
    min_rate: Option<MinRate>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.base)
    }
}

pub(crate) const MANIFEST_ACCEPT: &str =
    "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

fn agent(min_rate: Option<MinRate>) -> ureq::Agent {
    // A read that waits longer than the rate's window has already failed the rate.
    let per_read = min_rate.map_or(Duration::from_secs(120), |m| m.window.min(Duration::from_secs(120)));
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(8)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(per_read))
        .user_agent(concat!("rbuild/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// `%`-escapes a query value.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The message of a distribution-spec error body (`{"errors":[{"code","message"}]}`).
pub(crate) fn error_detail(resp: &mut Response<ureq::Body>) -> String {
    let body = resp.body_mut().with_config().limit(64 * 1024).read_to_vec().unwrap_or_default();
    let parsed: Option<Vec<String>> = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| {
        v.get("errors")?.as_array().map(|errs| {
            errs.iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or_default();
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or_default();
                    format!("{code}: {msg}").trim_matches([' ', ':']).to_string()
                })
                .collect()
        })
    });
    match parsed {
        Some(v) if !v.is_empty() => format!("({})", v.join("; ")),
        _ => {
            let t = String::from_utf8_lossy(&body).trim().chars().take(200).collect::<String>();
            if t.is_empty() {
                String::new()
            } else {
                format!("({t})")
            }
        }
    }
}

impl Client {
    /// A client for `registry` (a host as in image names: `127.0.0.1:5000`, `docker.io`),
    /// with the stored credentials for it (or those in `opts`).
    pub fn new(registry: &str, opts: &ClientOptions) -> Result<Client> {
        let endpoint = if registry == "docker.io" { "registry-1.docker.io" } else { registry };
        let plain = is_loopback(registry) || opts.insecure.iter().any(|i| i == registry);
        let scheme = if plain { "http" } else { "https" };
        let creds = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => DockerConfig::load(&opts.config_path())?.credentials(registry)?,
        };
        Ok(Client {
            registry: registry.to_string(),
            base: format!("{scheme}://{endpoint}"),
            agent: agent(opts.min_rate),
            creds,
            auth: Mutex::new(AuthState::default()),
            deadline: opts.pull_timeout.filter(|d| !d.is_zero()).map(|d| (Instant::now() + d, d)),
            min_rate: opts.min_rate.filter(|m| m.bytes_per_sec > 0 && !m.window.is_zero()),
        })
    }

    /// The time downloads have left, or the error saying it ran out.
    fn time_left(&self) -> Result<Option<Duration>> {
        match self.deadline {
            None => Ok(None),
            Some((at, _)) => match at.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
                Some(left) => Ok(Some(left)),
                None => Err(RegistryError::transport(format!("pulling from {}", self.registry), self.deadline_error())),
            },
        }
    }

    fn deadline_error(&self) -> String {
        let d = self.deadline.map(|(_, d)| d).unwrap_or_default();
        format!("the pull did not finish within its deadline of {} (--pull-timeout)", show_duration(d))
    }

    /// A response body as a download: failed once the deadline passed or when it comes
    /// in slower than the minimum rate.
    pub(crate) fn download<R: std::io::Read>(&self, inner: R) -> Download<R> {
        let now = Instant::now();
        Download {
            inner,
            deadline: self.deadline.map(|(at, _)| (at, self.deadline_error())),
            min_rate: self.min_rate,
            window_start: now,
            window_bytes: 0,
        }
    }

    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `{base}/v2/{path}`
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.base)
    }

    /// A Location header made absolute.
    pub(crate) fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    fn raw(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        auth: Option<&str>,
        body: &mut Body<'_>,
    ) -> Result<Response<ureq::Body>> {
        let mut b = Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        // Upload URLs carry a long opaque state in their query: not worth showing.
        let what = || format!("{method} {}", url.split('?').next().unwrap_or(url));
        // Downloads share the client's deadline, including reading their bodies.
        if method == "GET" {
            if let Some(left) = self.time_left()? {
                let req = self.agent.configure_request(b.body(()).map_err(|e| RegistryError::transport(what(), e))?);
                let req = req.timeout_global(Some(left)).build();
                return self.agent.run(req).map_err(|e| match e {
                    ureq::Error::Timeout(ureq::Timeout::Global) => {
                        RegistryError::transport(what(), self.deadline_error())
                    }
                    e => RegistryError::transport(what(), describe(&e)),
                });
            }
        }
        let r = match body {
            Body::Empty => self.agent.run(b.body(()).map_err(|e| RegistryError::transport(what(), e))?),
            Body::Bytes(data) => self.agent.run(b.body(*data).map_err(|e| RegistryError::transport(what(), e))?),
            Body::Reader(r, len) => {
                let b = b.header("Content-Length", len.to_string());
                self.agent
                    .run(b.body(ureq::SendBody::from_reader(*r)).map_err(|e| RegistryError::transport(what(), e))?)
            }
            Body::Stream(r) => self
                .agent
                .run(b.body(ureq::SendBody::from_reader(*r)).map_err(|e| RegistryError::transport(what(), e))?),
        };
        r.map_err(|e| RegistryError::transport(what(), describe(&e)))
    }

    /// Learns how the registry wants us to authenticate (once).
    fn ping(&self) -> Result<()> {
        if self.auth.lock().unwrap_or_else(|e| e.into_inner()).pinged {
            return Ok(());
        }
        let url = self.url("");
        let mut resp = self.raw("GET", &url, &[], None, &mut Body::Empty)?;
        let challenge = match resp.status().as_u16() {
            200..=299 => None,
            401 => {
                let h = resp
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                Some(parse_challenge(&h).ok_or_else(|| {
                    RegistryError::bad(format!("GET {url}"), format!("unsupported authentication challenge {h:?}"))
                })?)
            }
            s => {
                let detail = error_detail(&mut resp);
                return Err(RegistryError::Http {
                    what: format!("{} is not an OCI registry (GET {url})", self.registry),
                    status: s,
                    detail,
                });
            }
        };
        let mut st = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        st.pinged = true;
        st.challenge = challenge;
        Ok(())
    }

    /// The Authorization header for `scopes` (None: anonymous).
    fn authorization(&self, scopes: &[String]) -> Result<Option<String>> {
        let challenge = self.auth.lock().unwrap_or_else(|e| e.into_inner()).challenge.clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.creds.as_ref().map(|c| c.basic_header())),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = scopes.join(" ");
                if let Some(t) = self.auth.lock().unwrap_or_else(|e| e.into_inner()).tokens.get(&key) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes)?;
                self.auth.lock().unwrap_or_else(|e| e.into_inner()).tokens.insert(key, token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &[String]) -> Result<String> {
        let mut url = realm.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        if let Some(s) = service {
            url.push_str(&format!("{sep}service={}", query_escape(s)));
            sep = '&';
        }
        for s in scopes {
            url.push_str(&format!("{sep}scope={}", query_escape(s)));
            sep = '&';
        }
        let basic = self.creds.as_ref().map(|c| c.basic_header());
        let mut resp = self.raw("GET", &url, &[], basic.as_deref(), &mut Body::Empty)?;
        let status = resp.status().as_u16();
        if status != 200 {
            let detail = format!("the token server answered {status} {}", error_detail(&mut resp));
            return Err(match &self.creds {
                Some(_) => RegistryError::LoginFailed { registry: self.registry.clone(), detail },
                None => RegistryError::Unauthorized { registry: self.registry.clone(), detail: format!(" ({detail})") },
            });
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| RegistryError::transport(format!("token from {realm}"), e))?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::bad(format!("token from {realm}"), e.to_string()))?;
        v.get("token")
            .or(v.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(String::from)
            .ok_or_else(|| RegistryError::bad(format!("token from {realm}"), "no token in the answer"))
    }

    /// Sends a request with the authorization `scopes` need. A 401 (an expired token, a
    /// changed challenge) is retried once with fresh credentials when the body allows;
    /// a second 401 is an error.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        scopes: &[String],
        headers: &[(&str, &str)],
        mut body: Body<'_>,
    ) -> Result<Response<ureq::Body>> {
        self.ping()?;
        let auth = self.authorization(scopes)?;
        let mut resp = self.raw(method, url, headers, auth.as_deref(), &mut body)?;
        if resp.status().as_u16() == 401 && !matches!(body, Body::Reader(..) | Body::Stream(..)) {
            let h = resp.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).and_then(parse_challenge);
            {
                let mut st = self.auth.lock().unwrap_or_else(|e| e.into_inner());
                st.tokens.remove(&scopes.join(" "));
                if h.is_some() {
                    st.challenge = h;
                }
            }
            let auth = self.authorization(scopes)?;
            resp = self.raw(method, url, headers, auth.as_deref(), &mut body)?;
        }
        if resp.status().as_u16() == 401 {
            let detail = error_detail(&mut resp);
            let detail = if detail.is_empty() { String::new() } else { format!(" {detail}") };
            return Err(RegistryError::Unauthorized { registry: self.registry.clone(), detail });
        }
        Ok(resp)
    }

    /// Checks that the credentials work (GET /v2/ with them; for Bearer, a token).
    pub fn check_login(&self) -> Result<()> {
        self.ping()?;
        let challenge = self.auth.lock().unwrap_or_else(|e| e.into_inner()).challenge.clone();
        match challenge {
            None => Ok(()),
            Some(Challenge::Basic) => {
                let auth = self.authorization(&[])?;
                let mut resp = self.raw("GET", &self.url(""), &[], auth.as_deref(), &mut Body::Empty)?;
                match resp.status().as_u16() {
                    200..=299 => Ok(()),
                    s => Err(RegistryError::LoginFailed {
                        registry: self.registry.clone(),
                        detail: format!("{s} {}", error_detail(&mut resp)).trim().to_string(),
                    }),
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                self.fetch_token(&realm, service.as_deref(), &[]).map(|_| ())
            }
        }
    }
}

/// `1h`, `2m30s`, `5s`, `0.25s`.
fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        let t = format!("{:.3}", d.as_secs_f64());
        return format!("{}s", t.trim_end_matches('0').trim_end_matches('.'));
    }
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    let mut out = String::new();
    for (v, u) in [(h, "h"), (m, "m"), (s, "s")] {
        if v > 0 {
            out.push_str(&format!("{v}{u}"));
        }
    }
    out
}

/// A response body read with the client's deadline and minimum rate.
pub(crate) struct Download<R> {
    inner: R,
    deadline: Option<(Instant, String)>,
    min_rate: Option<MinRate>,
    window_start: Instant,
    window_bytes: u64,
}

/// Is this ureq's timeout (it wraps its own errors in `io::Error::other`)?
fn is_timeout(e: &std::io::Error) -> bool {
    e.get_ref().and_then(|x| x.downcast_ref::<ureq::Error>()).is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

impl<R> Download<R> {
    fn too_slow(&self, got: u64, spent: Duration, m: MinRate) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "the registry sent {got} bytes in {}, slower than the minimum of {} bytes/s (--pull-min-rate)",
                show_duration(spent),
                m.bytes_per_sec
            ),
        )
    }
}

impl<R: std::io::Read> std::io::Read for Download<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            // A read that waited a whole window (the per-read timeout) got nothing.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut || is_timeout(&e) => {
                let now = Instant::now();
                if let Some((_, msg)) = self.deadline.as_ref().filter(|(at, _)| now >= *at) {
                    return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, msg.clone()));
                }
                return Err(match self.min_rate {
                    Some(m) => self.too_slow(self.window_bytes, now.duration_since(self.window_start), m),
                    None => e,
                });
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(0);
        }
        let now = Instant::now();
        if let Some((at, msg)) = &self.deadline {
            if now >= *at {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, msg.clone()));
            }
        }
        if let Some(m) = self.min_rate {
            self.window_bytes += n as u64;
            let spent = now.duration_since(self.window_start);
            if spent >= m.window {
                let want = (m.bytes_per_sec as f64 * spent.as_secs_f64()) as u64;
                if self.window_bytes < want {
                    return Err(self.too_slow(self.window_bytes, spent, m));
                }
                self.window_start = now;
                self.window_bytes = 0;
            }
        }
        Ok(n)
    }
}

/// A ureq error as a short message (`connection refused`, `timed out`, …).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// The scope a repository operation needs.
pub(crate) fn scope(repo: &str, push: bool) -> String {
    format!("repository:{repo}:{}", if push { "pull,push" } else { "pull" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1:5000", "localhost", "localhost:5000", "127.1.2.3", "[::1]:5000", "::1"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["docker.io", "10.0.0.1:5000", "registry.example:443", "localhost.example"] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    /// A registry that wants Bearer tokens from its own token endpoint, which issues
    /// `tok-<scope>` to alice:pw only. Answers `n` requests; records request lines.
    fn fake_bearer_registry(n: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        use std::io::{BufRead, BufReader, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..n {
                let (s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let mut auth = String::new();
                loop {
                    let mut h = String::new();
                    r.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.strip_prefix("authorization: ").or(h.strip_prefix("Authorization: ")) {
                        auth = v.trim().to_string();
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or_default().to_string();
                seen.push(format!("{} {path} [{auth}]", line.split(' ').next().unwrap_or_default()));
                let alice = Credentials { username: "alice".into(), password: "pw".into() }.basic_header();
                let (status, headers, body) = if path.starts_with("/token") {
                    if auth == alice {
                        let scope = path.split("scope=").nth(1).unwrap_or("none").to_string();
                        ("200 OK", String::new(), format!(r#"{{"token":"tok-{scope}"}}"#))
                    } else {
                        (
                            "401 Unauthorized",
                            String::new(),
                            r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.to_string(),
                        )
                    }
                } else if auth.starts_with("Bearer tok-") {
                    ("200 OK", String::new(), "{}".to_string())
                } else {
                    let challenge = format!(
                        "Www-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\"\r\n"
                    );
                    (
                        "401 Unauthorized",
                        challenge,
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_string(),
                    )
                };
                let mut s = s;
                let _ = write!(s, "HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            }
            seen
        });
        (port, h)
    }

    #[test]
    fn bearer_tokens_are_fetched_per_scope_with_the_credentials() {
        let (port, server) = fake_bearer_registry(4);
        let opts = ClientOptions {
            credentials: Some(Credentials { username: "alice".into(), password: "pw".into() }),
            ..Default::default()
        };
        let c = Client::new(&format!("127.0.0.1:{port}"), &opts).unwrap();
        let resp = c.send("GET", &c.url("app/tags/list"), &[scope("app", false)], &[], Body::Empty).unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        // The token is reused for the same scope: no further token request.
        let resp = c.send("GET", &c.url("app/tags/list"), &[scope("app", false)], &[], Body::Empty).unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let seen = server.join().unwrap();
        assert_eq!(seen[0], "GET /v2/ []");
        assert!(seen[1].starts_with("GET /token?service=fake&scope=repository%3Aapp%3Apull [Basic "), "{seen:?}");
        assert_eq!(seen[2], "GET /v2/app/tags/list [Bearer tok-repository%3Aapp%3Apull]");
        assert_eq!(seen[3], seen[2]);

        // Wrong credentials: the token server refuses, and that is a failed login.
        let (port, server) = fake_bearer_registry(2);
        let opts = ClientOptions {
            credentials: Some(Credentials { username: "alice".into(), password: "nope".into() }),
            ..Default::default()
        };
        let c = Client::new(&format!("127.0.0.1:{port}"), &opts).unwrap();
        assert!(matches!(c.check_login(), Err(RegistryError::LoginFailed { .. })));
        server.join().unwrap();
        // No credentials at all: authentication required.
        let (port, server) = fake_bearer_registry(2);
        let opts = ClientOptions { config_path: Some("/nonexistent/config.json".into()), ..Default::default() };
        let c = Client::new(&format!("127.0.0.1:{port}"), &opts).unwrap();
        let e = c.send("GET", &c.url("app/tags/list"), &[scope("app", false)], &[], Body::Empty).unwrap_err();
        assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
        server.join().unwrap();
    }

    #[test]
    fn escapes_queries() {
        assert_eq!(query_escape("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
    }
}
