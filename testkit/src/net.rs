//! A gate between clients and a server on loopback: it forwards TCP connections and can cut
//! them all or refuse new ones, to simulate a network that drops.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A forwarding gate. Dropping it stops it.
pub struct NetGate {
    /// `http://127.0.0.1:PORT` of the gate.
    pub url: String,
    blocked: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    counter: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl NetGate {
    /// Starts a gate that forwards to `127.0.0.1:target_port`.
    pub async fn start(target_port: u16) -> anyhow::Result<NetGate> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let blocked = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let counter = Arc::new(AtomicU64::new(0));
        let (b, g, c) = (blocked.clone(), generation.clone(), counter.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if b.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = g.subscribe();
                let c = c.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(("127.0.0.1", target_port)).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    c.fetch_add(1, Ordering::SeqCst);
                    let (mut ri, mut wi) = inbound.into_split();
                    let (mut ro, mut wo) = outbound.into_split();
                    tokio::select! {
                        _ = tokio::io::copy(&mut ri, &mut wo) => {}
                        _ = tokio::io::copy(&mut ro, &mut wi) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Ok(NetGate {
            url,
            blocked,
            generation,
            counter,
            task,
        })
    }

    /// Drops every open connection (clients see a reset and reconnect).
    pub fn cut(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    /// Refuses (or again accepts) new connections.
    pub fn block(&self, blocked: bool) {
        self.blocked.store(blocked, Ordering::SeqCst);
    }

    /// How many connections were forwarded so far.
    pub fn connections(&self) -> u64 {
        self.counter.load(Ordering::SeqCst)
    }
}

impl Drop for NetGate {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}
