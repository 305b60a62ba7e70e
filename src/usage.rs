//! Recording API usage without slowing the hot path: requests are appended to an
//! in-memory buffer (one short mutex hold) and written to the database in batches by a
//! background task, once a second and on graceful shutdown.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::db::usage::{LastUsed, NewRequest};
use crate::db::{self, DbResult, Pool};
use crate::verification::CachedKey;

/// Beyond this many unwritten rows (database down for a long time) the oldest are
/// dropped rather than letting memory grow without bound.
const MAX_BUFFERED: usize = 500_000;

#[derive(Default)]
struct Buffer {
    rows: Vec<Pending>,
    last_used: HashMap<i64, (time::PrimitiveDateTime, Option<IpAddr>)>,
    /// Rows of a batch whose write failed, retried first next time.
    retry: Vec<NewRequest>,
}

/// A request as buffered: no string formatting on the hot path; it becomes a
/// `NewRequest` in the flusher.
struct Pending {
    at: time::PrimitiveDateTime,
    api_key_id: i64,
    channel_id: i64,
    method: &'static str,
    path: Box<str>,
    status: u16,
    ip: Option<IpAddr>,
}

impl Pending {
    fn into_row(self) -> NewRequest {
        NewRequest {
            occurred_at: self.at,
            api_key_id: self.api_key_id,
            channel_id: self.channel_id,
            method: self.method.to_owned(),
            path: self.path.into(),
            status: i32::from(self.status),
            source_ip: self.ip.map(|i| i.to_string()),
        }
    }
}

fn method_name(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        _ => "OTHER",
    }
}

#[derive(Default)]
pub struct UsageRecorder {
    buffer: Mutex<Buffer>,
    /// Serialises flushes (they run on the blocking pool) so the shutdown flush never
    /// races the periodic one.
    flushing: Mutex<()>,
}

impl UsageRecorder {
    /// Notes one request made with `key`. Off-the-record keys leave no log line and no
    /// address; their last-used time is still kept.
    pub fn record(
        &self,
        key: &CachedKey,
        method: &str,
        path: &str,
        status: u16,
        ip: Option<IpAddr>,
    ) {
        let at = db::now();
        let path: Box<str> = path.into();
        let Ok(mut buf) = self.buffer.lock() else {
            return;
        };
        if !key.off_the_record {
            if buf.rows.len() >= MAX_BUFFERED {
                buf.rows.drain(..MAX_BUFFERED / 10);
                tracing::warn!("request log buffer full: oldest entries dropped");
            }
            buf.rows.push(Pending {
                at,
                api_key_id: key.id,
                channel_id: key.channel_id,
                method: method_name(method),
                path,
                status,
                ip,
            });
        }
        let ip = if key.off_the_record { None } else { ip };
        buf.last_used.insert(key.id, (at, ip));
    }

    pub fn pending(&self) -> usize {
        self.buffer
            .lock()
            .map(|b| b.rows.len() + b.retry.len() + b.last_used.len())
            .unwrap_or(0)
    }

    /// Writes everything buffered. On failure the batch goes back into the buffer to
    /// be retried, so nothing acknowledged is lost while the database is briefly away.
    pub async fn flush(self: &Arc<Self>, pool: &Pool) -> DbResult<usize> {
        let this = self.clone();
        let pool = pool.clone();
        actix_web::web::block(move || this.flush_blocking(&pool))
            .await
            .map_err(|_| db::DbError::Canceled)?
    }

    fn flush_blocking(&self, pool: &Pool) -> DbResult<usize> {
        let _guard = self.flushing.lock();
        let taken = match self.buffer.lock() {
            Ok(mut buf) => std::mem::take(&mut *buf),
            Err(_) => return Ok(0),
        };
        if taken.rows.is_empty() && taken.last_used.is_empty() && taken.retry.is_empty() {
            return Ok(0);
        }
        let mut rows = taken.retry;
        rows.extend(taken.rows.into_iter().map(Pending::into_row));
        let last_used: Vec<(i64, LastUsed)> = taken
            .last_used
            .iter()
            .map(|(k, (at, ip))| {
                (
                    *k,
                    LastUsed {
                        at: *at,
                        ip: ip.map(|i| i.to_string()),
                    },
                )
            })
            .collect();
        let result = pool
            .get()
            .map_err(db::DbError::from)
            .and_then(|mut c| db::usage::write_batch(&mut c, &rows, &last_used));
        match result {
            Ok(()) => Ok(rows.len()),
            Err(e) => {
                if let Ok(mut buf) = self.buffer.lock() {
                    let newer = std::mem::take(&mut buf.retry);
                    buf.retry = rows;
                    buf.retry.extend(newer);
                    for (k, v) in taken.last_used {
                        buf.last_used.entry(k).or_insert(v);
                    }
                }
                Err(e)
            }
        }
    }
}

pub fn spawn_flusher(recorder: Arc<UsageRecorder>, pool: Pool, every: Duration) {
    actix_web::rt::spawn(async move {
        let mut ticker = actix_web::rt::time::interval(every);
        loop {
            ticker.tick().await;
            if let Err(e) = recorder.flush(&pool).await {
                tracing::warn!(error = %e, "writing the request log failed; will retry");
            }
        }
    });
}
