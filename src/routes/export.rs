//! The streamed answer of an export (dashboard and API): the first page is already
//! read (and the export audited) when the response starts; a task reads the next pages
//! by keyset and hands each one over as a chunk, at most two chunks ahead of the
//! client, so memory stays at a page or two whatever the export's size.

use std::collections::HashSet;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::HttpResponse;
use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::web::{Bytes, Data};
use tokio::sync::mpsc;

use crate::app::export::{Export, PAGE, next_page};
use crate::state::AppState;
use crate::views::export::{CSV_HEADER, ExportedKey, Format};

struct ExportBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl MessageBody for ExportBody {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.rx.poll_recv(cx)
    }
}

/// `latchkey-keys-billing-2026-11-30.csv`: only letters, digits and dashes.
fn filename(label: &str, format: Format) -> String {
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_matches('-');
    let date = crate::db::now().date();
    if clean.is_empty() {
        format!("latchkey-keys-{date}.{}", format.as_str())
    } else {
        format!("latchkey-keys-{clean}-{date}.{}", format.as_str())
    }
}

/// The response that streams every key of `export` as CSV or JSON.
pub fn stream(state: Data<AppState>, export: Export, format: Format, label: &str) -> HttpResponse {
    let (tx, rx) = mpsc::channel(2);
    actix_web::rt::spawn(produce(state, export, format, tx));
    HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", filename(label, format)),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(ExportBody { rx })
}

async fn produce(
    state: Data<AppState>,
    export: Export,
    format: Format,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let Export {
        within,
        query,
        total,
        first,
        channel_names,
    } = export;
    let head = match format {
        Format::Csv => CSV_HEADER,
        Format::Json => "[",
    };
    if tx
        .send(Ok(Bytes::from_static(head.as_bytes())))
        .await
        .is_err()
    {
        return;
    }
    // A page restarts from the first when the row it continues from was deleted
    // meanwhile: keys already sent are skipped, and the walk is bounded.
    let mut seen: HashSet<i64> = HashSet::new();
    let max_pages = total / PAGE * 2 + 10;
    let mut page = first;
    let mut pages = 0;
    let now = crate::db::now();
    loop {
        let mut chunk = String::new();
        for k in &page.rows {
            if !seen.insert(k.id) {
                continue;
            }
            let channel = channel_names.get(&k.channel_id).map_or("", String::as_str);
            let row = ExportedKey::of(k, channel, now);
            match format {
                Format::Csv => chunk.push_str(&row.csv_line()),
                Format::Json => {
                    chunk.push_str(if seen.len() == 1 { "\n" } else { ",\n" });
                    chunk.push_str(&row.json());
                }
            }
        }
        if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
            return;
        }
        pages += 1;
        let Some(last) = page.rows.last().map(|k| k.id) else {
            break;
        };
        if !page.has_next || pages > max_pages {
            break;
        }
        match next_page(&state, within, &query, last).await {
            Ok(p) => page = p,
            Err(e) => {
                tracing::error!(error = %e, "an export stopped part way");
                let _ = tx
                    .send(Err(std::io::Error::other(
                        "the export could not be completed",
                    )))
                    .await;
                return;
            }
        }
    }
    let tail = match format {
        Format::Csv => "",
        Format::Json => "\n]\n",
    };
    if !tail.is_empty() {
        let _ = tx.send(Ok(Bytes::from_static(tail.as_bytes()))).await;
    }
}
