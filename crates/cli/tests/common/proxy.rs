//! A TCP proxy on a loopback port between a process and the API, that the test can cut:
//! [`Proxy::refuse_for`] closes its listener and every open connection, so connecting
//! is refused (as when the API host is unreachable), then listens again on the same
//! port. Bytes are forwarded as they are; the proxy knows nothing of HTTP.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

/// A running proxy.
pub struct Proxy {
    /// Its URL, `http://127.0.0.1:{port}`.
    pub url: String,
    addr: SocketAddr,
    upstream: SocketAddr,
    accepting: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    /// A proxy to the API at `upstream_url` (`http://127.0.0.1:{port}`).
    pub async fn start(upstream_url: &str) -> Proxy {
        let upstream: SocketAddr = upstream_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("the API listens on an ip:port");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address");
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accepting = tokio::spawn(accept(listener, upstream, connections.clone()));
        Proxy {
            url: format!("http://{addr}"),
            addr,
            upstream,
            accepting: Mutex::new(Some(accepting)),
            connections,
        }
    }

    /// Refuses connections for `outage`: the listener and every open connection are
    /// closed at once, and the same port listens again afterwards.
    pub async fn refuse_for(&self, outage: Duration) {
        let accepting = self.accepting.lock().expect("the lock").take();
        if let Some(accepting) = accepting {
            accepting.abort();
            let _ = accepting.await;
        }
        for connection in self.connections.lock().expect("the lock").drain(..) {
            connection.abort();
        }
        tokio::time::sleep(outage).await;
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("the proxy's port is free again");
        let accepting = tokio::spawn(accept(listener, self.upstream, self.connections.clone()));
        *self.accepting.lock().expect("the lock") = Some(accepting);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(accepting) = self.accepting.lock().expect("the lock").take() {
            accepting.abort();
        }
        for connection in self.connections.lock().expect("the lock").drain(..) {
            connection.abort();
        }
    }
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
) {
    while let Ok((mut inbound, _)) = listener.accept().await {
        let forward = tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
        connections
            .lock()
            .expect("the lock")
            .push(forward.abort_handle());
    }
}
