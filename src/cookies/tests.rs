use serde_json::json;

use super::*;

fn options(b: AdapterOptionsBuilder) -> AdapterOptions {
    b.build().unwrap()
}

fn refused(b: AdapterOptionsBuilder) -> String {
    b.build().unwrap_err().message().to_owned()
}

fn tokens(now: u64) -> Tokens {
    Tokens {
        access_token: "eyJ.access".into(),
        access_expires_at: now + 900_000,
        refresh_token: "tgr_loc.secret".into(),
        session: SessionInfo {
            sid: "s1".into(),
            user: "alice".into(),
            created_at: now,
            last_seen: now,
            idle_expires_at: now + 14 * 86_400_000,
            absolute_expires_at: now + 30 * 86_400_000,
            generation: 0,
            metadata: json!({ "device": "laptop" }),
            ip: None,
            user_agent: None,
        },
        evicted: Vec::new(),
    }
}

#[test]
fn the_defaults_are_the_documented_ones() {
    let o = AdapterOptions::default();
    assert_eq!(o, options(AdapterOptions::builder()));
    assert_eq!((o.refresh_cookie(), o.refresh_cookie_path(), o.access_cookie()), ("__Host-tg_refresh", "/", None));
    assert_eq!((o.same_site(), o.trusted_proxy(), o.allowed_origins().len()), (SameSite::Strict, TrustedProxy::None, 0));
}

#[test]
fn options_are_checked_as_pkg_adapter_js_checks_them() {
    let b = AdapterOptions::builder;
    for (builder, message) in [
        (
            b().refresh_cookie("tg_refresh"),
            "refresh_cookie: the cookie name must start with __Host- or __Secure- (browsers then require Secure)",
        ),
        (b().refresh_cookie("__Host-a b"), "refresh_cookie: a cookie name is a token (letters, digits, !#$%&'*+-.^_`|~)"),
        (b().refresh_cookie("__Host-a;b"), "refresh_cookie: a cookie name is a token (letters, digits, !#$%&'*+-.^_`|~)"),
        (b().refresh_cookie(""), "refresh_cookie: a cookie name is a token (letters, digits, !#$%&'*+-.^_`|~)"),
        (
            b().refresh_cookie_path("/auth"),
            "refresh_cookie_path: a __Host- cookie must have Path=/: use a __Secure- name to scope the cookie to a path",
        ),
        (
            b().refresh_cookie("__Secure-tg").refresh_cookie_path("auth"),
            "refresh_cookie_path: a path starts with '/' and has no ';' or spaces",
        ),
        (
            b().refresh_cookie("__Secure-tg").refresh_cookie_path("/a;b"),
            "refresh_cookie_path: a path starts with '/' and has no ';' or spaces",
        ),
        (
            b().refresh_cookie("__Secure-tg").refresh_cookie_path("/a b"),
            "refresh_cookie_path: a path starts with '/' and has no ';' or spaces",
        ),
        (
            b().access_cookie("tg_access"),
            "access_cookie: the cookie name must start with __Host- or __Secure- (browsers then require Secure)",
        ),
        (b().access_cookie("__Host-tg_refresh"), "access_cookie: the access and refresh cookies need two names"),
        (b().same_site("none"), "same_site: 'strict' or 'lax'"),
        (b().same_site("Strict"), "same_site: 'strict' or 'lax'"),
        (
            b().trusted_proxy("x-forwarded-for:0"),
            "trusted_proxy: 'none', 'x-forwarded-for:N' (N from 1 to 255 proxies) or 'cf-connecting-ip'",
        ),
        (
            b().trusted_proxy("x-forwarded-for:01"),
            "trusted_proxy: 'none', 'x-forwarded-for:N' (N from 1 to 255 proxies) or 'cf-connecting-ip'",
        ),
        (
            b().trusted_proxy("x-forwarded-for:1000"),
            "trusted_proxy: 'none', 'x-forwarded-for:N' (N from 1 to 255 proxies) or 'cf-connecting-ip'",
        ),
        (b().trusted_proxy("x-real-ip"), "trusted_proxy: 'none', 'x-forwarded-for:N' (N from 1 to 255 proxies) or 'cf-connecting-ip'"),
        (b().allowed_origins(["https://app.example/"]), "allowed_origins: each origin is scheme://host[:port], no path"),
        (b().allowed_origins(["app.example"]), "allowed_origins: each origin is scheme://host[:port], no path"),
        (b().allowed_origins(["https://app.example:123456"]), "allowed_origins: each origin is scheme://host[:port], no path"),
        (b().allowed_origins(["https://[::1"]), "allowed_origins: each origin is scheme://host[:port], no path"),
        (b().allowed_origins(["null"]), "allowed_origins: each origin is scheme://host[:port], no path"),
    ] {
        assert_eq!(refused(builder.clone()), message, "{builder:?}");
        assert_eq!(builder.build().unwrap_err().code(), ErrorCode::ConfigInvalid);
    }
    let o = options(
        b().refresh_cookie("__Secure-tg_refresh")
            .refresh_cookie_path("/auth")
            .access_cookie("__Host-tg_access")
            .same_site("lax")
            .trusted_proxy("x-forwarded-for:2")
            .allowed_origins(["https://partner.example", "http://127.0.0.1:8080", "https://[2001:db8::1]:443"]),
    );
    assert_eq!((o.refresh_cookie_path(), o.access_cookie(), o.same_site()), ("/auth", Some("__Host-tg_access"), SameSite::Lax));
    assert_eq!(o.trusted_proxy(), TrustedProxy::XForwardedFor(2));
    assert_eq!(options(b().trusted_proxy("cf-connecting-ip")).trusted_proxy(), TrustedProxy::CfConnectingIp);
    assert_eq!(options(b().trusted_proxy("x-forwarded-for:255")).trusted_proxy(), TrustedProxy::XForwardedFor(255));
    assert_eq!(options(b().access_cookie("off")).access_cookie(), None);
}

#[test]
fn cookies_are_read_as_the_doc_says() {
    let h = "other=1; __Host-tg_refresh=tgr_a.b ; __Host-tg_refresh=second";
    assert_eq!(read_cookie(h, "__Host-tg_refresh"), Some("tgr_a.b"), "the first pair wins, trimmed");
    assert_eq!(read_cookie("a=x=y", "a"), Some("x=y"), "split on the first =");
    assert_eq!(read_cookie("__Host-tg_refresh=; __Host-tg_refresh=later", "__Host-tg_refresh"), None, "an empty value is no cookie");
    assert_eq!(read_cookie("__host-tg_refresh=x", "__Host-tg_refresh"), None, "names compared exactly");
    assert_eq!(read_cookie("x__Host-tg_refresh=x; flag; ", "__Host-tg_refresh"), None);
    assert_eq!(read_cookie("", "a"), None);
}

#[test]
fn set_cookie_writes_the_attributes_in_order() {
    let now = 1_764_000_000_000;
    let t = tokens(now);
    let strict = AdapterOptions::default();
    assert_eq!(
        token_cookies(&strict, &t, now),
        ["__Host-tg_refresh=tgr_loc.secret; Path=/; Max-Age=1209600; HttpOnly; Secure; SameSite=Strict"]
    );
    let lax = options(AdapterOptions::builder().access_cookie("__Host-tg_access").same_site("lax"));
    assert_eq!(
        token_cookies(&lax, &t, now + 1999),
        [
            "__Host-tg_refresh=tgr_loc.secret; Path=/; Max-Age=1209598; HttpOnly; Secure; SameSite=Lax",
            "__Host-tg_access=eyJ.access; Path=/; Max-Age=898; HttpOnly; Secure; SameSite=Lax",
        ]
    );
    // The sooner of the two expiries; at least one second.
    let mut late = tokens(now);
    late.session.absolute_expires_at = now + 10_500;
    assert!(token_cookies(&strict, &late, now)[0].contains("; Max-Age=10;"));
    assert!(token_cookies(&strict, &late, now + 60_000)[0].contains("; Max-Age=1;"));
    let scoped = options(AdapterOptions::builder().refresh_cookie("__Secure-r").refresh_cookie_path("/auth").access_cookie("__Host-a"));
    assert_eq!(
        clear_cookies(&scoped),
        [
            "__Secure-r=; Path=/auth; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
            "__Host-a=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
        ]
    );
    assert_eq!(clear_cookies(&strict), ["__Host-tg_refresh=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"]);
}

#[test]
fn the_body_never_holds_the_refresh_token() {
    let t = tokens(5);
    let body = tokens_body(&AdapterOptions::default(), &t);
    assert_eq!(body["access_token"], "eyJ.access");
    assert_eq!(
        body["session"],
        json!({ "sid": "s1", "user": "alice", "created_at": 5, "last_seen": 5,
        "idle_expires_at": 5 + 14 * 86_400_000u64, "absolute_expires_at": 5 + 30 * 86_400_000u64, "generation": 0,
        "ip": null, "user_agent": null,
        "metadata": { "device": "laptop" } })
    );
    assert!(!body.to_string().contains("tgr_"));
    let cookie = tokens_body(&options(AdapterOptions::builder().access_cookie("__Host-a")), &t);
    assert!(cookie.get("access_token").is_none() && cookie["access_expires_at"] == 5 + 900_000);
}

#[test]
fn the_csrf_check_follows_the_doc_in_order() {
    let o = options(AdapterOptions::builder().allowed_origins(["https://partner.example"]));
    let req = |origin, site, host| RequestOrigin { origin, sec_fetch_site: site, host };
    let host = Some("app.example");
    for (r, allowed, why) in [
        (req(Some("https://partner.example"), Some("cross-site"), host), true, "an allowed origin, before Sec-Fetch-Site"),
        (req(None, Some("same-origin"), host), true, "same-origin"),
        (req(None, Some("none"), host), true, "a navigation the user started"),
        (req(None, Some("same-site"), host), false, "a sibling subdomain"),
        (req(None, Some("cross-site"), host), false, "another site"),
        (req(Some("https://app.example"), Some("cross-site"), host), false, "Sec-Fetch-Site wins over a matching Origin"),
        (req(Some("https://APP.example"), None, host), true, "its own origin, host compared case-insensitively"),
        (req(Some("http://app.example:8080"), None, Some("app.example:8080")), true, "with a port"),
        (req(Some("https://app.example:8443"), None, host), false, "another port is another origin"),
        (req(Some("https://evil.example"), None, host), false, "a foreign origin"),
        (req(Some("null"), None, host), false, "Origin null"),
        (req(Some("https://app.example"), None, None), false, "no Host to compare with"),
        (req(None, None, host), true, "neither header: not a browser"),
        (req(Some(""), Some(""), host), true, "empty headers count as absent"),
        (req(Some("https://partner.example.evil"), None, host), false, "exact match only"),
    ] {
        assert_eq!(csrf_allowed(&o, r), allowed, "{why}");
    }
}

#[test]
fn methods_and_dead_refresh_codes() {
    for m in ["GET", "get", "HEAD", "OPTIONS"] {
        assert!(!state_changing(m), "{m}");
    }
    for m in ["POST", "PUT", "PATCH", "DELETE", "BREW"] {
        assert!(state_changing(m), "{m}");
    }
    let dead: Vec<&str> = ErrorCode::ALL.iter().filter(|c| refresh_is_dead(**c)).map(|c| c.as_str()).collect();
    assert_eq!(dead, ["token_invalid", "session_not_found", "session_revoked", "session_expired", "refresh_token_reused"]);
}
