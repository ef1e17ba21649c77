//! Core and memory-store benchmarks. After criterion's own report, prints ratios
//! against peers measured in this same run (jsonwebtoken's `decode`, a bare
//! pre-keyed HMAC, and a Go token store: benches/go/tokenstore, built with `go
//! build` when Go is installed; the ratio lines say so when it is not), so the
//! figures hold on a noisy shared machine.
//!
//! Run: `cargo bench --bench core` (add `-- --quick` for a short run;
//! `-- memory_store` for the store against the Go peer only).
#![allow(clippy::disallowed_methods)] // a test (bench, example) reads real time and randomness

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tollgate::crypto::native::{load_keys, JwtCrypto};
use tollgate::engine::jwt;
use tollgate::engine::ops::{self, Entropy, Tokens, VerifyMode};
use tollgate::engine::policy::{Policy, Rules};
use tollgate::engine::refresh_key::RefreshSecret;
use tollgate::engine::step::{CryptoCmd, Expect, Operation, Reply, Step, StoreCmd, StoreReply, WriteOp};
use tollgate::store::CommitResult;
use tollgate::{Alg, Clock, Config, KeySpec, ManualClock, MemoryStore, SessionManager};

const SECRET: &[u8] = b"bench-secret-of-at-least-thirty-two-bytes";
const ISS: &str = "https://auth.example";
const AUD: &str = "api";

fn policy() -> Policy {
    let mut p = Policy::default();
    p.claims.issuer = Some(ISS.into());
    p.claims.audience = vec![AUD.into()];
    // Required with an asymmetric signing key (it authenticates stored records).
    p.refresh_secret = Some(RefreshSecret(b"bench-refresh-secret-of-32-bytes-or-more".to_vec()));
    p
}

fn key_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Drives an operation synchronously against the memory store (its synchronous
/// methods), answering crypto with the native driver: the core's own cost.
fn run<O: Operation>(mut op: O, store: &MemoryStore, crypto: &JwtCrypto) -> O::Output {
    loop {
        let reply = match op.poll() {
            Step::Done(r) => return r.expect("bench operation failed"),
            Step::Store(StoreCmd::Get { keys } | StoreCmd::Recall { keys }) => Reply::Store(StoreReply::Values(store.get_many(&keys))),
            Step::Store(StoreCmd::Commit { ops }) => Reply::Store(match store.commit_now(&ops) {
                CommitResult::Committed => StoreReply::Committed,
                CommitResult::Conflict => StoreReply::Conflict,
            }),
            Step::Crypto(CryptoCmd::Sign { kid, message, .. }) => Reply::Signature(crypto.sign_now(&kid, &message).unwrap()),
            Step::Crypto(CryptoCmd::VerifySignature { kid, message, signature, .. }) => {
                Reply::Verified(crypto.verify_now(&kid, &message, &signature).unwrap())
            }
        };
        op.handle(reply);
    }
}

struct Rng(u64);
impl Rng {
    fn entropy(&mut self) -> Entropy {
        let mut e = [0u8; 64];
        for chunk in e.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes());
        }
        Entropy(e)
    }
}

fn setup(specs: &[KeySpec]) -> (Rules, JwtCrypto, MemoryStore, Arc<ManualClock>) {
    let (keys, crypto) = load_keys(specs).unwrap();
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    (Rules::new(keys, policy()).unwrap(), crypto, MemoryStore::with_clock(clock.clone()), clock)
}

fn issue(rules: &Rules, store: &MemoryStore, crypto: &JwtCrypto, user: &str, now: u64, rng: &mut Rng) -> Tokens {
    let mut claims = Map::new();
    claims.insert("role".into(), json!("member"));
    run(ops::Issue::new(rules, user, claims, json!({"device": "bench"}), now, rng.entropy()), store, crypto)
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct PeerClaims {
    sub: String,
    sid: String,
    iss: String,
    aud: String,
    exp: u64,
    role: String,
}

fn bench_hs256_verify(c: &mut Criterion) {
    let (rules, crypto, store, clock) = setup(&[KeySpec::secret("k1", Alg::HS256, SECRET)]);
    let mut rng = Rng(7);
    let now = clock.now_ms();
    let t = issue(&rules, &store, &crypto, "user-1", now, &mut rng);
    let token = t.access_token.clone();
    let mut g = c.benchmark_group("hs256_verify");
    g.bench_function("tollgate_stateless", |b| {
        b.iter(|| jwt::verify_hmac(black_box(&token), &rules.keys, &rules.policy.claims, now).unwrap().unwrap())
    });
    let key = jsonwebtoken::DecodingKey::from_secret(SECRET);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    g.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| jsonwebtoken::decode::<PeerClaims>(black_box(&token), &key, &validation).unwrap())
    });
    let signing_input = &token[..token.rfind('.').unwrap()];
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET).unwrap();
    g.bench_function("prekeyed_hmac_only", |b| {
        b.iter(|| {
            let mut m = mac.clone();
            m.update(black_box(signing_input.as_bytes()));
            m.finalize().into_bytes()
        })
    });
    g.finish();
}

fn bench_asymmetric_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("asymmetric_verify");
    for (name, alg, pem, jalg) in [
        ("es256", Alg::ES256, "es256.pem", jsonwebtoken::Algorithm::ES256),
        ("eddsa", Alg::EdDSA, "ed25519.pem", jsonwebtoken::Algorithm::EdDSA),
    ] {
        let (rules, crypto, store, clock) = setup(&[KeySpec::pem("k1", alg, key_file(pem))]);
        let now = clock.now_ms();
        let t = issue(&rules, &store, &crypto, "user-1", now, &mut Rng(3));
        g.bench_function(format!("{name}_tollgate_stateless"), |b| {
            b.iter(|| run(ops::Verify::new(&rules, black_box(&t.access_token), VerifyMode::Stateless, now), &store, &crypto))
        });
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(rules.keys.jwks()["keys"][0].clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jalg);
        validation.set_issuer(&[ISS]);
        validation.set_audience(&[AUD]);
        g.bench_function(format!("{name}_jsonwebtoken_decode"), |b| {
            b.iter(|| jsonwebtoken::decode::<PeerClaims>(black_box(&t.access_token), &key, &validation).unwrap())
        });
        let (input, sig) = t.access_token.rsplit_once('.').unwrap();
        let sig = tollgate::engine::b64::decode(sig).unwrap();
        g.bench_function(format!("{name}_driver_verify"), |b| {
            b.iter(|| assert!(crypto.verify_now("k1", black_box(input.as_bytes()), black_box(&sig)).unwrap()))
        });
        if alg == Alg::ES256 {
            // jsonwebtoken's `rust_crypto` backend (tollgate's native driver before issue 11):
            // on each verify it parses the SEC1 point and checks with p256.
            use p256::ecdsa::signature::Verifier;
            let coord = |c: &str| tollgate::engine::b64::decode(&jwk_member(&rules, c)).unwrap();
            let point = [&[4u8][..], &coord("x"), &coord("y")].concat();
            g.bench_function("es256_rust_crypto_verify", |b| {
                b.iter(|| {
                    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(black_box(&point)).unwrap();
                    let sig = p256::ecdsa::Signature::from_slice(black_box(&sig)).unwrap();
                    key.verify(input.as_bytes(), &sig).unwrap()
                })
            });
        }
    }
    g.finish();
}

fn jwk_member(rules: &Rules, name: &str) -> String {
    rules.keys.jwks()["keys"][0][name].as_str().unwrap().to_owned()
}

fn bench_operations(c: &mut Criterion) {
    let (rules, crypto, store, clock) = setup(&[KeySpec::secret("k1", Alg::HS256, SECRET)]);
    let mut rng = Rng(11);
    let mut g = c.benchmark_group("memory_ops");
    let now = clock.now_ms();
    let t = issue(&rules, &store, &crypto, "strict-user", now, &mut rng);
    g.bench_function("strict_verify", |b| {
        b.iter(|| run(ops::Verify::new(&rules, black_box(&t.access_token), VerifyMode::Strict, now), &store, &crypto))
    });
    let n = AtomicU64::new(0);
    g.bench_function("issue", |b| {
        b.iter(|| {
            let user = format!("issue-{}", n.fetch_add(1, Ordering::Relaxed));
            issue(&rules, &store, &crypto, &user, now, &mut rng)
        })
    });
    // A steady chain: each refresh presents the previous answer, 1 s apart (so the
    // record carries its full grace-window history: the realistic worst case).
    let mut current = issue(&rules, &store, &crypto, "refresh-user", now, &mut rng).refresh_token;
    let mut at = now;
    let mut rng2 = Rng(13);
    g.bench_function("refresh", |b| {
        b.iter(|| {
            at += 1_000;
            clock.set(at);
            current = run(ops::Refresh::new(&rules, &current, at, rng2.entropy()), &store, &crypto).refresh_token;
        })
    });
    clock.set(now);
    let mut rng3 = Rng(17);
    g.bench_function("revoke", |b| {
        b.iter_batched(
            || {
                let user = format!("revoke-{}", n.fetch_add(1, Ordering::Relaxed));
                let t = issue(&rules, &store, &crypto, &user, now, &mut rng3);
                (user, t.session.sid)
            },
            |(user, sid)| run(ops::Revoke::new(&rules, &user, &sid, now), &store, &crypto),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    // The same strict verify through the async manager and drive loop.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = Config::builder().secret(SECRET.to_vec()).issuer(ISS).audience(AUD).build().unwrap();
    let manager = SessionManager::new(config, MemoryStore::new()).unwrap();
    let t = rt.block_on(manager.issue("async-user", Map::new(), Value::Null)).unwrap();
    let mut g = c.benchmark_group("manager_async");
    g.bench_function("strict_verify", |b| b.to_async(&rt).iter(|| manager.verify(black_box(&t.access_token), VerifyMode::Strict)));
    g.bench_function("stateless_verify", |b| b.to_async(&rt).iter(|| manager.verify(black_box(&t.access_token), VerifyMode::Stateless)));
    g.finish();
}

/// The memory-store workload, the same on both sides (see benches/go/tokenstore):
/// 10,000 keys shaped like session keys, a 300-byte value, gets and puts cycling
/// over every key in order, every get a hit, one thread.
const STORE_KEYS: usize = 10_000;
const STORE_VALUE: usize = 300;

fn bench_memory_store(c: &mut Criterion, go: &mut GoPeer) {
    let store = MemoryStore::new();
    let far = u64::MAX / 2;
    let value = Bytes::from(vec![7u8; STORE_VALUE]);
    let keys: Vec<String> = (0..STORE_KEYS).map(|i| format!("s:{{u:u{i}}}:sid")).collect();
    let puts: Vec<[WriteOp; 1]> =
        keys.iter().map(|k| [WriteOp::Put { key: k.clone(), value: value.clone(), expect: Expect::Any, expires_at: far }]).collect();
    for op in &puts {
        store.commit_now(op);
    }
    // The Go peer runs right before and right after: the two runs bracket ours.
    go.run();
    let mut g = c.benchmark_group("memory_store");
    let mut i = 0;
    g.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 1) % STORE_KEYS;
            let hit = store.get_one(black_box(&keys[i])).unwrap();
            assert_eq!(hit.value.len(), STORE_VALUE);
            hit.version
        })
    });
    let mut i = 0;
    g.bench_function("put", |b| {
        b.iter(|| {
            i = (i + 1) % STORE_KEYS;
            store.commit_now(black_box(&puts[i]))
        })
    });
    g.finish();
    go.run();
}

/// The Go token store of benches/go/tokenstore (a map, a sync.RWMutex, an expiry
/// check on get), built with `go build` into the target directory and run in
/// this same run. When Go is missing or the build fails, `why_not` says so.
struct GoPeer {
    binary: Option<std::path::PathBuf>,
    why_not: Option<String>,
    /// (get ns, put ns) of each run.
    runs: Vec<(f64, f64)>,
}

fn target_dir() -> String {
    std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR")))
}

impl GoPeer {
    fn build() -> GoPeer {
        let out = std::path::PathBuf::from(format!("{}/go", target_dir()));
        let binary = out.join("tokenstore");
        // GOPATH mode: the peer has no dependencies, so nothing is downloaded.
        let built = std::process::Command::new("go")
            .args(["build", "-o"])
            .arg(&binary)
            .arg("./benches/go/tokenstore")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("GO111MODULE", "off")
            .env("GOCACHE", out.join("cache"))
            .output();
        let why_not = match built {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("`go` is not on PATH (apt-get install golang-go)".to_owned()),
            Err(e) => Some(format!("`go build` could not start: {e}")),
            Ok(o) if !o.status.success() => Some(format!("`go build` failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Ok(_) => None,
        };
        GoPeer { binary: why_not.is_none().then_some(binary), why_not, runs: Vec::new() }
    }

    fn run(&mut self) {
        let Some(bin) = &self.binary else { return };
        let keys = STORE_KEYS.to_string();
        let value = STORE_VALUE.to_string();
        let out = match std::process::Command::new(bin).args(["-keys", &keys, "-value", &value, "-rounds", "3"]).output() {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => return self.fail(format!("the Go peer failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
            Err(e) => return self.fail(format!("the Go peer could not start: {e}")),
        };
        let field = |name: &str| out.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok());
        match (field("get_ns"), field("put_ns")) {
            (Some(get), Some(put)) => self.runs.push((get, put)),
            _ => self.fail(format!("the Go peer printed no get_ns/put_ns lines: {out}")),
        }
    }

    fn fail(&mut self, why: String) {
        self.binary = None;
        self.why_not = Some(why);
    }
}

static STARTED: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

/// Mean time per iteration (ns) of a benchmark measured by this run (older results are ignored).
fn mean_ns(group: &str, name: &str) -> Option<f64> {
    estimate_ns(group, name, "mean")
}

/// One of criterion's estimates (`mean`, `median`, ..) in ns per iteration, from this run only.
fn estimate_ns(group: &str, name: &str, estimate: &str) -> Option<f64> {
    let path = format!("{}/criterion/{group}/{name}/new/estimates.json", target_dir());
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < *STARTED.get()? {
        return None;
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v[estimate]["point_estimate"].as_f64()
}

fn print_ratios(go: &GoPeer) {
    let rate = |g: &str, n: &str| mean_ns(g, n).map(|ns| 1e9 / ns);
    println!("\n== tollgate ratios (same run) ==");
    let line = |label: &str, ours: Option<f64>, peer: Option<f64>, peer_label: &str| match (ours, peer) {
        (Some(o), Some(p)) => println!("{label:<34} {o:>12.0} ops/s   {peer_label:<28} {p:>12.0} ops/s   ratio {:.2}x", o / p),
        _ => println!("{label:<34} (not measured in this run)"),
    };
    line(
        "HS256 stateless verify",
        rate("hs256_verify", "tollgate_stateless"),
        rate("hs256_verify", "jsonwebtoken_decode"),
        "jsonwebtoken::decode",
    );
    line(
        "HS256 stateless verify",
        rate("hs256_verify", "tollgate_stateless"),
        rate("hs256_verify", "prekeyed_hmac_only"),
        "bare pre-keyed HMAC",
    );
    line(
        "ES256 verify",
        rate("asymmetric_verify", "es256_tollgate_stateless"),
        rate("asymmetric_verify", "es256_jsonwebtoken_decode"),
        "jsonwebtoken::decode",
    );
    line(
        "ES256 signature check (aws-lc-rs)",
        rate("asymmetric_verify", "es256_driver_verify"),
        rate("asymmetric_verify", "es256_rust_crypto_verify"),
        "same with rust_crypto (p256)",
    );
    line(
        "EdDSA verify",
        rate("asymmetric_verify", "eddsa_tollgate_stateless"),
        rate("asymmetric_verify", "eddsa_jsonwebtoken_decode"),
        "jsonwebtoken::decode",
    );
    line(
        "strict verify (memory)",
        rate("memory_ops", "strict_verify"),
        rate("hs256_verify", "jsonwebtoken_decode"),
        "jsonwebtoken::decode",
    );
    for op in ["issue", "refresh", "revoke"] {
        line(&format!("{op} (memory)"), rate("memory_ops", op), rate("hs256_verify", "jsonwebtoken_decode"), "jsonwebtoken::decode");
    }
    line(
        "strict verify via async manager",
        rate("manager_async", "strict_verify"),
        rate("memory_ops", "strict_verify"),
        "same, driven synchronously",
    );
    store_vs_go(go);
}

/// "memory store get/put vs Go store": ours against each Go run bracketing it.
/// Medians on both sides (criterion's median sample; the median of the Go
/// peer's rounds), so a burst of load from elsewhere on the machine moves neither.
fn store_vs_go(go: &GoPeer) {
    let ours = [("get", estimate_ns("memory_store", "get", "median")), ("put", estimate_ns("memory_store", "put", "median"))];
    if let Some(why) = &go.why_not {
        println!("memory store get/put vs Go store: the Go peer was not measured: {why}");
        for (op, ns) in ours {
            if let Some(ns) = ns {
                println!("memory store {op:<4} {ns:>8.1} ns/op (no Go peer to compare with)");
            }
        }
        return;
    }
    for (k, (op, ns)) in ours.into_iter().enumerate() {
        let Some(ns) = ns else {
            println!("memory store {op} vs Go store: (not measured in this run)");
            continue;
        };
        let peer: Vec<f64> = go.runs.iter().map(|r| if k == 0 { r.0 } else { r.1 }).collect();
        let (lo, hi) = peer.iter().fold((f64::MAX, 0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        let ratios: Vec<String> = peer.iter().map(|p| format!("{:.2}x", p / ns)).collect();
        println!(
            "memory store {op} vs Go store {:>8.1} ns/op   Go map+RWMutex store {lo:.1}-{hi:.1} ns/op ({} runs)   ratio {} (medians)",
            ns,
            peer.len(),
            ratios.join(", ")
        );
    }
}

fn main() {
    STARTED.get_or_init(std::time::SystemTime::now);
    let mut c =
        Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).configure_from_args();
    bench_hs256_verify(&mut c);
    bench_asymmetric_verify(&mut c);
    bench_operations(&mut c);
    let mut go = GoPeer::build();
    bench_memory_store(&mut c, &mut go);
    c.final_summary();
    print_ratios(&go);
}
