//! The Durable Object class `UserSessions` (binding `TOLLGATE_USERS`): one
//! object per user, holding that user's sessions in a [`DurableStore`].

/// The internal header with which the Worker names the object's user (base64url).
/// The Worker drops any such header a client sends.
pub const OWNER_HEADER: &str = "x-tollgate-object-user";

#[cfg(target_arch = "wasm32")]
pub use imp::UserSessions;

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::cell::RefCell;
    use std::rc::Rc;

    use worker::{durable_object, DurableObject, Env, Request, Response, State};

    use super::OWNER_HEADER;
    use crate::engine::b64;
    use crate::engine::error::Error;
    use crate::http::{HttpApi, HttpResponse};
    use crate::platform::{Clock, SystemClock};
    use crate::store::durable::DurableStore;
    use crate::worker::entry::{into_response, load_service, read_request};

    /// One user's sessions: the Durable Object class (binding `TOLLGATE_USERS`).
    #[durable_object]
    pub struct UserSessions {
        state: State,
        env: Env,
        service: RefCell<Option<Rc<HttpApi<DurableStore>>>>,
    }

    impl UserSessions {
        async fn service(&self, owner: &str) -> Result<Rc<HttpApi<DurableStore>>, Error> {
            if let Some(s) = self.service.borrow().as_ref() {
                return Ok(s.clone());
            }
            let store = DurableStore::open(&self.state, owner)?;
            let service = Rc::new(load_service(&self.env, store).await?);
            *self.service.borrow_mut() = Some(service.clone());
            Ok(service)
        }

        async fn schedule_sweep(&self) -> worker::Result<()> {
            let storage = self.state.storage();
            if storage.get_alarm().await?.is_some() {
                return Ok(());
            }
            let next = match self.service.borrow().as_ref() {
                Some(s) => s.sessions().store().next_expiry().map_err(|e| worker::Error::RustError(e.to_string()))?,
                None => None,
            };
            if let Some(at) = next {
                let in_ms = at.saturating_sub(SystemClock.now_ms()).max(1000);
                storage.set_alarm(std::time::Duration::from_millis(in_ms)).await?;
            }
            Ok(())
        }
    }

    fn owner_of(req: &crate::http::HttpRequest) -> Option<String> {
        let encoded = req.header(OWNER_HEADER)?;
        String::from_utf8(b64::decode(encoded).ok()?).ok()
    }

    impl DurableObject for UserSessions {
        fn new(state: State, env: Env) -> Self {
            UserSessions { state, env, service: RefCell::new(None) }
        }

        async fn fetch(&self, req: Request) -> worker::Result<Response> {
            crate::platform::request_scope(self.handle(req)).await
        }

        async fn alarm(&self) -> worker::Result<Response> {
            let next = match self.service.borrow().as_ref() {
                Some(s) => s.sessions().store().sweep(),
                // A fresh instance (after eviction): open the store without a user check.
                None => DurableStore::open(&self.state, "").and_then(|s| s.sweep()),
            };
            // With nothing left, only the version counter stays (one row): kept, so a
            // version is never handed out twice.
            if let Some(at) = next.map_err(|e| worker::Error::RustError(e.to_string()))? {
                let in_ms = at.saturating_sub(SystemClock.now_ms()).max(1000);
                self.state.storage().set_alarm(std::time::Duration::from_millis(in_ms)).await?;
            }
            Response::ok("swept")
        }
    }

    impl UserSessions {
        async fn handle(&self, req: Request) -> worker::Result<Response> {
            #[cfg(feature = "conformance")]
            if let Some(resp) = crate::conformance::workerd::object_route(&req, &self.state).await {
                return resp;
            }
            let req = match read_request(req).await {
                Ok(r) => r,
                Err(refused) => return into_response(refused),
            };
            let Some(owner) = owner_of(&req) else {
                let e = Error::new(crate::ErrorCode::Internal, "the Durable Object was called without its user");
                return into_response(HttpResponse::error(&e));
            };
            let service = match self.service(&owner).await {
                Ok(s) => s,
                Err(e) => return into_response(HttpResponse::error(&e)),
            };
            let wrote = !matches!(req.method.as_str(), "GET" | "HEAD");
            let resp = service.handle(req).await;
            if wrote && resp.status < 300 {
                // Best effort: a missed alarm only delays reclaiming space.
                let _ = self.schedule_sweep().await;
            }
            into_response(resp)
        }
    }
}
