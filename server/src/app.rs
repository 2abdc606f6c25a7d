//! The server: shared state, the router, and the run loop with graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::task::TaskTracker;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

use crate::auth::Auth;
use crate::config::Settings;
use crate::room::Rooms;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use crate::{api, web, ws};

/// Largest REST request body: most calls are tiny; a run may carry 64 KiB of stdin.
const MAX_REST_BODY: usize = 128 * 1024;

/// How long shutdown waits for sockets to finish closing.
const SOCKET_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Connections the kernel holds for the accept loop. Many people opening one link at the
/// same moment (a class, a meeting) arrive faster than one accept loop turn; a connection
/// the backlog has no room for is dropped and its client retries its SYN only after a
/// second. The kernel caps this at `net.core.somaxconn` (4096 on current Linux).
const LISTEN_BACKLOG: u32 = 4096;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "mesh.db";

/// State shared by every request.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Loaded rooms.
    pub rooms: Arc<Rooms>,
    /// Token issuing and checking.
    pub auth: Auth,
    /// Join links on the server's public address.
    pub issuer: crate::auth::TokenIssuer,
    /// Settings.
    pub settings: Arc<Settings>,
    /// The address actually bound (port 0 resolved).
    pub bound: SocketAddr,
    /// Prometheus rendering.
    pub metrics: PrometheusHandle,
    /// Connection id counter.
    pub next_conn: Arc<AtomicU64>,
    /// Room socket joins per client address.
    pub joins: Arc<crate::limits::JoinLimiter>,
    /// Open connections, in total and per client address.
    pub conns: Arc<crate::limits::ConnectionLimiter>,
    /// Room creations per client address and on the whole server.
    pub creations: Arc<crate::limits::CreationLimiter>,
    /// Rooms in the store, kept by creation and deletion, for the `max_rooms` cap.
    pub room_count: Arc<AtomicU64>,
    /// Live room sockets, so shutdown can wait for their close handshakes.
    pub sockets: TaskTracker,
    /// Paces writes to busy connections (none when `--write-spacing-ms` is 0).
    pub pacer: Option<Arc<crate::ws::outbox::Pacer>>,
    /// Pings silent room sockets and closes dead ones.
    pub liveness: Arc<crate::ws::liveness::Liveness>,
    /// The run service.
    pub runs: Arc<crate::runs::RunService>,
    /// Sign-in with the OpenID Connect provider, when accounts are on.
    pub accounts: Option<Arc<crate::accounts::Accounts>>,
    /// The bus to the other nodes (`--bus`), if any.
    pub bus: Option<Arc<crate::bus::Bus>>,
    /// Whether the node is draining after SIGTERM (`drain.rs`).
    pub drain: Arc<crate::drain::Drain>,
}

impl AppState {
    /// The URL used in join links.
    pub fn public_url(&self) -> String {
        self.settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{}://{}", self.scheme(), self.bound))
    }

    /// `https` when the server terminates TLS itself, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.settings.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// The process-wide metrics recorder (installed once, also when tests start several servers
/// in one process).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed by an embedding program; then our
            // metrics render empty rather than failing startup.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The router over a given state.
pub fn router(state: AppState) -> Router {
    Router::new()
        // A draining node takes no new room sockets (drain.rs); its open ones go on.
        .route(
            "/ws/{room}",
            get(ws::upgrade).layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::edge::refuse_joins_while_draining,
            )),
        )
        .route("/api/sessions", get(api::list_sessions).post(api::create_session))
        .route("/api/sessions/{id}", get(api::get_session).delete(api::delete_session))
        .route("/api/sessions/{id}/runs", get(api::list_runs).post(api::start_run))
        .route("/api/sessions/{id}/runs/{run}", get(api::get_run))
        .route("/api/sessions/{id}/links", get(api::list_links).post(api::create_link))
        .route(
            "/api/sessions/{id}/links/{lid}",
            axum::routing::delete(api::revoke_link),
        )
        .route("/api/sessions/{id}/participants", get(api::list_participants))
        .route(
            "/api/sessions/{id}/seats/{seat}/role",
            axum::routing::put(api::set_role),
        )
        .route("/api/sessions/{id}/seats/{seat}/kick", axum::routing::post(api::kick))
        .route("/api/sessions/{id}/seats/{seat}/admit", axum::routing::post(api::admit))
        .route(
            "/api/sessions/{id}/seats/{seat}/refuse",
            axum::routing::post(api::refuse),
        )
        .route("/api/sessions/{id}/approval", axum::routing::put(api::set_approval))
        .route("/api/sessions/{id}/audit", get(api::audit))
        .route("/api/languages", get(api::languages))
        .route("/auth/login", get(crate::accounts::routes::login))
        .route("/auth/callback", get(crate::accounts::routes::callback))
        .route("/auth/logout", axum::routing::post(crate::accounts::routes::logout))
        .route("/auth/me", get(crate::accounts::routes::me))
        .route(
            "/auth/device",
            axum::routing::post(crate::accounts::routes::device_start),
        )
        .route(
            "/auth/device/poll",
            axum::routing::post(crate::accounts::routes::device_poll),
        )
        .route("/api/openapi.json", get(api::openapi))
        // The browser client (web.rs): the pages, and the assets they load.
        .route("/", get(web::home))
        .route("/join/{id}", get(web::join))
        // Assets are compressed for browsers that ask (the editor's script shrinks about
        // threefold); pages are small and carry a per-request nonce, so they are not.
        .route(
            "/assets/{*path}",
            get(web::asset).layer(
                // A zip (Pyodide's standard library) is compressed already.
                tower_http::compression::CompressionLayer::new()
                    .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("application/zip"))),
            ),
        )
        .route("/favicon.svg", get(web::favicon))
        .route("/livez", get(api::livez))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REST_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::edge::request_deadline,
        ))
        .with_state(state)
}

/// Opens the store the settings name; returns it with the token-signing secret it keeps
/// (shared by every server on one Postgres, so their tokens are valid on each).
async fn open_store(settings: &Settings) -> anyhow::Result<(Arc<dyn Store>, Vec<u8>)> {
    match &settings.store {
        crate::config::StoreLocation::Sqlite => {
            let sqlite = SqliteStore::open_with(
                &settings.data_dir.join(DB_FILE),
                settings.durability,
                settings.commit_interval,
            )?;
            let secret = sqlite.secret().await?;
            Ok((Arc::new(sqlite), secret))
        }
        crate::config::StoreLocation::Postgres(url) => {
            let pg = PostgresStore::connect(url).await?;
            let secret = pg.secret().await?;
            Ok((Arc::new(pg), secret))
        }
    }
}

/// A server that is bound and ready to serve.
pub struct Server {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: AppState,
}

impl Server {
    /// Opens the store and binds the listener.
    pub async fn bind(settings: Settings) -> anyhow::Result<Server> {
        crate::store::private::ensure_dir(&settings.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the data directory {} (owner-only): {e}; check that the server's user may write there, or pick another with --data-dir",
                settings.data_dir.display()
            )
        })?;
        // Bad certificate files stop the start here, before anything listens.
        let tls = settings.tls.as_ref().map(crate::tls::acceptor).transpose()?;
        let (store, secret) = open_store(&settings).await?;
        let room_count = store.list_rooms().await?.len() as u64;
        let listener =
            listen(settings.listen).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
        let bound = listener.local_addr()?;
        let images = match settings.run_images {
            crate::config::RunImages::Public => mesh_runner::ImageSource::Public,
            crate::config::RunImages::Local => mesh_runner::ImageSource::Local,
        };
        let registry = match &settings.languages {
            Some(path) => mesh_runner::Registry::load(path)?,
            None => mesh_runner::Registry::builtin()?,
        };
        let bus = settings.bus.clone().map(crate::bus::Bus::start).transpose()?;
        let slots = bus
            .as_ref()
            .zip(settings.cluster_max_sandboxes)
            .map(|(bus, cap)| crate::bus::slots::ClusterSlots::new(bus.clone(), cap));
        let runs = Arc::new(
            crate::runs::RunService::new(
                registry,
                images,
                settings.run_pool,
                settings.run_warm.clone(),
                settings.run_limits,
            )?
            .with_debug_idle(settings.debug_idle)
            .with_engines(settings.docker_hosts.clone())
            .with_cluster_slots(slots),
        );
        tokio::spawn({
            let runs = runs.clone();
            async move { runs.prewarm().await }
        });
        let edge = &settings.edge;
        let auth = Auth::new(&secret, settings.token_ttl);
        let scheme = if settings.tls.is_some() { "https" } else { "http" };
        let base_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}"));
        let accounts = match settings.oidc.clone() {
            None => None,
            Some(oidc) => {
                if settings.public_url.is_none() {
                    tracing::warn!(
                        "accounts are on but --public-url is not set: the provider sends browsers back to {base_url}/auth/callback, \
                         which works only if people reach this server at that address; set --public-url to the URL they use \
                         and register PUBLIC_URL/auth/callback as a redirect URI at the provider"
                    );
                }
                let redirect = format!("{base_url}/auth/callback");
                let secure = base_url.starts_with("https://");
                let accounts =
                    crate::accounts::Accounts::discover(oidc, redirect.clone(), store.clone(), secure).await?;
                tracing::info!(issuer = accounts.issuer(), %redirect, "accounts are on: sign-in with OpenID Connect");
                Some(Arc::new(accounts))
            }
        };
        let issuer = crate::auth::TokenIssuer::new(auth.clone(), base_url);
        let settings_write_spacing = settings.edge.write_spacing;
        let first_conn = crate::ws::first_conn_id(bus.as_ref().map(|b| b.node()));
        let state = AppState {
            joins: Arc::new(crate::limits::JoinLimiter::new(edge.join_rate, edge.join_burst)),
            conns: crate::limits::ConnectionLimiter::new(edge.max_connections, edge.max_connections_per_address),
            creations: Arc::new(crate::limits::CreationLimiter::new(
                edge.create_rate,
                edge.create_burst,
                edge.create_rate_global,
                edge.create_burst_global,
            )),
            room_count: Arc::new(AtomicU64::new(room_count)),
            rooms: Rooms::on_bus(
                store.clone(),
                Some(runs.clone()),
                settings.room_limits,
                Some(issuer.clone()),
                bus.clone(),
            ),
            bus,
            issuer,
            runs,
            store,
            auth,
            settings: Arc::new(settings),
            bound,
            metrics: metrics_handle(),
            next_conn: Arc::new(AtomicU64::new(first_conn)),
            sockets: TaskTracker::new(),
            pacer: crate::ws::outbox::Pacer::new(settings_write_spacing),
            liveness: crate::ws::liveness::Liveness::new(),
            accounts,
            drain: Arc::new(crate::drain::Drain::new()),
        };
        if let Some(pacer) = &state.pacer {
            tokio::spawn(pacer.clone().run());
        }
        tokio::spawn(state.liveness.clone().run());
        Ok(Server { listener, tls, state })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.state.bound
    }

    /// `http://ADDR`, or `https://ADDR` when the server terminates TLS.
    pub fn url(&self) -> String {
        format!("{}://{}", self.state.scheme(), self.state.bound)
    }

    /// Serves until `shutdown` resolves, then drains (`drain.rs`): says "draining" on
    /// `/readyz` and refuses new joins for the drain grace, then closes every room
    /// (persisting and compacting it, its sockets told to reconnect elsewhere) and the
    /// store, and returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let drain = self.state.drain.clone();
        let grace = self.state.settings.drain_grace;
        let rooms = self.state.rooms.clone();
        let runs = self.state.runs.clone();
        let store = self.state.store.clone();
        let sockets = self.state.sockets.clone();
        let edge = self.state.settings.edge.clone();
        let conns = self.state.conns.clone();
        let app = router(self.state);
        crate::edge::serve(self.listener, self.tls, app, edge, conns, async move {
            shutdown.await;
            drain.start();
            tracing::info!(
                grace_seconds = grace.as_secs_f64(),
                "draining: /readyz answers 503 and new joins are refused; open rooms close after the grace"
            );
            tokio::time::sleep(grace).await;
            tracing::info!("shutting down: closing rooms");
            rooms.shutdown().await;
            runs.shutdown().await;
            // Every room is compacted now: leave the store's files small (the WAL
            // checkpointed and truncated).
            if let Err(e) = store.close().await {
                tracing::warn!(error = %e, "cannot close the store cleanly; the next start checkpoints it");
            }
        })
        .await;
        // Upgraded sockets live outside the HTTP server's own bookkeeping: wait for them to
        // finish their close handshakes, so clients see "going away" rather than a reset.
        sockets.close();
        if tokio::time::timeout(SOCKET_DRAIN, sockets.wait()).await.is_err() {
            tracing::warn!("some sockets did not close in time");
        }
        Ok(())
    }
}

/// Listens on `addr` with a backlog of [`LISTEN_BACKLOG`] (tokio's `bind` asks for 128).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server takes its port back at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
