//! Every route that takes a user, walked with hostile user ids
//! (`hostile_user_ids.json`, shared with the Worker tests in
//! `js/worker/test/harness.mjs`), each percent-encoded in paths and queries as a
//! client would. The same walk runs on the HTTP API in-process and on
//! `tollgate serve` over real sockets (memory store and Redis).
#![allow(dead_code)]

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

/// What `encodeURIComponent` leaves as it is.
const COMPONENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'!').remove(b'~').remove(b'*').remove(b'\'').remove(b'(').remove(b')');

/// `text` as a path segment or query value, encoded as `encodeURIComponent` does.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

pub fn hostile_user_ids() -> Vec<String> {
    let file: Value = serde_json::from_str(include_str!("hostile_user_ids.json")).unwrap();
    file["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

fn str_of<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{pointer} in {v}"))
}

/// One request: method, path with query, headers, JSON body. Answers status and JSON body.
#[allow(async_fn_in_trait)] // test-only, single-threaded callers
pub trait Client {
    async fn call(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, Value);
}

struct Walk<'c, C: Client> {
    client: &'c mut C,
    api_key: &'c str,
}

impl<C: Client> Walk<'_, C> {
    async fn service(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let key = self.api_key;
        self.client.call(method, path, &[("X-Api-Key", key)], body).await
    }

    async fn user(&mut self, method: &str, path: &str, access: &str) -> (u16, Value) {
        self.client.call(method, path, &[("Authorization", &format!("Bearer {access}"))], None).await
    }

    async fn create(&mut self, user: &str) -> Value {
        let (st, t) = self.service("POST", "/v1/sessions", Some(json!({ "user": user }))).await;
        assert_eq!(st, 201, "create for {user:?}: {t}");
        assert_eq!(str_of(&t, "/session/user"), user);
        t
    }

    async fn strict(&mut self, t: &Value) -> (u16, Value) {
        let body = json!({ "token": t["access_token"], "mode": "strict" });
        self.client.call("POST", "/v1/verify", &[], Some(body)).await
    }

    async fn listed(&mut self, path: &str) -> Vec<String> {
        let (st, v) = self.service("GET", path, None).await;
        assert_eq!(st, 200, "GET {path}: {v}");
        v["sessions"].as_array().unwrap().iter().map(|s| str_of(s, "/sid").to_owned()).collect()
    }

    /// Create, verify, refresh, list, revoke one, revoke all but current, revoke all: for `user`.
    async fn every_route(&mut self, user: &str) {
        let enc = encode(user);
        let sessions = format!("/v1/users/{enc}/sessions");
        let a = self.create(user).await;
        let (st, v) = self.strict(&a).await;
        assert_eq!((st, str_of(&v, "/claims/sub"), str_of(&v, "/session/user")), (200, user, user), "{v}");
        let (st, a2) = self.client.call("POST", "/v1/refresh", &[], Some(json!({ "refresh_token": a["refresh_token"] }))).await;
        assert_eq!((st, str_of(&a2, "/session/user")), (200, user), "refresh for {user:?}: {a2}");
        let access = str_of(&a2, "/access_token").to_owned();
        let b = self.create(user).await;

        let mut both = vec![str_of(&a, "/session/sid").to_owned(), str_of(&b, "/session/sid").to_owned()];
        both.sort();
        let mut listed = self.listed(&sessions).await;
        listed.sort();
        assert_eq!(listed, both, "the service lists {user:?}'s sessions at {sessions}");
        let (st, v) = self.user("GET", &sessions, &access).await;
        assert_eq!((st, v["sessions"].as_array().map(Vec::len)), (200, Some(2)), "the user lists their own: {v}");
        let (st, v) = self.user("GET", &format!("/v1/users/{}/sessions", encode(&format!("{user}-other"))), &access).await;
        assert_eq!((st, code(&v)), (403, "forbidden"), "not someone else's");

        // One session, by id: the service names the user with ?user=.
        let b_sid = str_of(&b, "/session/sid");
        let (st, v) = self.service("DELETE", &format!("/v1/sessions/{b_sid}?user={enc}"), None).await;
        assert_eq!(st, 200, "revoke one of {user:?}'s: {v}");
        assert_eq!(code(&self.strict(&b).await.1), "session_revoked");
        let (st, v) = self.user("DELETE", &format!("/v1/sessions/{b_sid}?user={}", encode(&format!("{user}-other"))), &access).await;
        assert_eq!((st, code(&v)), (403, "forbidden"), "a user names only themselves: {v}");

        // All but the caller's own.
        let c = self.create(user).await;
        let (st, v) = self.user("DELETE", &format!("{sessions}?keep=current"), &access).await;
        assert_eq!((st, &v["revoked"]), (200, &json!(1)), "revoke all but current for {user:?}: {v}");
        assert_eq!(code(&self.strict(&c).await.1), "session_revoked");
        assert_eq!(self.strict(&a2).await.0, 200, "the current session is kept");

        // All of them, by the service.
        let (st, v) = self.service("DELETE", &sessions, None).await;
        assert_eq!((st, &v["revoked"]), (200, &json!(1)), "revoke all for {user:?}: {v}");
        assert_eq!(code(&self.strict(&a2).await.1), "session_revoked");
        assert!(self.listed(&sessions).await.is_empty());
    }

    /// A `+` in a path or query is a `+`, never a space: `alice+x` and `alice x` stay apart.
    async fn plus_is_not_a_space(&mut self, suffix: &str) {
        let (plus, space) = (format!("alice+x@example.com{suffix}"), format!("alice x@example.com{suffix}"));
        let p = self.create(&plus).await;
        let s = self.create(&space).await;
        let (p_sid, s_sid) = (str_of(&p, "/session/sid"), str_of(&s, "/session/sid"));
        // As a client that does not encode `+` or `@` sends it.
        let raw = format!("/v1/users/{plus}/sessions");
        assert_eq!(self.listed(&raw).await, vec![p_sid.to_owned()], "GET {raw} lists only {plus:?}'s session");
        assert_eq!(self.listed(&format!("/v1/users/{}/sessions", encode(&space))).await, vec![s_sid.to_owned()]);
        let (st, v) = self.service("DELETE", &format!("/v1/sessions/{s_sid}?user={plus}"), None).await;
        assert_eq!((st, code(&v)), (404, "session_not_found"), "{space:?}'s session is not {plus:?}'s");
        let (st, v) = self.service("DELETE", &raw, None).await;
        assert_eq!((st, &v["revoked"]), (200, &json!(1)), "DELETE {raw} revokes {plus:?}'s session: {v}");
        assert_eq!(code(&self.strict(&p).await.1), "session_revoked");
        assert_eq!(self.strict(&s).await.0, 200, "{space:?} keeps their session");
        let (st, _) = self.service("DELETE", &format!("/v1/sessions/{s_sid}?user={}", encode(&space)), None).await;
        assert_eq!(st, 200);
        assert_eq!(code(&self.strict(&s).await.1), "session_revoked");
    }
}

/// Runs every user route for each hostile id (with `suffix` appended, so stores
/// shared between runs start empty for it), then the `+` check.
pub async fn every_user_route_with_hostile_ids(client: &mut impl Client, api_key: &str, suffix: &str) {
    let mut walk = Walk { client, api_key };
    for id in hostile_user_ids() {
        walk.every_route(&format!("{id}{suffix}")).await;
    }
    walk.plus_is_not_a_space(suffix).await;
}
