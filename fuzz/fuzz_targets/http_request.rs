//! HTTP request -> route -> response, in process: `HttpApi` on the memory store. The input is
//! `METHOD target\n`, `name: value\n` headers, an empty line, the body (see `encode_request`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tollgate::http::HttpApi;
use tollgate::MemoryStore;
use tollgate_fuzz::{decode_request, http_api, runtime};

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some(req) = decode_request(data) else { return };
    let api: HttpApi<MemoryStore> = http_api();
    let res = RUNTIME.get_or_init(runtime).block_on(api.handle(req));
    assert!((200..600).contains(&res.status), "status {}", res.status);
    // No input makes the service fail on its own: a 500 is a bug (the memory store never fails).
    assert_ne!(res.status, 500, "{}", String::from_utf8_lossy(&res.body));
    if res.status >= 400 {
        let body: serde_json::Value = serde_json::from_slice(&res.body).expect("error bodies are JSON");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
});
