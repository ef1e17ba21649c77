//! The axum example app: a login page and the routes every tollgate example app
//! serves (the axum layer, docs/cookies.md), on the memory store.
//!
//! ```sh
//! TOLLGATE_SECRET=$(cargo run -q --features server -- keygen) PORT=3000 \
//!   cargo run --example axum_app --features axum
//! ```
//!
//! Settings come from `TOLLGATE_*` variables (the engine's and the adapter's rows
//! of the settings table), the port from `PORT` (3000), on 127.0.0.1. It prints
//! `listening on http://127.0.0.1:<port>` once it accepts connections.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use tollgate::axum::{ErrorResponse, Session, SessionLayer, Sessions};
use tollgate::settings::{Source, Surface};
use tollgate::{Error, ErrorCode, MemoryStore, SessionManager, Settings};

const PAGE: &str = include_str!("web/index.html");
const DEMO_PASSWORD: &str = "demo-password";

/// `POST /login` with `{"user", "password"}`: the demo's own authentication, then tollgate's sign-in.
async fn login(sessions: Sessions, body: Bytes) -> Response {
    // The origin is checked before the body: a cross-site form is `forbidden`, not a failed login.
    if let Err(e) = sessions.same_origin() {
        return ErrorResponse(e).into_response();
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (user, password) = (body["user"].as_str().unwrap_or_default(), body["password"].as_str().unwrap_or_default());
    let user_ok = (1..=32).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !user_ok || password != DEMO_PASSWORD {
        let refused = Error::new(ErrorCode::Unauthorized, "unknown user or wrong password (the demo's password is demo-password)");
        return ErrorResponse(refused).into_response();
    }
    sessions.sign_in(user, Map::new(), json!({})).await
}

/// `GET /api/me`: strict verification.
async fn me(session: Session) -> Json<Value> {
    Json(json!({ "user": session.claims.sub(), "sid": session.session.sid }))
}

/// `GET /api/sessions`: the caller's sessions.
async fn sessions(session: Session, sessions: Sessions) -> Result<Json<Value>, ErrorResponse> {
    let list = sessions.list(session.claims.sub(), session.claims.sid()).await?;
    Ok(Json(json!({ "sessions": list })))
}

fn app(manager: Arc<SessionManager<MemoryStore>>, settings: &Settings) -> Result<Router, Error> {
    Ok(Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/login", post(login))
        .route("/auth/refresh", post(tollgate::axum::refresh))
        .route("/auth/sign-out", post(tollgate::axum::sign_out))
        .route("/auth/sign-out-everywhere", post(tollgate::axum::sign_out_everywhere))
        .route("/api/me", get(me))
        .route("/api/sessions", get(sessions))
        .layer(SessionLayer::new(manager, settings.adapter_options()?)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::read(&Source::process_env()?, Surface::Adapter)?;
    let manager = Arc::new(SessionManager::new(settings.config()?, MemoryStore::new())?);
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|_| "PORT is a port number")?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // ConnectInfo gives the layer each connection's peer address (the client IP under trusted_proxy = none).
    axum::serve(listener, app(manager, &settings)?.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
