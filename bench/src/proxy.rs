//! A TCP proxy in front of the nodes, as a load balancer is to an agent: it leads to
//! one node, and `lead_to` cuts every connection through it (both sockets dropped
//! mid-stream) and leads the next ones to another node, where the agent dials back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

type Links = Arc<Mutex<Vec<JoinHandle<()>>>>;

pub struct Proxy {
    pub addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    links: Links,
    accept: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let target = Arc::new(Mutex::new(target));
        let links: Links = Arc::default();
        let (to, all) = (target.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let node = *lock(&to);
                let mut all = lock(&all);
                all.retain(|l| !l.is_finished());
                all.push(tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(node).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                }));
            }
        });
        Ok(Proxy { addr, target, links, accept })
    }

    /// Cuts every connection through it now; the next ones go to `node`.
    pub fn lead_to(&self, node: SocketAddr) {
        *lock(&self.target) = node;
        for link in lock(&self.links).drain(..) {
            link.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for link in lock(&self.links).drain(..) {
            link.abort();
        }
    }
}
