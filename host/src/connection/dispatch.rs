//! Serving the peer's requests: each request becomes an operation on this
//! side's objects, in arrival order, and its result goes back as a reply.

use tokio::sync::mpsc;

use super::Shared;
use crate::exception::Exception;
use crate::protocol::{Message, ROOT, Request, Seq};
use crate::service::{Service, call_root};

/// Runs `service` for one connection: `on_connect`, every request until the
/// inbox closes or the peer sends `Close`, then `on_disconnect`.
pub(super) async fn serve<S: Service>(
    mut service: S,
    mut inbox: mpsc::Receiver<(Seq, Request)>,
    shared: &Shared,
) {
    if let Err(error) = service.on_connect().await {
        tracing::warn!(peer = %shared.peer, %error, "on_connect failed; closing the connection");
        shared.closing.cancel();
        return;
    }
    while let Some((seq, request)) = inbox.recv().await {
        if shared.closing.is_cancelled() {
            break;
        }
        let result = match request {
            Request::CallAttr {
                target: ROOT,
                name,
                args,
                kwargs,
            } => call_root(&mut service, &name, args, kwargs).await,
            Request::CallAttr { target, .. } => Err(Exception::new(
                "KeyError",
                format!("no object {target} on this connection"),
            )),
            Request::Ping(data) => Ok(data),
            Request::Close => break,
        };
        if shared
            .outbox
            .send(Message::Reply { seq, result })
            .await
            .is_err()
        {
            break;
        }
    }
    shared.closing.cancel();
    service.on_disconnect().await;
}
