//! The client against a real docker-registry on loopback: round trips, HEAD checks,
//! chunked uploads, cross-repository mounts, refusing corrupt blobs, a registry that dies
//! in the middle of a push, and basic auth.

use rbuild_registry::auth::Credentials;
use rbuild_registry::client::{Client, ClientOptions};
use rbuild_registry::progress::{BlobEvent, Progress};
use rbuild_registry::pull::pull;
use rbuild_registry::push::{push, PushOptions};
use rbuild_registry::testing::RegistryServer;
use rbuild_registry::RegistryError;
use rbuild_store::compress::Compression;
use rbuild_store::config::ImageConfig;
use rbuild_store::layer::WriteOptions;
use rbuild_store::{Digest, Image, Reference, Store, StoreError};
use std::sync::Mutex;

/// Records what a pull or push reported.
#[derive(Default)]
struct Recorder<'a> {
    events: Mutex<Vec<String>>,
    on_bytes: Option<Box<dyn Fn(u64) + Sync + 'a>>,
}

impl Progress for Recorder<'_> {
    fn blob(&self, d: &Digest, e: BlobEvent<'_>) {
        let s = match e {
            BlobEvent::Start { .. } => "start".to_string(),
            BlobEvent::Bytes { done, .. } => {
                if let Some(f) = &self.on_bytes {
                    f(done);
                }
                return;
            }
            BlobEvent::Exists => "exists".into(),
            BlobEvent::Mounted { from } => format!("mounted from {from}"),
            BlobEvent::Done => "done".into(),
        };
        self.events.lock().unwrap().push(format!("{} {s}", d.short()));
    }
}

impl Recorder<'_> {
    fn count(&self, what: &str) -> usize {
        self.events.lock().unwrap().iter().filter(|e| e.ends_with(what)).count()
    }
}

fn store(t: &tempfile::TempDir, name: &str) -> Store {
    Store::open(t.path().join(name)).unwrap()
}

/// A two-layer image: a few small files, then `big` bytes of incompressible data.
fn make_image(s: &Store, t: &tempfile::TempDir, big: usize) -> Image {
    let mut layers = Vec::new();
    for (i, size) in [16usize, big].into_iter().enumerate() {
        let dir = t.path().join(format!("layer{i}"));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/hello"), format!("layer {i}\n")).unwrap();
        // xorshift bytes: the same on every run, and gzip cannot shrink them.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ i as u64;
        let data: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(dir.join(format!("data{i}")), data).unwrap();
        layers.push(s.commit_dir(&dir, &WriteOptions { mtime_clamp: Some(0), ..Default::default() }, false).unwrap());
    }
    let mut cfg = ImageConfig { created: Some("2020-01-01T00:00:00Z".into()), ..Default::default() };
    cfg.config.cmd = Some(vec!["/bin/sh".into()]);
    cfg.rootfs.diff_ids = layers.iter().map(|l| l.diff_id).collect();
    s.write_image(&cfg, &layers).unwrap()
}

fn client(reg: &RegistryServer) -> Client {
    Client::new(
        &reg.host(),
        &ClientOptions { config_path: Some("/nonexistent/config.json".into()), ..Default::default() },
    )
    .unwrap()
}

fn reference(reg: &RegistryServer, repo: &str) -> Reference {
    Reference::parse(&format!("{}/{repo}", reg.host())).unwrap()
}

fn leftovers(s: &Store) -> usize {
    std::fs::read_dir(s.tmp_dir()).unwrap().count()
}

#[test]
fn push_pull_round_trip_with_chunks_head_checks_and_skopeo() {
    let reg = RegistryServer::start(None);
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    let img = make_image(&a, &t, 3 << 20);
    let r = reference(&reg, "round/trip:1");
    let c = client(&reg);
    let opts = PushOptions { chunk_size: 1 << 20, compression: Compression::None, ..Default::default() };
    let rec = Recorder::default();
    let digest = push(&a, &c, &img, &r, &opts, &rec).unwrap();
    assert_eq!(rec.count(" done"), 3, "two layers and the config uploaded: {:?}", rec.events);

    // skopeo reads what we pushed.
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{r}")])
        .output()
        .expect("skopeo is needed: run scripts/setup.sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], digest.to_string());
    let layers: Vec<String> = img.layers.iter().map(|l| l.diff_id.to_string()).collect();
    assert_eq!(v["Layers"], serde_json::json!(layers));

    // Pushing again uploads nothing: every blob is there already.
    let again = Recorder::default();
    assert_eq!(push(&a, &c, &img, &r, &opts, &again).unwrap(), digest);
    assert_eq!(again.count(" exists"), 3, "{:?}", again.events);

    // A fresh store pulls the same image: same ID, same layers.
    let b = store(&t, "b");
    let pulled = pull(&b, &c, &r, &Recorder::default()).unwrap();
    assert_eq!(pulled.digest, digest);
    assert_eq!(pulled.image.id(), img.id());
    assert_eq!(pulled.image.layers, img.layers);
    assert_eq!(b.image(&r.to_string()).unwrap().id(), img.id());
    assert_eq!(leftovers(&b), 0);
    // By digest too.
    let by_digest = Reference::parse(&format!("{}/round/trip@{digest}", reg.host())).unwrap();
    assert_eq!(pull(&store(&t, "c"), &c, &by_digest, &Recorder::default()).unwrap().image.id(), img.id());
}

#[test]
fn gzip_docker_manifests_and_cross_repository_mounts() {
    let reg = RegistryServer::start(None);
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    let img = make_image(&a, &t, 64 << 10);
    let c = client(&reg);
    let r1 = reference(&reg, "one/app:1");
    let opts = PushOptions {
        format: rbuild_store::archive::ManifestFormat::Docker,
        compression: rbuild_store::compress::Compression::Gzip,
        ..Default::default()
    };
    push(&a, &c, &img, &r1, &opts, &Recorder::default()).unwrap();
    // The same blobs into another repository are mounted, not uploaded.
    let rec = Recorder::default();
    let r2 = reference(&reg, "two/app:1");
    push(&a, &c, &img, &r2, &opts, &rec).unwrap();
    assert_eq!(rec.count(" mounted from one/app"), 3, "{:?}", rec.events);
    assert_eq!(rec.count(" start"), 0, "{:?}", rec.events);
    // A docker schema 2 manifest with gzip layers pulls back to the same image.
    let b = store(&t, "b");
    let pulled = pull(&b, &c, &r2, &Recorder::default()).unwrap();
    assert_eq!(pulled.image.id(), img.id());
    assert_eq!(pulled.image.layers, img.layers);
}

#[test]
fn a_corrupt_or_resized_blob_is_refused_and_nothing_is_stored() {
    let reg = RegistryServer::start(None);
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    let img = make_image(&a, &t, 256 << 10);
    let c = client(&reg);
    let r = reference(&reg, "bad/blob:1");
    let plain = PushOptions { compression: Compression::None, ..Default::default() };
    push(&a, &c, &img, &r, &plain, &Recorder::default()).unwrap();
    let big = img.layers[1].diff_id;
    let file = reg.blob_file(&big.to_string());
    let good = std::fs::read(&file).unwrap();

    // Same size, other bytes: the digest is wrong.
    let mut flipped = good.clone();
    flipped[1000] ^= 0xff;
    std::fs::write(&file, &flipped).unwrap();
    let b = store(&t, "b");
    let e = pull(&b, &c, &r, &Recorder::default()).unwrap_err();
    assert!(matches!(e, RegistryError::Store(StoreError::DigestMismatch { .. })), "{e}");
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    assert!(!b.has_blob(&big), "a wrong blob was stored");
    assert!(b.images().unwrap().is_empty(), "an image was named after a failed pull");
    assert_eq!(leftovers(&b), 0, "temp files left");

    // More bytes than the manifest says: the size is wrong.
    let mut longer = good.clone();
    longer.extend_from_slice(b"trailing");
    std::fs::write(&file, &longer).unwrap();
    let e = pull(&b, &c, &r, &Recorder::default()).unwrap_err();
    assert!(matches!(e, RegistryError::Store(StoreError::SizeMismatch { .. })), "{e}");
    assert!(!b.has_blob(&big) && b.images().unwrap().is_empty());

    // Repaired, the pull succeeds.
    std::fs::write(&file, &good).unwrap();
    assert_eq!(pull(&b, &c, &r, &Recorder::default()).unwrap().image.id(), img.id());
}

#[test]
fn a_registry_that_dies_mid_push_gives_a_clear_error_and_the_retry_succeeds() {
    let reg = Mutex::new(RegistryServer::start(None));
    let host = reg.lock().unwrap().host();
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    let img = make_image(&a, &t, 24 << 20);
    let r = Reference::parse(&format!("{host}/dies/midway:1")).unwrap();
    let c = Client::new(
        &host,
        &ClientOptions { config_path: Some("/nonexistent/config.json".into()), ..Default::default() },
    )
    .unwrap();
    let opts = PushOptions { chunk_size: 1 << 20, compression: Compression::None, ..Default::default() };
    // Kill the registry once 4 MiB of the big layer went through.
    let killed = std::sync::atomic::AtomicBool::new(false);
    let rec = Recorder {
        on_bytes: Some(Box::new(|done| {
            if done >= 4 << 20 && !killed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                reg.lock().unwrap().kill();
            }
        })),
        ..Default::default()
    };
    let e = push(&a, &c, &img, &r, &opts, &rec).unwrap_err();
    drop(rec);
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Transport { .. }), "{msg}");
    assert!(msg.contains(&host) && msg.to_lowercase().contains("refused"), "not a clear message: {msg}");

    let mut reg = reg.into_inner().unwrap();
    reg.resume();
    let c = client(&reg);
    let d = push(&a, &c, &img, &r, &opts, &Recorder::default()).unwrap();
    let b = store(&t, "b");
    let pulled = pull(&b, &c, &r, &Recorder::default()).unwrap();
    assert_eq!((pulled.digest, pulled.image.id()), (d, img.id()));
}

#[test]
fn basic_auth_refuses_strangers_and_admits_the_account() {
    let reg = RegistryServer::start(Some(("alice", "s3cret")));
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    let img = make_image(&a, &t, 1024);
    let r = reference(&reg, "private/app:1");
    let e = push(&a, &client(&reg), &img, &r, &PushOptions::default(), &Recorder::default()).unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("authentication required") && e.to_string().contains("rbuild login"), "{e}");

    let with = |user: &str, pass: &str| {
        let creds = Credentials { username: user.into(), password: pass.into() };
        Client::new(&reg.host(), &ClientOptions { credentials: Some(creds), ..Default::default() }).unwrap()
    };
    assert!(matches!(with("alice", "wrong").check_login(), Err(RegistryError::LoginFailed { .. })));
    with("alice", "s3cret").check_login().unwrap();
    push(&a, &with("alice", "s3cret"), &img, &r, &PushOptions::default(), &Recorder::default()).unwrap();
    let e = pull(&store(&t, "b"), &client(&reg), &r, &Recorder::default()).unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert_eq!(pull(&store(&t, "c"), &with("alice", "s3cret"), &r, &Recorder::default()).unwrap().image.id(), img.id());
}

#[test]
fn unknown_images_and_non_registries_are_clear_errors() {
    let reg = RegistryServer::start(None);
    let t = tempfile::tempdir().unwrap();
    let e = pull(&store(&t, "a"), &client(&reg), &reference(&reg, "no/such:1"), &Recorder::default()).unwrap_err();
    assert!(matches!(e, RegistryError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("no/such:1"), "{e}");
    // Nothing listens on this port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = format!("127.0.0.1:{dead}");
    let c =
        Client::new(&host, &ClientOptions { config_path: Some("/nonexistent".into()), ..Default::default() }).unwrap();
    let e = pull(&store(&t, "b"), &c, &Reference::parse(&format!("{host}/x:1")).unwrap(), &Recorder::default())
        .unwrap_err();
    assert!(matches!(e, RegistryError::Transport { .. }), "{e}");
}

/// PUTs `body` as a manifest of `media_type` (what another tool would have pushed).
fn put_raw_manifest(reg: &RegistryServer, repo_ref: &str, media_type: &str, body: &str) {
    let (repo, reference) = repo_ref.split_once(':').unwrap();
    let url = format!("http://{}/v2/{repo}/manifests/{reference}", reg.host());
    let out = std::process::Command::new("curl")
        .args(["-fsS", "-X", "PUT", "-H", &format!("Content-Type: {media_type}"), "--data-binary", body, &url])
        .output()
        .expect("curl is needed: run scripts/setup.sh");
    assert!(out.status.success(), "PUT {url}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn an_index_resolves_to_its_linux_amd64_image() {
    let reg = RegistryServer::start(None);
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    let amd64 = make_image(&a, &t, 1000);
    let other = make_image(&a, &t, 2000);
    let c = client(&reg);
    // Uncompressed: the pushed manifests are the stored ones (their sizes go in the index).
    let plain = PushOptions { compression: Compression::None, ..Default::default() };
    let d_amd64 = push(&a, &c, &amd64, &reference(&reg, "multi/app:amd64"), &plain, &Recorder::default()).unwrap();
    let d_other = push(&a, &c, &other, &reference(&reg, "multi/app:arm64"), &plain, &Recorder::default()).unwrap();
    let entry = |d: &Digest, size: u64, arch: &str| serde_json::json!({"mediaType": rbuild_store::config::MEDIA_TYPE_MANIFEST, "digest": d.to_string(), "size": size, "platform": {"os": "linux", "architecture": arch}});
    let size = |img: &Image| img.manifest_size;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": rbuild_store::config::MEDIA_TYPE_INDEX,
        "manifests": [entry(&d_other, size(&other), "arm64"), entry(&d_amd64, size(&amd64), "amd64")]
    });
    put_raw_manifest(&reg, "multi/app:latest", rbuild_store::config::MEDIA_TYPE_INDEX, &index.to_string());
    let b = store(&t, "b");
    let pulled = pull(&b, &c, &reference(&reg, "multi/app:latest"), &Recorder::default()).unwrap();
    assert_eq!(pulled.image.id(), amd64.id(), "the index's amd64 image was not the one pulled");
    assert_eq!(pulled.digest, Digest::of(index.to_string().as_bytes()), "the digest reported is the index's");

    // An index without linux/amd64 says what it has.
    let arm_only = serde_json::json!({"schemaVersion": 2, "mediaType": rbuild_store::config::MEDIA_TYPE_INDEX, "manifests": [entry(&d_other, size(&other), "arm64")]});
    put_raw_manifest(&reg, "multi/app:arm-only", rbuild_store::config::MEDIA_TYPE_INDEX, &arm_only.to_string());
    let e = pull(&store(&t, "c"), &c, &reference(&reg, "multi/app:arm-only"), &Recorder::default()).unwrap_err();
    assert!(e.to_string().contains("no linux/amd64 image") && e.to_string().contains("linux/arm64"), "{e}");
}

#[test]
fn a_cache_is_imported_by_digest_when_its_name_has_one() {
    use rbuild_registry::cache::{export, CacheImport, CacheLocation};
    let reg = RegistryServer::start(None);
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    let img = make_image(&a, &t, 1000);
    let rec = |key: &str, layer: &Digest| rbuild_store::CacheRecord {
        key: key.into(),
        value: Default::default(),
        refs: vec![*layer],
        created: 0,
    };
    a.cache_put(&rec("first", &img.layers[0].diff_id)).unwrap();
    let opts = ClientOptions { config_path: Some("/nonexistent/config.json".into()), ..Default::default() };
    let tagged = reference(&reg, "cache/app:buildcache");
    let first = a.write_cache_artifact(&["first".into()]).unwrap();
    export(&a, &first, &CacheLocation::Registry(tagged.clone()), &opts, &Recorder::default()).unwrap();
    // The tag moves on to a cache with another record.
    a.cache_put(&rec("second", &img.layers[1].diff_id)).unwrap();
    let second = a.write_cache_artifact(&["second".into()]).unwrap();
    export(&a, &second, &CacheLocation::Registry(tagged.clone()), &opts, &Recorder::default()).unwrap();

    let b = store(&t, "b");
    let pinned = Reference::parse(&format!("{}/cache/app@{}", reg.host(), first.manifest)).unwrap();
    let by_digest = CacheImport::open(&b, &CacheLocation::Registry(pinned), &opts).unwrap();
    assert!(
        by_digest.fetch(&b, "first", &Recorder::default()).unwrap().is_some(),
        "the digest's cache was not the one read"
    );
    assert!(by_digest.fetch(&b, "second", &Recorder::default()).unwrap().is_none());
    let by_tag = CacheImport::open(&b, &CacheLocation::Registry(tagged), &opts).unwrap();
    assert!(by_tag.fetch(&b, "second", &Recorder::default()).unwrap().is_some());
    // A digest the registry does not have is an error, not the tag's cache.
    let unknown = Reference::parse(&format!("{}/cache/app@{}", reg.host(), Digest::of(b"nothing"))).unwrap();
    assert!(CacheImport::open(&b, &CacheLocation::Registry(unknown), &opts).is_err());
}

/// Regression (issue 12): a manifest or blob that trickled one byte every few seconds
/// hung `pull` forever (only a per-read timeout). A pull has an overall deadline and a
/// minimum rate, both configurable, each failing with a clear error; nothing is stored.
#[test]
fn trickling_registries_hit_the_deadline_or_the_minimum_rate() {
    use rbuild_registry::client::MinRate;
    use rbuild_registry::testing::{Trickle, TrickleServer};
    use std::time::{Duration, Instant};
    for slow in [Trickle::Manifest, Trickle::Layer] {
        for (deadline, rate) in [
            (Some(Duration::from_millis(1500)), None),
            (None, Some(MinRate { bytes_per_sec: 200, window: Duration::from_secs(1) })),
        ] {
            let server = TrickleServer::start(slow, Duration::from_millis(100));
            let t = tempfile::tempdir().unwrap();
            let s = store(&t, "s");
            let opts = ClientOptions { pull_timeout: deadline, min_rate: rate, ..Default::default() };
            let c = Client::new(&server.host(), &opts).unwrap();
            let r = Reference::parse(&format!("{}/slow/img:1", server.host())).unwrap();
            let t0 = Instant::now();
            let e = pull(&s, &c, &r, &rbuild_registry::progress::Quiet).unwrap_err().to_string();
            let took = t0.elapsed();
            assert!(took < Duration::from_secs(6), "{slow:?}: took {took:?}");
            let want = if deadline.is_some() { "--pull-timeout" } else { "--pull-min-rate" };
            assert!(e.contains(want), "{slow:?}: {e}");
            assert!(s.images().unwrap().is_empty());
            assert_eq!(leftovers(&s), 0, "{slow:?}: temp files left");
        }
    }
}

/// Layers leave compressed with gzip by default, on every core, streamed as they are
/// compressed; a second push (or a push of the pulled image from another store that met
/// the compressed blobs) compresses and uploads nothing; a damaged compressed blob in the
/// registry is a digest mismatch, not a broken connection.
#[test]
fn gzip_by_default_and_a_second_push_neither_compresses_nor_uploads() {
    let reg = RegistryServer::start(None);
    let t = tempfile::tempdir().unwrap();
    let a = store(&t, "a");
    let img = make_image(&a, &t, 3 << 20);
    let c = client(&reg);
    let r = reference(&reg, "gz/app:1");
    let first = Recorder::default();
    let digest = push(&a, &c, &img, &r, &PushOptions::default(), &first).unwrap();
    assert_eq!(first.count(" start"), 3, "two layers and the config: {:?}", first.events);
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{r}")])
        .output()
        .expect("skopeo is needed: run scripts/setup.sh");
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert!(layers.iter().all(|l| l["mediaType"] == rbuild_store::config::MEDIA_TYPE_LAYER_GZIP), "{m}");
    // The small-files layer shrinks; the noise does not grow by more than stored blocks.
    let sizes: Vec<u64> = layers.iter().map(|l| l["size"].as_u64().unwrap()).collect();
    assert!(sizes[0] < img.layers[0].size / 4, "{sizes:?}");
    assert!(sizes[1] < img.layers[1].size + img.layers[1].size / 500, "{sizes:?}");
    // Each blob is one gzip stream of many members (one a MiB of input) that gzip(1)
    // checks whole.
    for l in layers {
        let file = reg.blob_file(l["digest"].as_str().unwrap());
        let ok = std::process::Command::new("gzip").arg("-t").stdin(std::fs::File::open(&file).unwrap()).status();
        assert!(ok.unwrap().success(), "gzip -t refused {l}");
    }
    let members = std::fs::read(reg.blob_file(layers[1]["digest"].as_str().unwrap())).unwrap();
    assert!(members.windows(4).filter(|w| *w == [0x1f, 0x8b, 8, 0]).count() >= 3, "not multi-member");

    let again = Recorder::default();
    assert_eq!(push(&a, &c, &img, &r, &PushOptions::default(), &again).unwrap(), digest);
    assert_eq!(again.count(" start"), 0, "compressed or uploaded again: {:?}", again.events);
    assert_eq!(again.count(" exists"), 3, "{:?}", again.events);

    // Pulled into another store, decompressed while it downloads: the same image, and
    // pushed from there to a new repository, the registry's own blobs are mounted.
    let b = store(&t, "b");
    let pulled = pull(&b, &c, &r, &Recorder::default()).unwrap();
    assert_eq!((pulled.digest, pulled.image.id()), (digest, img.id()));
    assert_eq!(pulled.image.layers, img.layers);
    let back = Recorder::default();
    let d2 = push(&b, &c, &pulled.image, &reference(&reg, "gz/copy:1"), &PushOptions::default(), &back).unwrap();
    assert_eq!(d2, digest, "the same manifest: the same compressed blobs");
    assert_eq!(back.count(" start"), 0, "{:?}", back.events);
    assert_eq!(back.count(" mounted from gz/app"), 3, "{:?}", back.events);

    // zstd on request, as its own compressed form.
    let z = PushOptions { compression: Compression::Zstd, ..Default::default() };
    push(&a, &c, &img, &reference(&reg, "gz/zstd:1"), &z, &Recorder::default()).unwrap();
    let fresh = store(&t, "z");
    assert_eq!(pull(&fresh, &c, &reference(&reg, "gz/zstd:1"), &Recorder::default()).unwrap().image.id(), img.id());

    // A flipped byte in a compressed blob: a digest mismatch, nothing stored.
    let file = reg.blob_file(layers[1]["digest"].as_str().unwrap());
    let good = std::fs::read(&file).unwrap();
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0xff;
    std::fs::write(&file, &flipped).unwrap();
    let d = store(&t, "d");
    let e = pull(&d, &c, &r, &Recorder::default()).unwrap_err();
    assert!(matches!(e, RegistryError::Store(StoreError::DigestMismatch { .. })), "{e}");
    assert!(!d.has_blob(&img.layers[1].diff_id) && d.images().unwrap().is_empty());
    assert_eq!(leftovers(&d), 0);
}
