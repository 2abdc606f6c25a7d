//! The Docker engines runs go to (`--docker-host`, decision 020): the local one by default,
//! or several, local sockets and remote engines over TLS. Each sandbox goes to the engine
//! with the fewest sandboxes of this server on it that answers; an engine that does not
//! answer is passed over for a while and tried again later.
//!
//! Each engine has its own runner: its connection, its warm pool, its sweep of leftovers.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_runner::{ImageSource, Mode, Registry, Runner};
use tokio::sync::Mutex;

/// How long an engine that did not answer is passed over before it is tried again.
const DOWN_FOR: Duration = Duration::from_secs(10);

/// How a warm container may idle before it is replaced (so rebuilt images are used).
const WARM_MAX_IDLE: Duration = Duration::from_secs(600);

/// How often sandboxes no live server supervises are looked for (see `Runner::sweep_leftovers`).
const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// Where a Docker engine is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineAddress {
    /// `DOCKER_HOST`, else the local socket.
    Default,
    /// A Unix socket (`unix:///path`).
    Socket(String),
    /// A remote engine over mutual TLS (`tcp://HOST:PORT`), with the directory holding
    /// `ca.pem`, `cert.pem` and `key.pem` (Docker's own layout).
    Tls(String, PathBuf),
}

impl EngineAddress {
    /// Parses `--docker-host` (`unix:///path` or `tcp://HOST:PORT`); a TCP engine needs the
    /// TLS directory: the Docker API is root on its host, never spoken in the clear.
    pub fn parse(text: &str, tls_dir: Option<&PathBuf>) -> anyhow::Result<EngineAddress> {
        let text = text.trim();
        if text.starts_with("unix://") {
            return Ok(EngineAddress::Socket(text.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            anyhow::ensure!(!rest.is_empty(), "docker_host {text:?} names no host");
            let Some(dir) = tls_dir else {
                anyhow::bail!(
                    "docker_host {text}: a remote engine is reached over TLS only; give --docker-tls-dir DIR with ca.pem, cert.pem and key.pem"
                );
            };
            for file in ["ca.pem", "cert.pem", "key.pem"] {
                anyhow::ensure!(
                    dir.join(file).is_file(),
                    "docker_tls_dir {}: {file} is missing",
                    dir.display()
                );
            }
            return Ok(EngineAddress::Tls(text.to_owned(), dir.clone()));
        }
        anyhow::bail!("docker_host {text:?}: give unix:///path/to/docker.sock or tcp://HOST:PORT")
    }

    fn name(&self) -> String {
        match self {
            EngineAddress::Default => "local".into(),
            EngineAddress::Socket(s) | EngineAddress::Tls(s, _) => s.clone(),
        }
    }
}

/// One engine, connected on first use.
struct Engine {
    address: EngineAddress,
    /// Its position and address, for logs and metrics.
    name: String,
    runner: Mutex<Option<Arc<Runner>>>,
    /// Sandboxes of this server on it now.
    load: AtomicUsize,
    /// Passed over until then, after it did not answer.
    down_until: std::sync::Mutex<Option<Instant>>,
}

/// A sandbox counted on its engine; dropping it (with the run) counts it off.
pub struct Load {
    engine: Arc<Engine>,
}

impl Drop for Load {
    fn drop(&mut self) {
        let now = self.engine.load.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("mesh_engine_sandboxes", "engine" => self.engine.name.clone()).set(now as f64);
    }
}

/// What the engines share: how runners are made.
struct RunnerSpec {
    registry: Registry,
    images: ImageSource,
    pool: usize,
    warm: Vec<String>,
}

/// Every engine of this server.
pub struct Engines {
    engines: Vec<Arc<Engine>>,
    spec: RunnerSpec,
}

impl Engines {
    /// The engines at `addresses` (the default one when empty), each with a warm pool of
    /// `pool` per language, the `warm` languages warmed when it connects.
    pub fn new(
        addresses: Vec<EngineAddress>,
        registry: Registry,
        images: ImageSource,
        pool: usize,
        warm: Vec<String>,
    ) -> Self {
        let addresses = if addresses.is_empty() {
            vec![EngineAddress::Default]
        } else {
            addresses
        };
        let engines = addresses
            .into_iter()
            .enumerate()
            .map(|(i, address)| {
                Arc::new(Engine {
                    name: format!("{i} {}", address.name()),
                    address,
                    runner: Mutex::new(None),
                    load: AtomicUsize::new(0),
                    down_until: std::sync::Mutex::new(None),
                })
            })
            .collect();
        Engines {
            engines,
            spec: RunnerSpec {
                registry,
                images,
                pool,
                warm,
            },
        }
    }

    /// Connects every engine (to warm their pools); failures are logged.
    pub async fn connect_all(&self) {
        for engine in &self.engines {
            if let Err(e) = self.runner(engine).await {
                tracing::warn!(engine = %engine.name, error = %e, "cannot reach a Docker engine");
            }
        }
    }

    /// Removes idle warm containers on every connected engine (on shutdown).
    pub async fn shutdown(&self) {
        for engine in &self.engines {
            let runner = engine.runner.lock().await.clone();
            if let Some(r) = runner {
                r.shutdown().await;
            }
        }
    }

    /// The engine for a new sandbox: the least loaded that answers, counted at once. The
    /// error names why none could be used.
    pub async fn pick(&self) -> Result<(Arc<Runner>, Load), String> {
        let mut order: Vec<&Arc<Engine>> = self.engines.iter().collect();
        order.sort_by_key(|e| e.load.load(Ordering::Relaxed));
        let mut last = String::from("no Docker engine is configured");
        let mut skipped = Vec::new();
        for engine in order {
            let down = engine
                .down_until
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|t| Instant::now() < t);
            if down {
                skipped.push(engine);
                continue;
            }
            match self.runner(engine).await {
                Ok(r) => return Ok((r, Self::count(engine))),
                Err(e) => last = e,
            }
        }
        // Every engine that answered before is down: try those passed over, as a last resort.
        for engine in skipped {
            if let Ok(r) = self.runner(engine).await {
                return Ok((r, Self::count(engine)));
            }
        }
        Err(last)
    }

    fn count(engine: &Arc<Engine>) -> Load {
        let now = engine.load.fetch_add(1, Ordering::Relaxed) + 1;
        metrics::gauge!("mesh_engine_sandboxes", "engine" => engine.name.clone()).set(now as f64);
        Load { engine: engine.clone() }
    }

    /// The engine's runner, connecting (and sweeping, and warming) on first use. A failure
    /// is not kept: the engine may come up later, and is passed over until then.
    async fn runner(&self, engine: &Arc<Engine>) -> Result<Arc<Runner>, String> {
        let mut slot = engine.runner.lock().await;
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let spec = &self.spec;
        let connected = match &engine.address {
            EngineAddress::Default => Runner::connect(spec.registry.clone(), spec.images).await,
            EngineAddress::Socket(host) => Runner::connect_to(host, spec.registry.clone(), spec.images).await,
            EngineAddress::Tls(host, dir) => Runner::connect_tls(host, dir, spec.registry.clone(), spec.images).await,
        };
        let r = match connected {
            Ok(r) => Arc::new(r.with_pool(spec.pool, WARM_MAX_IDLE)),
            Err(e) => {
                *engine.down_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + DOWN_FOR);
                tracing::warn!(engine = %engine.name, error = %e, "a Docker engine does not answer; passing it over for now");
                return Err(format!("runs are unavailable: {e}"));
            }
        };
        *engine.down_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        tracing::info!(engine = %engine.name, "connected to a Docker engine");
        sweep(&r).await;
        // Then now and again, for as long as the service lives: another server on this
        // engine may die and leave its sandboxes at any time.
        let weak = Arc::downgrade(&r);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(r) = weak.upgrade() else { return };
                sweep(&r).await;
            }
        });
        for id in &spec.warm {
            // Checked by the run service. A debuggable language is warmed for debugging too.
            let _ = r.warm(id, Mode::Run);
            if spec.registry.get(id).is_ok_and(|l| l.debug.is_some()) {
                let _ = r.warm(id, Mode::Debug);
            }
        }
        *slot = Some(r.clone());
        Ok(r)
    }
}

/// Removes sandboxes no live server supervises, and says so.
async fn sweep(runner: &Runner) {
    match runner.sweep_leftovers().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed sandboxes that no live server supervised"),
        Err(e) => tracing::warn!(error = %e, "could not look for leftover sandboxes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_engine_is_a_socket_or_tls_never_plain_tcp() {
        assert_eq!(
            EngineAddress::parse("unix:///var/run/docker.sock", None).unwrap(),
            EngineAddress::Socket("unix:///var/run/docker.sock".into())
        );
        let plain = EngineAddress::parse("tcp://10.0.0.5:2376", None)
            .unwrap_err()
            .to_string();
        assert!(plain.contains("--docker-tls-dir"), "{plain}");
        let dir = tempfile::tempdir().unwrap();
        let missing = EngineAddress::parse("tcp://10.0.0.5:2376", Some(&dir.path().to_path_buf()))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("ca.pem is missing"), "{missing}");
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        assert!(matches!(
            EngineAddress::parse("tcp://10.0.0.5:2376", Some(&dir.path().to_path_buf())),
            Ok(EngineAddress::Tls(..))
        ));
        assert!(EngineAddress::parse("ssh://box", None).is_err());
    }
}
