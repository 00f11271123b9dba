//! Serving a fake on loopback: every sandbox server binds, serves its router in the background,
//! and stops when its handle is dropped.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Binds `addr` (port 0 for a free one) and returns the listener with its `host:port`.
pub async fn listen(addr: SocketAddr) -> std::io::Result<(TcpListener, String)> {
    let listener = TcpListener::bind(addr).await?;
    let authority = listener.local_addr()?.to_string();
    Ok((listener, authority))
}

/// A running server; dropping it stops the server.
pub struct Served(JoinHandle<()>);

/// Serves `router` on `listener` in the background.
pub fn serve(listener: TcpListener, router: Router) -> Served {
    Served(tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    }))
}

impl Drop for Served {
    fn drop(&mut self) {
        self.0.abort();
    }
}
