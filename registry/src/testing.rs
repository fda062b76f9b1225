//! Test support (feature `testing`): a real `docker-registry` on a free loopback port with
//! its storage in a temp dir, optionally behind htpasswd basic auth. Stopped and removed
//! on drop, also when a test fails.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RegistryServer {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

impl RegistryServer {
    /// Starts a registry; with `auth`, `(user, password)` is the only account.
    pub fn start(auth: Option<(&str, &str)>) -> RegistryServer {
        let dir = std::env::temp_dir().join(format!("rbuild-registry-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let port = free_port();
        let mut cfg = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("storage").display()
        );
        if let Some((user, pass)) = auth {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, pass])
                .output()
                .expect("htpasswd (apache2-utils) is needed: run scripts/setup.sh");
            assert!(out.status.success(), "htpasswd failed");
            std::fs::write(dir.join("htpasswd"), &out.stdout).unwrap();
            cfg.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rbuild-test\n    path: {}\n",
                dir.join("htpasswd").display()
            ));
        }
        std::fs::write(dir.join("config.yml"), cfg).unwrap();
        let mut s = RegistryServer { port, dir, child: None };
        s.resume();
        s
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the registry keeps its blobs.
    pub fn storage(&self) -> &Path {
        &self.dir
    }

    /// The file holding `digest` (`sha256:…`) in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.dir.join(format!("storage/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }

    /// Kills the registry (SIGKILL), as a crash or a pulled plug would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the registry again on the same port and storage.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "the registry is running");
        let log = std::fs::File::create(self.dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.join("config.yml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry is needed: run scripts/setup.sh");
        self.child = Some(child);
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let log = std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default();
        panic!("docker-registry did not start on port {}: {log}", self.port);
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Which part of the image a [`TrickleServer`] sends slowly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trickle {
    Manifest,
    Layer,
}

/// A fake registry on loopback serving one image, `NAME:1` for any NAME, whose manifest
/// or layer comes one byte every `interval` (everything else at once). Stops on drop.
pub struct TrickleServer {
    pub port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl TrickleServer {
    pub fn start(slow: Trickle, interval: Duration) -> TrickleServer {
        use rbuild_store::tar::{Entry, EntryKind, Writer};
        use rbuild_store::Digest;
        let mut w = Writer::new(Vec::new());
        let mut e = Entry::new("file", EntryKind::File);
        let data = vec![b'z'; 64 * 1024];
        e.size = data.len() as u64;
        w.append(&e, &mut data.as_slice()).unwrap();
        let layer = w.finish().unwrap();
        let ld = Digest::of(&layer);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{ld}"]}}}}"#
        );
        let cd = Digest::of(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let bodies = std::sync::Arc::new((manifest.into_bytes(), config.into_bytes(), layer, ld, cd));
        let accept = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (bodies, stopping) = (bodies.clone(), stopping.clone());
                std::thread::spawn(move || {
                    use std::io::{BufRead, BufReader, Write};
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    let _ = r.read_line(&mut line);
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                    }
                    let path = line.split(' ').nth(1).unwrap_or("").to_string();
                    let (manifest, config, layer, ld, cd) = &*bodies;
                    let (body, ctype, trickle): (&[u8], &str, bool) = if path == "/v2/" {
                        (b"{}", "application/json", false)
                    } else if path.contains("/manifests/") {
                        (manifest, "application/vnd.oci.image.manifest.v1+json", slow == Trickle::Manifest)
                    } else if path.ends_with(&cd.to_string()) {
                        (config, "application/octet-stream", false)
                    } else if path.ends_with(&ld.to_string()) {
                        (layer, "application/octet-stream", slow == Trickle::Layer)
                    } else {
                        (b"", "text/plain", false)
                    };
                    let mut conn = conn;
                    let status = if body.is_empty() { "404 Not Found" } else { "200 OK" };
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    if !trickle {
                        let _ = conn.write_all(body);
                        return;
                    }
                    for b in body {
                        if stopping.load(std::sync::atomic::Ordering::SeqCst) || conn.write_all(&[*b]).is_err() {
                            return;
                        }
                        std::thread::sleep(interval);
                    }
                });
            }
        });
        TrickleServer { port, stop, accept: Some(accept) }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for TrickleServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
    }
}
