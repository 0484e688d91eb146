//! Request bodies as `Send` byte streams, for services that stream uploads.
//!
//! actix's [`web::Payload`] is tied to its worker thread (`!Send`), while the blob store
//! port takes a `Send` [`ByteStream`]. A task on the worker thread pumps the payload into
//! a bounded channel, and the service reads the other end: memory stays at a few chunks
//! whatever the body's size, and a slow store slows the client down. When the service
//! stops reading (a size limit, an error), the channel closes and the pump drops the
//! payload.

use std::io;

use actix_web::web;
use futures::StreamExt;
use tlao_ports::ByteStream;
use tokio::sync::mpsc;

/// How many chunks may wait between the client and the service.
const BUFFERED_CHUNKS: usize = 8;

/// The body of a request as a `Send` stream.
pub(crate) fn forward(mut payload: web::Payload) -> ByteStream {
    let (sender, receiver) = mpsc::channel::<io::Result<bytes::Bytes>>(BUFFERED_CHUNKS);
    actix_web::rt::spawn(async move {
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| io::Error::other(format!("reading the body: {e}")));
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    Box::pin(futures::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|chunk| (chunk, receiver)) },
    ))
}
