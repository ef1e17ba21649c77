//! The core, stepped by hand: a fake store in a BTreeMap, a clock that is a
//! number the test moves, and crypto answered synchronously. No runtime, no sleeping.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tollgate::crypto::native::{load_keys, JwtCrypto};
use tollgate::engine::list;
use tollgate::engine::ops::{self, Entropy, Tokens, Verified, VerifyMode};
use tollgate::engine::policy::{Policy, Rules};
use tollgate::engine::step::{CryptoCmd, Expect, Operation, Reply, Step, StoreCmd, StoreReply, Versioned, WriteOp};
use tollgate::{Alg, Error, ErrorCode, KeySpec};

#[path = "engine_steps/atomic_store.rs"]
mod atomic_store;
#[path = "engine_steps/chain.rs"]
mod chain;
#[path = "engine_steps/hardening.rs"]
mod hardening;
#[path = "engine_steps/one_trip.rs"]
mod one_trip;
#[path = "engine_steps/recall.rs"]
mod recall;
#[path = "engine_steps/revoke_one_trip.rs"]
mod revoke_one_trip;

const SECRET: &[u8] = b"core-steps-secret-of-at-least-32-bytes!!!";
const T0: u64 = 1_700_000_000_000;

/// A store as plain data: key -> (value, version, expires_at).
#[derive(Default, Clone, PartialEq, Debug)]
struct FakeStore {
    data: BTreeMap<String, (Bytes, u64, u64)>,
    next_version: u64,
    /// Every command seen, for round-trip checks.
    log: Vec<StoreCmd>,
}

impl FakeStore {
    fn answer(&mut self, cmd: StoreCmd, now: u64) -> StoreReply {
        self.log.push(cmd.clone());
        match cmd {
            StoreCmd::Get { keys } | StoreCmd::Recall { keys } => StoreReply::Values(
                keys.iter()
                    .map(|k| self.data.get(k).filter(|e| e.2 > now).map(|e| Versioned { value: e.0.clone(), version: e.1 }))
                    .collect(),
            ),
            StoreCmd::Commit { ops } => {
                let keys: std::collections::BTreeSet<&str> = ops.iter().map(WriteOp::key).collect();
                assert_eq!(keys.len(), ops.len(), "a commit names each key once: {ops:?}");
                for op in &ops {
                    let live = self.data.get(op.key()).filter(|e| e.2 > now);
                    if let WriteOp::Append { entry, max_entries, expires_at, .. } = op {
                        if list::append(live.map(|e| &e.0[..]), entry, *max_entries, *expires_at).is_none() {
                            return StoreReply::Conflict;
                        }
                    } else if let WriteOp::Remove { .. } = op {
                        // A counted list, or nothing at all (as the memory store checks).
                        if live.is_some_and(|e| list::header(&e.0).is_none()) {
                            return StoreReply::Conflict;
                        }
                    } else if !op.expect().admits(live.map(|e| e.1)) {
                        return StoreReply::Conflict;
                    }
                }
                for op in ops {
                    match op {
                        WriteOp::Put { key, value, expires_at, .. } => {
                            self.next_version += 1;
                            self.data.insert(key, (value, self.next_version, expires_at));
                        }
                        WriteOp::Delete { key, .. } => {
                            self.data.remove(&key);
                        }
                        WriteOp::Append { key, entry, max_entries, expires_at } => {
                            let live = self.data.get(&key).filter(|e| e.2 > now).map(|e| &e.0[..]);
                            let (value, expiry) = list::append(live, &entry, max_entries, expires_at).expect("checked above");
                            self.next_version += 1;
                            self.data.insert(key, (Bytes::from(value), self.next_version, expiry));
                        }
                        WriteOp::Remove { key, sid } => {
                            let Some(live) = self.data.get(&key).filter(|e| e.2 > now).cloned() else { continue };
                            match list::remove(&live.0, sid.as_bytes()).expect("checked above") {
                                Some(rest) => {
                                    self.next_version += 1;
                                    self.data.insert(key, (Bytes::from(rest), self.next_version, live.2));
                                }
                                None => {
                                    self.data.remove(&key);
                                }
                            }
                        }
                    }
                }
                StoreReply::Committed
            }
        }
    }
    fn round_trips(&self) -> usize {
        self.log.len()
    }
    /// Live content only, for "nothing changed" checks.
    fn content(&self) -> BTreeMap<String, Bytes> {
        self.data.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()
    }
}

/// Runs an operation to its end, answering every effect.
fn run<O: Operation>(mut op: O, store: &mut FakeStore, crypto: &JwtCrypto, now: u64) -> Result<O::Output, Error> {
    for _ in 0..1000 {
        let reply = match op.poll() {
            Step::Done(r) => return r,
            Step::Store(cmd) => Reply::Store(store.answer(cmd, now)),
            Step::Crypto(CryptoCmd::Sign { kid, message, .. }) => Reply::Signature(crypto.sign_now(&kid, &message)?),
            Step::Crypto(CryptoCmd::VerifySignature { kid, message, signature, .. }) => {
                Reply::Verified(crypto.verify_now(&kid, &message, &signature)?)
            }
        };
        op.handle(reply);
    }
    panic!("operation did not finish in 1000 steps");
}

fn entropy(seed: u8) -> Entropy {
    let mut e = [0u8; 64];
    for (i, b) in e.iter_mut().enumerate() {
        *b = seed.wrapping_mul(31).wrapping_add(i as u8);
    }
    Entropy(e)
}

fn hs_core(policy: Policy) -> (Rules, JwtCrypto) {
    let (keys, crypto) = load_keys(&[KeySpec::secret("hs", Alg::HS256, SECRET)]).unwrap();
    (Rules::new(keys, policy).unwrap(), crypto)
}

fn policy() -> Policy {
    let mut p = Policy::default();
    p.claims.issuer = Some("iss-test".into());
    p.claims.audience = vec!["aud-test".into()];
    p
}

/// With an asymmetric signing key the refresh key cannot come from a secret: it is set.
fn asymmetric_policy() -> Policy {
    let mut p = policy();
    p.refresh_secret = Some(tollgate::engine::refresh_key::RefreshSecret(b"core-steps-refresh-secret-of-32-bytes!".to_vec()));
    p
}

fn issue(rules: &Rules, store: &mut FakeStore, crypto: &JwtCrypto, user: &str, now: u64, seed: u8) -> Tokens {
    run(ops::Issue::new(rules, user, Map::new(), json!({"d": 1}), now, entropy(seed)), store, crypto, now).unwrap()
}

fn verify(rules: &Rules, store: &mut FakeStore, crypto: &JwtCrypto, token: &str, mode: VerifyMode, now: u64) -> Result<Verified, Error> {
    run(ops::Verify::new(rules, token, mode, now), store, crypto, now)
}

#[test]
fn issue_reads_the_index_then_commits_record_and_index_atomically() {
    let (rules, _) = hs_core(policy());
    let mut op = ops::Issue::new(&rules, "alice", Map::new(), json!({}), T0, entropy(1));
    let Step::Store(StoreCmd::Get { keys }) = op.poll() else { panic!("first effect is a read") };
    assert_eq!(keys, vec!["i:{u:alice}".to_string()]);
    op.handle(Reply::Store(StoreReply::Values(vec![None])));
    let Step::Store(StoreCmd::Commit { ops }) = op.poll() else { panic!("then one commit") };
    assert_eq!(ops.len(), 2);
    assert!(ops.iter().all(|o| o.expect() == Expect::Absent));
    assert!(ops.iter().all(|o| o.key().contains("{u:alice}")), "one hash tag per operation");
    // The stored record holds a hash, never the refresh secret or the access token.
    op.handle(Reply::Store(StoreReply::Committed));
    let Step::Done(Ok(tokens)) = op.poll() else { panic!("done") };
    let secret = tokens.refresh_token.rsplit_once('.').unwrap().1;
    for o in &ops {
        if let WriteOp::Put { value, .. } = o {
            let text = String::from_utf8_lossy(value);
            assert!(!text.contains(secret));
            assert!(!text.contains(&tokens.access_token));
        }
    }
    // Polling a finished operation is an error, not a panic.
    assert!(matches!(op.poll(), Step::Done(Err(e)) if e.code() == ErrorCode::Internal));
}

#[test]
fn stateless_hs256_verify_touches_nothing() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let t = issue(&rules, &mut store, &crypto, "bob", T0, 2);
    let before = store.round_trips();
    let mut op = ops::Verify::new(&rules, &t.access_token, VerifyMode::Stateless, T0 + 1000);
    let Step::Done(Ok(v)) = op.poll() else { panic!("no effects for a stateless HMAC verify") };
    assert_eq!(v.claims.sub(), "bob");
    assert_eq!(v.claims.aud().collect::<Vec<_>>(), ["aud-test"]);
    assert_eq!(store.round_trips(), before);
}

#[test]
fn round_trips_per_operation() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let t = issue(&rules, &mut store, &crypto, "carol", T0, 3);
    assert_eq!(store.round_trips(), 2, "issue: read + commit");
    let n = store.round_trips();
    verify(&rules, &mut store, &crypto, &t.access_token, VerifyMode::Strict, T0 + 1000).unwrap();
    assert_eq!(store.round_trips() - n, 1, "strict verify: one read");
    let n = store.round_trips();
    let t2 = run(ops::Refresh::new(&rules, &t.refresh_token, T0 + 2000, entropy(4)), &mut store, &crypto, T0 + 2000).unwrap();
    assert_eq!(store.round_trips() - n, 2, "refresh: read + commit");
    let n = store.round_trips();
    run(ops::Revoke::new(&rules, "carol", &t2.session.sid, T0 + 3000), &mut store, &crypto, T0 + 3000).unwrap();
    assert_eq!(store.round_trips() - n, 2, "revoke: read + commit");
}

#[test]
fn a_conflict_restarts_from_the_first_read_and_the_budget_is_bounded() {
    let mut p = policy();
    p.max_attempts = 3;
    let (rules, _) = hs_core(p);
    let mut op = ops::Issue::new(&rules, "dave", Map::new(), json!({}), T0, entropy(5));
    let mut commits = 0;
    loop {
        match op.poll() {
            Step::Store(StoreCmd::Get { .. } | StoreCmd::Recall { .. }) => op.handle(Reply::Store(StoreReply::Values(vec![None]))),
            Step::Store(StoreCmd::Commit { .. }) => {
                commits += 1;
                op.handle(Reply::Store(StoreReply::Conflict));
            }
            Step::Done(r) => {
                assert_eq!(r.unwrap_err().code(), ErrorCode::Conflict);
                break;
            }
            Step::Crypto(_) => panic!("HMAC signs in the engine"),
        }
    }
    assert_eq!(commits, 3);
}

#[test]
fn wrong_replies_are_errors_not_panics() {
    let (rules, _) = hs_core(policy());
    let mut op = ops::Issue::new(&rules, "erin", Map::new(), json!({}), T0, entropy(6));
    let _ = op.poll();
    op.handle(Reply::Verified(true));
    assert!(matches!(op.poll(), Step::Done(Err(e)) if e.code() == ErrorCode::Internal));

    let mut op = ops::Refresh::new(&rules, "not a token", T0, entropy(6));
    assert!(matches!(op.poll(), Step::Done(Err(e)) if e.code() == ErrorCode::TokenInvalid));
    op.handle(Reply::Store(StoreReply::Values(vec![None, None, None])));
    assert!(matches!(op.poll(), Step::Done(Err(_))));

    let mut op = ops::Revoke::new(&rules, "erin", "AAAAAAAAAAAAAAAAAAAAAA", T0);
    let _ = op.poll();
    op.handle(Reply::Store(StoreReply::Values(vec![])));
    assert!(matches!(op.poll(), Step::Done(Err(e)) if e.code() == ErrorCode::Internal));
    // Polling twice without a reply.
    let mut op = ops::ListSessions::new(&rules, "erin", T0);
    let _ = op.poll();
    assert!(matches!(op.poll(), Step::Done(Err(e)) if e.code() == ErrorCode::Internal));
}

#[test]
fn garbage_in_the_store_is_store_corrupt() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let t = issue(&rules, &mut store, &crypto, "frank", T0, 7);
    let key = format!("s:{{u:frank}}:{}", t.session.sid);
    store.data.get_mut(&key).unwrap().0 = Bytes::from_static(b"{not json");
    let err = verify(&rules, &mut store, &crypto, &t.access_token, VerifyMode::Strict, T0).unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreCorrupt);
    store.data.insert("i:{u:frank}".into(), (Bytes::from_static(b"[1,2]"), 99, u64::MAX));
    let err = run(ops::ListSessions::new(&rules, "frank", T0), &mut store, &crypto, T0).unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreCorrupt);
}

/// The strict verify that starts from claims checked on the HMAC fast path
/// (`Verify::of_checked`, what `SessionManager::verify` runs) reads the session
/// first, answers as the full operation does, and reads again after a touch that
/// lost a race.
#[test]
fn strict_verify_of_checked_claims_reads_first_and_retries_a_lost_touch() {
    let mut p = policy();
    p.touch_interval_ms = 60_000;
    let (rules, crypto) = hs_core(p);
    let mut store = FakeStore::default();
    let t = issue(&rules, &mut store, &crypto, "hana", T0, 12);
    let checked = |now: u64| tollgate::engine::jwt::verify_hmac(&t.access_token, &rules.keys, &rules.policy.claims, now).unwrap().unwrap();
    let now = T0 + 1_000;
    let full = verify(&rules, &mut store, &crypto, &t.access_token, VerifyMode::Strict, now).unwrap();
    let mut op = ops::Verify::of_checked(&rules, checked(now), now);
    let Step::Store(StoreCmd::Get { keys }) = op.poll() else { panic!("the first effect is the session read") };
    assert_eq!(keys.len(), 3, "the record and its two revocation markers: {keys:?}");
    op.handle(Reply::Store(store.answer(StoreCmd::Get { keys }, now)));
    let Step::Done(answer) = op.poll() else { panic!("no touch is due within the interval") };
    assert_eq!(answer.unwrap(), full);

    // Past the touch interval the verify writes; a conflicting write sends it back to the read.
    let later = T0 + 120_000;
    let mut op = ops::Verify::of_checked(&rules, checked(later), later);
    let Step::Store(first) = op.poll() else { panic!("a read") };
    op.handle(Reply::Store(store.answer(first.clone(), later)));
    let Step::Store(StoreCmd::Commit { .. }) = op.poll() else { panic!("a touch") };
    op.handle(Reply::Store(StoreReply::Conflict));
    let Step::Store(again) = op.poll() else { panic!("a read after the conflict") };
    assert_eq!(again, first, "the same keys are read again");
    let v = run(op_from(again, &mut store, later, op), &mut store, &crypto, later).unwrap();
    assert_eq!(v.session.unwrap().last_seen, later, "the retried touch is written");

    // A revoked session is refused as on the full path.
    run(ops::Revoke::new(&rules, "hana", &t.session.sid, later), &mut store, &crypto, later).unwrap();
    let e = run(ops::Verify::of_checked(&rules, checked(later), later), &mut store, &crypto, later).unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionRevoked);
}

/// Answers `cmd` (the step `op` is waiting on) from `store`, and hands `op` back to be run on.
fn op_from<O: Operation>(cmd: StoreCmd, store: &mut FakeStore, now: u64, mut op: O) -> O {
    op.handle(Reply::Store(store.answer(cmd, now)));
    op
}

#[test]
fn sliding_expiry_and_absolute_cap_by_moving_the_clock() {
    let mut p = policy();
    p.idle_ttl_ms = 10 * 60_000;
    p.absolute_ttl_ms = 25 * 60_000;
    p.access_ttl_ms = 60 * 60_000;
    p.touch_interval_ms = 60_000;
    let (rules, crypto) = hs_core(p);
    let mut store = FakeStore::default();
    let t = issue(&rules, &mut store, &crypto, "gina", T0, 8);
    let mut now = T0 + 9 * 60_000;
    let v = verify(&rules, &mut store, &crypto, &t.access_token, VerifyMode::Strict, now).unwrap();
    assert_eq!(v.session.unwrap().idle_expires_at, now + 10 * 60_000, "a touch slides the idle expiry");
    now += 9 * 60_000; // 18 min: sliding would reach 28 min, the cap is 25 min
    let v = verify(&rules, &mut store, &crypto, &t.access_token, VerifyMode::Strict, now).unwrap();
    assert_eq!(v.session.unwrap().idle_expires_at, T0 + 25 * 60_000, "never past the absolute expiry");
    now += 6 * 60_000;
    assert!(verify(&rules, &mut store, &crypto, &t.access_token, VerifyMode::Strict, now).is_ok());
    now = T0 + 25 * 60_000;
    let err = verify(&rules, &mut store, &crypto, &t.access_token, VerifyMode::Strict, now).unwrap_err();
    assert_eq!(err.code(), ErrorCode::SessionExpired);
}

#[test]
fn refresh_chain_is_idempotent_within_grace() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let t0 = issue(&rules, &mut store, &crypto, "hank", T0, 9);
    let a = run(ops::Refresh::new(&rules, &t0.refresh_token, T0 + 1, entropy(10)), &mut store, &crypto, T0 + 1).unwrap();
    let before = store.content();
    // A repeat with *different* randomness still answers the same successor, and writes nothing.
    let b = run(ops::Refresh::new(&rules, &t0.refresh_token, T0 + 2, entropy(11)), &mut store, &crypto, T0 + 2).unwrap();
    assert_eq!(a.refresh_token, b.refresh_token);
    assert_ne!(a.access_token, b.access_token, "each answer carries a fresh access token");
    assert_eq!(store.content(), before);
    // Past the grace window: reuse.
    let late = T0 + 1 + rules.policy.refresh_grace_ms + 1;
    let err = run(ops::Refresh::new(&rules, &t0.refresh_token, late, entropy(12)), &mut store, &crypto, late).unwrap_err();
    assert_eq!(err.code(), ErrorCode::RefreshTokenReused);
}

// ---- Asymmetric keys: crypto as an effect ------------------------------------

fn key_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn es256_signing_and_verifying_are_effects() {
    let (keys, crypto) = load_keys(&[KeySpec::pem("ec1", Alg::ES256, key_file("es256.pem"))]).unwrap();
    let err = Rules::new(keys.clone(), policy()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid, "no secret to derive the refresh key from: refresh_secret is required");
    assert!(err.message().starts_with("refresh_secret is required"), "{err}");
    let rules = Rules::new(keys, asymmetric_policy()).unwrap();
    let mut op = ops::Issue::new(&rules, "ivy", Map::new(), json!({}), T0, entropy(13));
    let _ = op.poll();
    op.handle(Reply::Store(StoreReply::Values(vec![None])));
    let Step::Crypto(CryptoCmd::Sign { alg, kid, message }) = op.poll() else { panic!("the driver signs ES256") };
    assert_eq!((alg, kid.as_str()), (Alg::ES256, "ec1"));
    op.handle(Reply::Signature(crypto.sign_now("ec1", &message).unwrap()));
    let Step::Store(StoreCmd::Commit { .. }) = op.poll() else { panic!("then commits") };
    op.handle(Reply::Store(StoreReply::Committed));
    let Step::Done(Ok(t)) = op.poll() else { panic!() };

    let mut v = ops::Verify::new(&rules, &t.access_token, VerifyMode::Stateless, T0);
    let Step::Crypto(CryptoCmd::VerifySignature { message, signature, .. }) = v.poll() else { panic!() };
    assert_eq!(signature.len(), 64, "JWS ES256 signatures are raw r||s");
    v.handle(Reply::Verified(crypto.verify_now("ec1", &message, &signature).unwrap()));
    let Step::Done(Ok(claims)) = v.poll() else { panic!() };
    assert_eq!(claims.claims.sub(), "ivy");
    // A driver saying "no" is a token error.
    let mut v = ops::Verify::new(&rules, &t.access_token, VerifyMode::Stateless, T0);
    let _ = v.poll();
    v.handle(Reply::Verified(false));
    assert!(matches!(v.poll(), Step::Done(Err(e)) if e.code() == ErrorCode::TokenInvalid));
}

#[test]
fn keys_load_from_pem_and_jwk_and_export_public_jwks() {
    let specs = [
        KeySpec::pem("ec1", Alg::ES256, key_file("es256.pem")),
        KeySpec::pem("ed1", Alg::EdDSA, key_file("ed25519.pem")),
        KeySpec::pem("rs1", Alg::RS256, key_file("rsa.pub.pem")),
        KeySpec::secret("hs1", Alg::HS256, SECRET),
    ];
    let (keys, crypto) = load_keys(&specs).unwrap();
    let jwks = keys.jwks();
    let list = jwks["keys"].as_array().unwrap();
    assert_eq!(list.len(), 3, "HMAC keys are never exported");
    for k in list {
        assert!(k.get("d").is_none());
        assert_eq!(k["use"], "sig");
    }
    // A private EC JWK (d, x, y) loads, signs, and matches its PEM twin.
    let ec = list.iter().find(|k| k["kid"] == "ec1").unwrap().clone();
    let ed = list.iter().find(|k| k["kid"] == "ed1").unwrap().clone();
    let rsa_jwk = list.iter().find(|k| k["kid"] == "rs1").unwrap().clone();
    // Public JWKs load as verify-only keys.
    let (set2, _) = load_keys(&[
        KeySpec::secret("hs", Alg::HS256, SECRET),
        KeySpec::jwk("ec-pub", Alg::ES256, ec.clone()),
        KeySpec::jwk("ed-pub", Alg::EdDSA, ed),
        KeySpec::jwk("rs-pub", Alg::RS256, rsa_jwk),
    ])
    .unwrap();
    assert_eq!(set2.keys().len(), 4);
    // A verify-only key cannot be the signing key.
    let err = load_keys(&[KeySpec::jwk("ec-pub", Alg::ES256, ec.clone())]).unwrap_err();
    assert_eq!((err.index, err.error.code()), (0, ErrorCode::ConfigInvalid));
    let err = load_keys(&[KeySpec::pem("rs", Alg::RS256, key_file("rsa.pub.pem"))]).unwrap_err();
    assert_eq!((err.index, err.error.code()), (0, ErrorCode::ConfigInvalid));
    // Bad material is a config error, never a panic.
    for bad in [
        KeySpec::secret("s", Alg::HS256, b"short".to_vec()),
        KeySpec::pem("p", Alg::ES256, "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----"),
        KeySpec::pem("p", Alg::ES256, key_file("ed25519.pem")),
        KeySpec::jwk("j", Alg::ES256, json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"})),
        KeySpec::jwk("j", Alg::EdDSA, json!({"kty": "EC"})),
        KeySpec::jwk("j", Alg::HS256, json!({"kty": "oct"})),
        KeySpec::secret("with space", Alg::HS256, SECRET),
        KeySpec::pem("p", Alg::HS256, key_file("es256.pem")),
    ] {
        assert_eq!(load_keys(&[bad]).unwrap_err().error.code(), ErrorCode::ConfigInvalid);
    }
    // A key that fails says which one it is, so a surface can name the setting it came from.
    let hs = KeySpec::secret("hs", Alg::HS256, SECRET);
    let err = load_keys(&[hs.clone(), KeySpec::secret("short", Alg::HS256, b"short".to_vec())]).unwrap_err();
    assert_eq!((err.index, err.error.code()), (1, ErrorCode::ConfigInvalid));
    let err = load_keys(&[hs.clone(), KeySpec::jwk("ec-pub", Alg::ES256, ec.clone()), hs]).unwrap_err();
    assert_eq!(err.index, 2, "a repeated kid is the later key's fault");
    let _ = crypto;
}

#[test]
fn private_jwks_sign_and_must_match_their_public_half() {
    // Derive the private scalar from the PEM to build a JWK the way users hold them.
    let (keys, pem_crypto) = load_keys(&[KeySpec::pem("ec1", Alg::ES256, key_file("es256.pem"))]).unwrap();
    let public = keys.jwks()["keys"][0].clone();
    let der = pem_der(&key_file("es256.pem"));
    // PKCS#8 for P-256 produced by openssl: the 32-byte scalar follows `04 20` after the algorithm ids.
    let pos = der.windows(2).position(|w| w == [0x04, 0x20]).unwrap() + 2;
    let d = tollgate::engine::b64::encode(&der[pos..pos + 32]);
    let mut jwk = public.clone();
    jwk["d"] = Value::String(d.clone());
    let (set, crypto) = load_keys(&[KeySpec::jwk("ec1", Alg::ES256, jwk)]).unwrap();
    let rules = Rules::new(set, asymmetric_policy()).unwrap();
    let mut store = FakeStore::default();
    let t = run(ops::Issue::new(&rules, "jo", Map::new(), json!({}), T0, entropy(14)), &mut store, &crypto, T0).unwrap();
    // The PEM-loaded driver verifies what the JWK-loaded one signed.
    let core_pem = Rules::new(keys, asymmetric_policy()).unwrap();
    assert!(verify(&core_pem, &mut store, &pem_crypto, &t.access_token, VerifyMode::Stateless, T0).is_ok());
    // A d that does not belong to x/y is refused.
    let mut wrong = public;
    wrong["d"] = Value::String(tollgate::engine::b64::encode(&[7u8; 32]));
    assert_eq!(load_keys(&[KeySpec::jwk("ec1", Alg::ES256, wrong)]).unwrap_err().error.code(), ErrorCode::ConfigInvalid);
}

fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}

// ---- Interop with jsonwebtoken, and bad tokens -----------------------------------

#[derive(serde::Serialize)]
struct JwtClaims {
    sub: String,
    sid: String,
    iss: String,
    aud: String,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
}

fn claims(exp_s: u64) -> JwtClaims {
    JwtClaims {
        sub: "kim".into(),
        sid: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        iss: "iss-test".into(),
        aud: "aud-test".into(),
        exp: exp_s,
        nbf: None,
    }
}

fn jwt_encode(header: jsonwebtoken::Header, claims: &JwtClaims, key: &jsonwebtoken::EncodingKey) -> String {
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn hs_header(kid: &str) -> jsonwebtoken::Header {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.kid = Some(kid.into());
    h
}

fn b64(s: &str) -> String {
    tollgate::engine::b64::encode(s.as_bytes())
}

#[test]
fn tokens_from_jsonwebtoken_verify_and_ours_verify_there() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let now_s = T0 / 1000;
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let theirs = jwt_encode(hs_header("hs"), &claims(now_s + 60), &key);
    let v = verify(&rules, &mut store, &crypto, &theirs, VerifyMode::Stateless, T0).unwrap();
    assert_eq!(v.claims.sub(), "kim");

    let ours = issue(&rules, &mut store, &crypto, "lee", T0, 15);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_audience(&["aud-test"]);
    validation.set_issuer(&["iss-test"]);
    validation.validate_exp = false;
    let decoded = jsonwebtoken::decode::<Value>(&ours.access_token, &jsonwebtoken::DecodingKey::from_secret(SECRET), &validation).unwrap();
    assert_eq!(decoded.claims["sub"], "lee");
    assert_eq!(decoded.header.kid.as_deref(), Some("hs"));

    // ES256 both ways, through the JWKS.
    let (keys, ec_crypto) = load_keys(&[KeySpec::pem("ec1", Alg::ES256, key_file("es256.pem"))]).unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys.jwks()["keys"][0].clone()).unwrap();
    let ec_core = Rules::new(keys, asymmetric_policy()).unwrap();
    let t = issue(&ec_core, &mut store, &ec_crypto, "mia", T0, 16);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["aud-test"]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(&t.access_token, &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(), &validation).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some("ec1".into());
    let theirs = jwt_encode(h, &claims(now_s + 60), &jsonwebtoken::EncodingKey::from_ec_pem(key_file("es256.pem").as_bytes()).unwrap());
    assert!(verify(&ec_core, &mut store, &ec_crypto, &theirs, VerifyMode::Stateless, T0).is_ok());
}

#[test]
fn bad_access_tokens_get_their_codes_and_change_nothing() {
    let specs = [KeySpec::secret("hs", Alg::HS256, SECRET), KeySpec::pem("rs", Alg::RS256, key_file("rsa.pub.pem"))];
    let (keys, crypto) = load_keys(&specs).unwrap();
    let rules = Rules::new(keys, policy()).unwrap();
    let mut store = FakeStore::default();
    let good = issue(&rules, &mut store, &crypto, "ned", T0, 17);
    let before = store.content();
    let now_s = T0 / 1000;
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET);
    let (h, p, s) = {
        let mut it = good.access_token.split('.');
        (it.next().unwrap().to_string(), it.next().unwrap().to_string(), it.next().unwrap().to_string())
    };
    // HS256 "signed" with the RSA public key as the HMAC secret, naming the RSA kid.
    let confused =
        jwt_encode(hs_header("rs"), &claims(now_s + 60), &jsonwebtoken::EncodingKey::from_secret(key_file("rsa.pub.pem").as_bytes()));
    let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), p);
    let with_header = |hdr: &str| {
        let input = format!("{}.{}", b64(hdr), p);
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
        format!("{input}.{sig}")
    };
    let mut not_yet = claims(now_s + 600);
    not_yet.nbf = Some(now_s + 300);
    let mut wrong_aud = claims(now_s + 60);
    wrong_aud.aud = "elsewhere".into();
    let mut wrong_iss = claims(now_s + 60);
    wrong_iss.iss = "elsewhere".into();
    let hs384 = {
        let mut hd = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS384);
        hd.kid = Some("hs".into());
        jwt_encode(hd, &claims(now_s + 60), &jsonwebtoken::EncodingKey::from_secret(SECRET))
    };
    let payload_not_json = {
        let input = format!("{}.{}", h, b64("not json"));
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
        format!("{input}.{sig}")
    };
    use ErrorCode::*;
    let cases: Vec<(&str, String, ErrorCode)> = vec![
        ("empty", String::new(), TokenInvalid),
        ("one part", h.clone(), TokenInvalid),
        ("truncated", good.access_token[..good.access_token.len() - 5].to_string(), TokenInvalid),
        ("four parts", format!("{}.x", good.access_token), TokenInvalid),
        ("non-base64 header", format!("!!!.{p}.{s}"), TokenInvalid),
        ("non-base64 signature", format!("{h}.{p}.%%%"), TokenInvalid),
        ("header not JSON", format!("{}.{p}.{s}", b64("nope")), TokenInvalid),
        ("payload not JSON", payload_not_json, TokenInvalid),
        ("tampered payload", format!("{h}.{}.{s}", b64(r#"{"sub":"root","exp":9999999999}"#)), TokenInvalid),
        ("alg none", none, TokenInvalid),
        ("alg confusion HS256 over RSA key", confused, TokenInvalid),
        ("wrong algorithm for the key", hs384, TokenInvalid),
        ("unknown kid", with_header(r#"{"alg":"HS256","kid":"other"}"#), TokenInvalid),
        ("jku header", with_header(r#"{"alg":"HS256","kid":"hs","jku":"https://x"}"#), TokenInvalid),
        ("jwk header", with_header(r#"{"alg":"HS256","kid":"hs","jwk":{}}"#), TokenInvalid),
        ("x5u header", with_header(r#"{"alg":"HS256","kid":"hs","x5u":"https://x"}"#), TokenInvalid),
        ("x5c header", with_header(r#"{"alg":"HS256","kid":"hs","x5c":[]}"#), TokenInvalid),
        ("crit header", with_header(r#"{"alg":"HS256","kid":"hs","crit":["exp"]}"#), TokenInvalid),
        ("expired", jwt_encode(hs_header("hs"), &claims(now_s - 120), &key), TokenExpired),
        ("not yet valid", jwt_encode(hs_header("hs"), &not_yet, &key), TokenNotYetValid),
        ("wrong audience", jwt_encode(hs_header("hs"), &wrong_aud, &key), TokenInvalid),
        ("wrong issuer", jwt_encode(hs_header("hs"), &wrong_iss, &key), TokenInvalid),
        ("oversize", format!("{h}.{}.{s}", "A".repeat(9000)), TokenInvalid),
        (
            "wrong secret",
            jwt_encode(
                hs_header("hs"),
                &claims(now_s + 60),
                &jsonwebtoken::EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
            ),
            TokenInvalid,
        ),
    ];
    for (name, token, code) in cases {
        for mode in [VerifyMode::Stateless, VerifyMode::Strict] {
            let err = verify(&rules, &mut store, &crypto, &token, mode, T0).expect_err(name);
            assert_eq!(err.code(), code, "{name} ({mode:?}): {err}");
            assert!(!err.message().contains(&token) || token.is_empty(), "{name}: the message must not echo the token");
        }
    }
    assert_eq!(store.content(), before, "no bad token changed the store");
    assert!(verify(&rules, &mut store, &crypto, &good.access_token, VerifyMode::Strict, T0).is_ok());
}

/// A small deterministic generator: the same inputs on every run.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_and_mutated_input_never_panics() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let good = issue(&rules, &mut store, &crypto, "oli", T0, 18);
    let mut rng = XorShift(0x9e3779b97f4a7c15);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.{}\":, \x00\xff";
    for round in 0..4000 {
        let base = if round % 2 == 0 { good.access_token.as_bytes().to_vec() } else { good.refresh_token.as_bytes().to_vec() };
        let mut bytes = base.clone();
        for _ in 0..(1 + rng.next() % 4) {
            let i = (rng.next() as usize) % bytes.len().max(1);
            match rng.next() % 3 {
                0 if !bytes.is_empty() => bytes[i] = alphabet[(rng.next() as usize) % alphabet.len()],
                1 if !bytes.is_empty() => {
                    bytes.truncate(i);
                }
                _ => bytes.insert(i.min(bytes.len()), alphabet[(rng.next() as usize) % alphabet.len()]),
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if text.as_bytes() == base.as_slice() {
            continue;
        }
        let _ = verify(&rules, &mut store, &crypto, &text, VerifyMode::Strict, T0);
        let r = run(ops::Refresh::new(&rules, &text, T0, entropy(19)), &mut store, &crypto, T0);
        if let Err(e) = r {
            assert_ne!(e.code(), ErrorCode::Internal, "{text:?}");
        }
    }
}

#[test]
fn debug_output_never_shows_secrets() {
    let (rules, crypto) = hs_core(policy());
    let mut store = FakeStore::default();
    let t = issue(&rules, &mut store, &crypto, "pat", T0, 20);
    let dbg = format!("{t:?} {rules:?} {:?}", KeySpec::secret("k", Alg::HS256, SECRET));
    assert!(!dbg.contains(&t.access_token));
    assert!(!dbg.contains(&t.refresh_token));
    assert!(!dbg.contains(std::str::from_utf8(SECRET).unwrap()));
    let parsed = tollgate::engine::token::RefreshToken::parse(&t.refresh_token, "tgr").unwrap();
    assert!(!format!("{parsed:?}").contains(t.refresh_token.rsplit_once('.').unwrap().1));
}

#[test]
fn every_error_code_is_stable_and_has_a_status() {
    let mut seen = std::collections::HashSet::new();
    for code in ErrorCode::ALL {
        assert!(seen.insert(code.as_str()), "duplicate code string");
        assert!(code.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        assert!((400..600).contains(&code.http_status()));
    }
    assert_eq!(ErrorCode::RefreshTokenReused.as_str(), "refresh_token_reused");
    assert_eq!(ErrorCode::StoreUnavailable.http_status(), 503);
}
