//! Connections between calls. sqlx tests every connection given back to its
//! pool with one more round trip (measured here: about 205 µs per PostgreSQL
//! read through the pool, 120 to 155 µs on a connection kept out of it). A
//! connection whose call ended cleanly waits here instead, up to `keep` of
//! them, and serves the next call at once; one that failed or was cancelled
//! goes back to the pool, whose test drops it if it is broken. While a call
//! waits for the pool, connections go back to the pool, which hands them on.

use std::sync::Mutex;

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};

use super::SqlError;

struct Idle<DB: Database> {
    conns: Vec<PoolConnection<DB>>,
    /// Calls waiting for the pool, which only the pool can wake.
    waiting: usize,
}

pub(crate) struct Conns<DB: Database> {
    pool: Pool<DB>,
    idle: Mutex<Idle<DB>>,
    keep: usize,
}

/// Counts a call as waiting for the pool until it has a connection or is cancelled.
struct Waiting<'a, DB: Database>(&'a Conns<DB>);

impl<DB: Database> Drop for Waiting<'_, DB> {
    fn drop(&mut self) {
        self.0.idle().waiting -= 1;
    }
}

impl<DB: Database> Conns<DB> {
    /// Keeps up to `keep` connections out of `pool`: none for an application's
    /// own pool, which it may need for itself.
    pub fn new(pool: Pool<DB>, keep: usize) -> Self {
        Conns { pool, idle: Mutex::new(Idle { conns: Vec::new(), waiting: 0 }), keep }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Idle<DB>> {
        // Each change under the lock is one push, pop or count: a poisoned lock is still consistent.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn take(&self) -> Result<PoolConnection<DB>, sqlx::Error> {
        {
            let mut idle = self.idle();
            if let Some(conn) = idle.conns.pop() {
                return Ok(conn);
            }
            idle.waiting += 1;
        }
        let _waiting = Waiting(self);
        self.pool.acquire().await
    }

    /// After a call that ended cleanly (a dropped connection goes back to the pool).
    pub fn give_back(&self, conn: PoolConnection<DB>) {
        let mut idle = self.idle();
        if idle.waiting == 0 && idle.conns.len() < self.keep {
            idle.conns.push(conn);
        }
    }

    /// Runs `call` on a connection, which waits here for the next call if `call` succeeded.
    pub async fn with<T>(&self, call: impl AsyncFnOnce(&mut DB::Connection) -> Result<T, SqlError>) -> Result<T, SqlError> {
        let mut conn = self.take().await?;
        let out = call(&mut conn).await?;
        self.give_back(conn);
        Ok(out)
    }
}

impl<DB: Database> Drop for Conns<DB> {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.idle.get_mut().unwrap_or_else(|p| p.into_inner()).conns);
        // Going back to the pool spawns a task: outside a runtime, close them here instead.
        if tokio::runtime::Handle::try_current().is_err() {
            idle.into_iter().for_each(|conn| drop(conn.detach()));
        }
    }
}
