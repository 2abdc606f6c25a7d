//! The REST API (`/api/...`, `/livez`, `/readyz`, `/metrics`) and its OpenAPI description.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mesh_protocol::messages::Role;
use mesh_protocol::rest::{
    ApiError, AuditEntry, CreateLink, CreateSession, CreatedSession, FileInfo, Health, LanguageInfo, LinkInfo,
    RoomParticipants, RunRecord, SessionInfo, SessionSummary, SetApproval, SetRole, StartRun, StartedRun,
};
use mesh_protocol::{ErrorCode, RoomId};
use utoipa::OpenApi;

use crate::app::AppState;
use crate::client_addr::ClientAddr;
use crate::edge::{describe_wait, Refusal};
use crate::limits::CreationRefusal;
use crate::room::access::{new_id, Caller};
use crate::room::core::{HostOp, HostReply};
use crate::store::sqlite::now_ms;
use crate::store::{AccessChange, LinkRecord, RoomRecord};

/// The longest room name, in characters.
const MAX_ROOM_NAME_CHARS: usize = 100;

/// The OpenAPI document of the REST API, served at `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(title = "mesh-server", description = "REST API of the mesh sync server. Rooms themselves are reached over the WebSocket at /ws/{id}?token=..., which speaks the Yjs sync and awareness protocol."),
    paths(create_session, get_session, delete_session, list_sessions, start_run, list_runs, get_run, languages, livez, readyz,
        list_links, create_link, revoke_link, list_participants, set_role, kick, admit, refuse, set_approval, audit,
        crate::accounts::routes::login, crate::accounts::routes::callback, crate::accounts::routes::logout,
        crate::accounts::routes::me, crate::accounts::routes::device_start, crate::accounts::routes::device_poll),
    components(schemas(ApiError, StartRun, StartedRun, mesh_protocol::rest::QueuePlace, RunRecord, CreateSession, CreatedSession, SessionInfo, SessionSummary, FileInfo, LanguageInfo, Health, ErrorCode, Role, mesh_protocol::messages::Participant,
        CreateLink, LinkInfo, SetRole, SetApproval, RoomParticipants, mesh_protocol::rest::WaitingJoiner, AuditEntry, mesh_protocol::rest::AuditKind,
        mesh_protocol::rest::Me, mesh_protocol::rest::UserInfo, mesh_protocol::rest::DeviceStart, mesh_protocol::rest::DevicePoll, mesh_protocol::rest::DeviceState)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "create_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // With accounts on, a signed-in user's mesh token (mesh-proxy login) rides beside the
        // room token in its own header; browsers send their session cookie instead.
        components.add_security_scheme(
            "user_token",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::new(mesh_protocol::rest::USER_TOKEN_HEADER),
            )),
        );
        components.add_security_scheme(
            "room_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// A JSON error response with the status that matches its code.
pub fn api_error(code: ErrorCode, message: String) -> Response {
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(ApiError { code, message })).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "request failed");
    api_error(
        ErrorCode::Internal,
        "the server failed to handle the request; try again".into(),
    )
}

/// The token of an `Authorization: Bearer` header.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// A refused request: becomes a JSON [`ApiError`] with the matching status.
pub struct ApiFailure(pub ErrorCode, pub String);

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        api_error(self.0, self.1)
    }
}

fn parse_room(id: &str) -> Result<RoomId, ApiFailure> {
    id.parse()
        .map_err(|e| ApiFailure(ErrorCode::BadRequest, format!("{e}")))
}

/// Create a room. With accounts on, only a signed-in user may (session cookie or
/// `mesh-user-token`), and the room is theirs: its host link opens only for them.
#[utoipa::path(post, path = "/api/sessions", request_body = CreateSession,
    security((), ("create_token" = []), ("user_token" = [])),
    responses((status = 201, body = CreatedSession), (status = 400, body = ApiError), (status = 401, body = ApiError),
        (status = 403, body = ApiError), (status = 429, body = ApiError)))]
pub async fn create_session(
    State(app): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    body: Result<Json<CreateSession>, JsonRejection>,
) -> Response {
    if let Some(required) = &app.settings.edge.create_token {
        if !bearer(&headers).is_some_and(|t| constant_time_eq(t.as_bytes(), required.as_bytes())) {
            tracing::info!(client = %client.ip, "room creation refused: no valid creation token");
            return api_error(
                ErrorCode::Unauthorized,
                "creating rooms on this server needs its creation token (create_token): send \
                 Authorization: Bearer TOKEN (mesh-proxy: --create-token or MESH_CREATE_TOKEN)"
                    .into(),
            );
        }
    }
    let owner = match crate::accounts::routes::user_of(&app, &headers).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    if app.accounts.is_some() && owner.is_none() {
        return api_error(
            ErrorCode::Unauthorized,
            "this server has accounts: sign in to create a room (Sign in on the start page, or mesh-proxy login)"
                .into(),
        );
    }
    let req = match body {
        Ok(Json(b)) => b,
        // No body at all (curl -X POST) means "all defaults".
        Err(JsonRejection::MissingJsonContentType(_)) => CreateSession::default(),
        Err(e) => {
            return api_error(
                ErrorCode::BadRequest,
                format!("invalid request body: {}", e.body_text()),
            )
        }
    };
    let name = req.name.unwrap_or_default();
    let name = name.trim();
    if name.chars().count() > MAX_ROOM_NAME_CHARS || name.chars().any(char::is_control) {
        return api_error(
            ErrorCode::BadRequest,
            format!("a room name must be at most {MAX_ROOM_NAME_CHARS} printable characters"),
        );
    }
    let name = if name.is_empty() {
        "untitled".to_string()
    } else {
        name.to_string()
    };
    if let Err(refusal) = admit_creation(&app, &client) {
        return refusal.into_response();
    }
    let id = RoomId::random();
    let now = now_ms();
    if let Err(e) = app
        .store
        .create_room(RoomRecord {
            id,
            name: name.clone(),
            created_at: now,
        })
        .await
    {
        app.room_count.fetch_sub(1, Ordering::SeqCst);
        return internal(e);
    }
    // The room's first links: the host's (its first connection takes the host's seat), and
    // a writer and a reader link, each a record the host can list and revoke.
    let link = |role| LinkRecord {
        id: new_id(),
        role,
        created_at: now,
        expires_at: now + app.auth.ttl().as_millis() as u64,
        max_uses: None,
        uses: 0,
        revoked_at: None,
        created_by: "server".into(),
        for_user: None,
    };
    let (mut host, writer, reader) = (link(Role::Host), link(Role::Writer), link(Role::Reader));
    // A signed-in creator owns the room: the host's link opens for them only.
    if let Some(owner) = &owner {
        host.for_user = Some(crate::accounts::identity::Invitee::User(owner.id.clone()).stored());
    }
    let token = |l: &LinkRecord| app.auth.link_token(id, l);
    let (host_token, writer_token, reader_token) = (token(&host), token(&writer), token(&reader));
    let mut records = vec![
        AccessChange::Link(host),
        AccessChange::Link(writer),
        AccessChange::Link(reader),
    ];
    if req.approval == Some(true) {
        records.push(AccessChange::Approval(true));
    }
    if let Some(owner) = &owner {
        records.push(AccessChange::Owner(owner.id.clone()));
    }
    if let Err(e) = app.store.write_access(id, records).await {
        let _ = app.store.delete_room(id).await;
        app.room_count.fetch_sub(1, Ordering::SeqCst);
        return internal(e);
    }
    let base = app.public_url();
    let ws_base = base.replacen("http", "ws", 1);
    tracing::info!(room = %id, client = %client.ip, "room created");
    metrics::counter!("mesh_rooms_created_total").increment(1);
    let created = CreatedSession {
        id,
        name,
        join_link: format!("{base}/join/{id}?token={writer_token}"),
        read_link: format!("{base}/join/{id}?token={reader_token}"),
        ws_url: format!("{ws_base}/ws/{id}"),
        host_token,
        writer_token,
        reader_token,
    };
    (StatusCode::CREATED, Json(created)).into_response()
}

/// The room creation limits, in order: per address, on the whole server, and the cap on
/// rooms held (a place under it is taken here; the caller gives it back if creation fails).
fn admit_creation(app: &AppState, client: &ClientAddr) -> Result<(), Refusal> {
    let edge = &app.settings.edge;
    let refused = |message: String, retry_after: Option<Duration>, code: ErrorCode| {
        metrics::counter!("mesh_rooms_refused_total").increment(1);
        tracing::debug!(client = %client.ip, "room creation refused: {message}");
        Refusal {
            code,
            message,
            retry_after,
        }
    };
    match app.creations.admit(client.ip) {
        Ok(()) => {}
        Err(CreationRefusal::PerAddress(wait)) => {
            return Err(refused(
                format!(
                    "too many rooms created from your address (create_rate {}/s, create_burst {}); retry in {}",
                    edge.create_rate,
                    edge.create_burst,
                    describe_wait(wait)
                ),
                Some(wait),
                ErrorCode::RateLimited,
            ))
        }
        Err(CreationRefusal::Global(wait)) => {
            return Err(refused(
                format!(
                    "too many rooms created on this server just now (create_rate_global {}/s, \
                     create_burst_global {}); retry in {}",
                    edge.create_rate_global,
                    edge.create_burst_global,
                    describe_wait(wait)
                ),
                Some(wait),
                ErrorCode::RateLimited,
            ))
        }
    }
    let max = edge.max_rooms.unwrap_or(u64::MAX);
    let reserved = app
        .room_count
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < max).then_some(n + 1));
    if reserved.is_err() {
        return Err(refused(
            format!(
                "this server holds its maximum of {max} rooms (max_rooms); delete rooms that are no \
                 longer needed (DELETE /api/sessions/ID with the host token) or ask the operator to raise it"
            ),
            None,
            ErrorCode::Forbidden,
        ));
    }
    Ok(())
}

/// Metadata, participants and files of a room. Any token of the room may ask.
#[utoipa::path(get, path = "/api/sessions/{id}", params(("id" = String, Path, description = "room id")),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 200, body = SessionInfo), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn get_session(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let (id, caller) = match authorize(&app, &id, &headers).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let record = match app.store.get_room(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return api_error(ErrorCode::NotFound, format!("room {id} does not exist")),
        Err(e) => return internal(e),
    };
    // Checking the token loaded the room.
    let Some(info) = app.rooms.info(id).await else {
        return api_error(ErrorCode::Unavailable, "the room is unloading; try again".into());
    };
    let (participants, files) = (info.participants, info.files);
    let files = files
        .into_iter()
        .map(|(path, len_utf16)| FileInfo { path, len_utf16 })
        .collect();
    Json(SessionInfo {
        id,
        name: record.name,
        created_at: record.created_at,
        your_role: caller.role,
        participants,
        files,
    })
    .into_response()
}

/// Delete a room and everything in it. Needs the host token.
#[utoipa::path(delete, path = "/api/sessions/{id}", params(("id" = String, Path, description = "room id")),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn delete_session(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match authorize(&app, &id, &headers).await {
        Ok((_, caller)) if caller.role == Role::Host => {}
        Ok(_) => return api_error(ErrorCode::Forbidden, "only the host may delete a room".into()),
        Err(e) => return e.into_response(),
    }
    let Ok(id) = id.parse::<RoomId>() else {
        return api_error(ErrorCode::BadRequest, "bad room id".into());
    };
    app.rooms.deleted(id).await;
    match app.store.delete_room(id).await {
        Ok(true) => {
            let _ = app
                .room_count
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_sub(1)));
            tracing::info!(room = %id, "room deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => api_error(ErrorCode::NotFound, format!("room {id} does not exist")),
        Err(e) => internal(e),
    }
}

/// List every room. Open to clients on loopback; elsewhere it needs the admin token.
#[utoipa::path(get, path = "/api/sessions", security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 200, body = Vec<SessionSummary>), (status = 401, body = ApiError)))]
pub async fn list_sessions(State(app): State<AppState>, client: ClientAddr, headers: HeaderMap) -> Response {
    let allowed = match &app.settings.admin_token {
        Some(admin) => bearer(&headers).is_some_and(|t| constant_time_eq(t.as_bytes(), admin.as_bytes())),
        // Behind a trusted proxy on the same machine, the proxy is on loopback; the client
        // it forwards for is not.
        None => client.ip.is_loopback(),
    };
    if !allowed {
        return api_error(
            ErrorCode::Unauthorized,
            "listing rooms needs the admin token (Authorization: Bearer ...)".into(),
        );
    }
    let rooms = match app.store.list_rooms().await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let mut out = Vec::with_capacity(rooms.len());
    for r in rooms {
        let participants = match app.rooms.info(r.id).await {
            Some(info) => info.participants.len() as u32,
            None => 0,
        };
        out.push(SessionSummary {
            id: r.id,
            name: r.name,
            created_at: r.created_at,
            participants,
        });
    }
    Json(out).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the token of a room request (its signature, then the record it names, in the
/// room): the room id and who the caller is, with its role now.
async fn authorize(app: &AppState, id: &str, headers: &HeaderMap) -> Result<(RoomId, Caller), ApiFailure> {
    let (id, grant) = grant_of(app, id, headers).await?;
    let caller = app
        .rooms
        .authorize(id, grant)
        .await
        .map_err(|r| ApiFailure(r.code, r.message))?;
    Ok((id, caller))
}

/// The room id and what the request shows (its token's grant and its signed-in user), for a
/// room that exists.
async fn grant_of(app: &AppState, id: &str, headers: &HeaderMap) -> Result<(RoomId, crate::auth::Pass), ApiFailure> {
    let id = parse_room(id)?;
    let user = crate::accounts::routes::user_of(app, headers).await?;
    let uid = user.as_ref().map(|u| u.id.as_str());
    let grant = app.auth.check(bearer(headers).as_deref(), id, uid).map_err(|e| {
        let message = match e {
            crate::auth::TokenError::Missing => {
                "a token is required: send Authorization: Bearer TOKEN (a link's or a seat's token)".into()
            }
            e => e.to_string(),
        };
        ApiFailure(ErrorCode::Unauthorized, message)
    })?;
    match app.store.get_room(id).await {
        Ok(Some(_)) => Ok((id, crate::auth::Pass { grant, user })),
        Ok(None) => Err(ApiFailure(ErrorCode::NotFound, format!("room {id} does not exist"))),
        Err(e) => {
            tracing::error!(error = %e, "store failed");
            Err(ApiFailure(ErrorCode::Internal, "storage failed; try again".into()))
        }
    }
}

/// A host action: the token must be the host's (its link, or its seat's token).
async fn host_call(app: &AppState, id: &str, headers: &HeaderMap, op: HostOp) -> Result<HostReply, ApiFailure> {
    let (id, grant) = grant_of(app, id, headers).await?;
    app.rooms
        .host(id, grant, op)
        .await
        .map_err(|r| ApiFailure(r.code, r.message))
}

/// A JSON body, or a 400 that says what is wrong with it.
fn body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiFailure> {
    body.map(|Json(b)| b).map_err(|e| {
        ApiFailure(
            ErrorCode::BadRequest,
            format!("invalid request body: {}", e.body_text()),
        )
    })
}

fn done(reply: Result<HostReply, ApiFailure>) -> Response {
    match reply {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The room's links, newest first. Host only.
#[utoipa::path(get, path = "/api/sessions/{id}/links", params(("id" = String, Path, description = "room id")),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 200, body = Vec<LinkInfo>), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn list_links(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match host_call(&app, &id, &headers, HostOp::ListLinks).await {
        Ok(HostReply::Links(links)) => Json(links).into_response(),
        Ok(_) => internal("a link listing answered something else"),
        Err(e) => e.into_response(),
    }
}

/// Create a join link (`reader` or `writer`), optionally with a lifetime, a use limit, and
/// (with accounts on) the one user it is for (`for_user`: an email or the provider's
/// subject). Host only.
#[utoipa::path(post, path = "/api/sessions/{id}/links", params(("id" = String, Path, description = "room id")),
    request_body = CreateLink, security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 201, body = LinkInfo), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 413, body = ApiError)))]
pub async fn create_link(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Result<Json<CreateLink>, JsonRejection>,
) -> Response {
    let request = match body(request) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let op = HostOp::CreateLink {
        role: request.role,
        expires_in_secs: request.expires_in_secs,
        max_uses: request.max_uses,
        for_user: request.for_user,
    };
    match host_call(&app, &id, &headers, op).await {
        Ok(HostReply::Links(mut links)) if !links.is_empty() => {
            (StatusCode::CREATED, Json(links.remove(0))).into_response()
        }
        Ok(_) => internal("link creation answered no link"),
        Err(e) => e.into_response(),
    }
}

/// Revoke a link: it opens nothing from now on, and the connections whose seats it created
/// are closed. Host only.
#[utoipa::path(delete, path = "/api/sessions/{id}/links/{lid}", params(("id" = String, Path, description = "room id"), ("lid" = String, Path, description = "link id")),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 204), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn revoke_link(
    State(app): State<AppState>,
    Path((id, lid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    done(host_call(&app, &id, &headers, HostOp::RevokeLink { id: lid }).await)
}

/// Who is connected (one entry per connection, with its seat and role), who waits in the
/// lobby, and whether the room requires approval. Host only.
#[utoipa::path(get, path = "/api/sessions/{id}/participants", params(("id" = String, Path, description = "room id")),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 200, body = RoomParticipants), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub async fn list_participants(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    match host_call(&app, &id, &headers, HostOp::Participants).await {
        Ok(HostReply::Participants(p)) => Json(p).into_response(),
        Ok(_) => internal("a participant listing answered something else"),
        Err(e) => e.into_response(),
    }
}

/// Give a seat a role, live: its connections are checked against it from their next message.
/// `host` hands the host role over (the old host becomes a writer). Host only.
#[utoipa::path(put, path = "/api/sessions/{id}/seats/{seat}/role", params(("id" = String, Path, description = "room id"), ("seat" = String, Path, description = "seat id")),
    request_body = SetRole, security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 204), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn set_role(
    State(app): State<AppState>,
    Path((id, seat)): Path<(String, String)>,
    headers: HeaderMap,
    request: Result<Json<SetRole>, JsonRejection>,
) -> Response {
    let role = match body(request) {
        Ok(r) => r.role,
        Err(e) => return e.into_response(),
    };
    done(host_call(&app, &id, &headers, HostOp::SetRole { seat, role }).await)
}

/// Remove a seat: its connections are told and closed (4403), its seat token stops working.
/// Host only.
#[utoipa::path(post, path = "/api/sessions/{id}/seats/{seat}/kick", params(("id" = String, Path, description = "room id"), ("seat" = String, Path, description = "seat id")),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 204), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn kick(
    State(app): State<AppState>,
    Path((id, seat)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    done(host_call(&app, &id, &headers, HostOp::Kick { seat }).await)
}

/// Let a joiner waiting in the lobby in. Host only.
#[utoipa::path(post, path = "/api/sessions/{id}/seats/{seat}/admit", params(("id" = String, Path, description = "room id"), ("seat" = String, Path, description = "the waiting seat")),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn admit(
    State(app): State<AppState>,
    Path((id, seat)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    done(host_call(&app, &id, &headers, HostOp::Admit { seat }).await)
}

/// Turn a joiner waiting in the lobby away. Host only.
#[utoipa::path(post, path = "/api/sessions/{id}/seats/{seat}/refuse", params(("id" = String, Path, description = "room id"), ("seat" = String, Path, description = "the waiting seat")),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn refuse(
    State(app): State<AppState>,
    Path((id, seat)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    done(host_call(&app, &id, &headers, HostOp::Refuse { seat }).await)
}

/// Require (or stop requiring) the host's approval for joiners. Turning it off lets in
/// whoever waits. Host only.
#[utoipa::path(put, path = "/api/sessions/{id}/approval", params(("id" = String, Path, description = "room id")),
    request_body = SetApproval, security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 204), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub async fn set_approval(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    request: Result<Json<SetApproval>, JsonRejection>,
) -> Response {
    let on = match body(request) {
        Ok(r) => r.on,
        Err(e) => return e.into_response(),
    };
    done(host_call(&app, &id, &headers, HostOp::SetApproval { on }).await)
}

/// `GET .../audit?limit=N`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// At most this many entries (newest first); by default all the room keeps.
    limit: Option<u32>,
}

/// The room's audit trail, newest first: joins, leaves, role changes, kicks, admissions,
/// link and approval changes, runs. Host only.
#[utoipa::path(get, path = "/api/sessions/{id}/audit", params(("id" = String, Path, description = "room id"), AuditQuery),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 200, body = Vec<AuditEntry>), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub async fn audit(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<AuditQuery>,
    headers: HeaderMap,
) -> Response {
    match host_call(&app, &id, &headers, HostOp::Audit { limit: query.limit }).await {
        Ok(HostReply::Audit(entries)) => Json(entries).into_response(),
        Ok(_) => internal("the audit trail answered something else"),
        Err(e) => e.into_response(),
    }
}

/// How many runs the history lists.
const RUN_HISTORY_LEN: usize = 100;

/// Run a file of the room. Writers and the host only. The output streams to everyone in the
/// room; the finished run is in `GET .../runs/{run}`. When the server's caps on runs are
/// reached the run waits: the answer says `queued` with its place, and the room hears
/// `run_queued` as it moves. Over the caps and the queue, 429 names the limit.
#[utoipa::path(post, path = "/api/sessions/{id}/runs", params(("id" = String, Path, description = "room id")),
    request_body = StartRun, security(("room_token" = []), ("room_token" = [], "user_token" = [])),
    responses((status = 202, body = StartedRun), (status = 400, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 429, body = ApiError)))]
pub async fn start_run(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<StartRun>, JsonRejection>,
) -> Response {
    let (id, role) = match authorize(&app, &id, &headers).await {
        Ok((id, caller)) => (id, caller.role),
        Err(e) => return e.into_response(),
    };
    let request = match body {
        Ok(Json(b)) => b,
        Err(e) => {
            return api_error(
                ErrorCode::BadRequest,
                format!("invalid request body: {}", e.body_text()),
            )
        }
    };
    if request
        .stdin
        .as_ref()
        .is_some_and(|s| s.len() > mesh_protocol::rest::MAX_REST_STDIN_BYTES)
    {
        return api_error(
            ErrorCode::TooLarge,
            format!("stdin is over {} bytes", mesh_protocol::rest::MAX_REST_STDIN_BYTES),
        );
    }
    match app.store.get_room(id).await {
        Ok(Some(_)) => {}
        Ok(None) => return api_error(ErrorCode::NotFound, format!("room {id} does not exist")),
        Err(e) => return internal(e),
    }
    let (reply, rx) = tokio::sync::oneshot::channel();
    let handle = app.rooms.get_or_load(id);
    // The per-person cap counts a REST caller by its token (a keyed digest of it).
    let person = crate::run_gate::token_person(bearer(&headers).as_deref().unwrap_or_default());
    if handle
        .send(crate::room::actor::Command::StartRun {
            request,
            role,
            person,
            reply,
        })
        .await
        .is_err()
    {
        return api_error(ErrorCode::Unavailable, "the room is closing; try again".into());
    }
    match rx.await {
        Ok(Ok(started)) => (StatusCode::ACCEPTED, Json(started)).into_response(),
        Ok(Err((code, message))) => api_error(code, message),
        Err(_) => api_error(ErrorCode::Unavailable, "the room is closing; try again".into()),
    }
}

/// The room's finished runs, newest first (at most 100).
#[utoipa::path(get, path = "/api/sessions/{id}/runs", params(("id" = String, Path, description = "room id")),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])), responses((status = 200, body = Vec<RunRecord>), (status = 401, body = ApiError)))]
pub async fn list_runs(State(app): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let (id, _) = match authorize(&app, &id, &headers).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    match app.store.list_runs(id, RUN_HISTORY_LEN).await {
        Ok(runs) => Json(runs).into_response(),
        Err(e) => internal(e),
    }
}

/// One finished run with its output.
#[utoipa::path(get, path = "/api/sessions/{id}/runs/{run}", params(("id" = String, Path, description = "room id"), ("run" = String, Path, description = "run id")),
    security(("room_token" = []), ("room_token" = [], "user_token" = [])), responses((status = 200, body = RunRecord), (status = 404, body = ApiError)))]
pub async fn get_run(
    State(app): State<AppState>,
    Path((id, run)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (id, _) = match authorize(&app, &id, &headers).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    match app.store.list_runs(id, RUN_HISTORY_LEN).await {
        Ok(runs) => match runs.into_iter().find(|r| r.run_id == run) {
            Some(r) => Json(r).into_response(),
            None => api_error(
                ErrorCode::NotFound,
                format!("no finished run {run} in this room (it may still be going)"),
            ),
        },
        Err(e) => internal(e),
    }
}

/// Languages that runs can use, from the language registry.
#[utoipa::path(get, path = "/api/languages", responses((status = 200, body = Vec<LanguageInfo>)))]
pub async fn languages(State(app): State<AppState>) -> Json<Vec<LanguageInfo>> {
    Json(app.runs.languages())
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/livez", responses((status = 200, body = Health)))]
pub async fn livez() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// Readiness: the node is not draining, the store answers, and so does the bus to the other
/// nodes when there is one.
///
/// A load balancer sends new clients only to a node that answers 200 here; a node draining
/// after SIGTERM answers 503 "draining".
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(app): State<AppState>) -> Response {
    let unready = |status: String| (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status })).into_response();
    // Draining first: a node on its way out is not ready whatever its store says.
    if app.drain.is_draining() {
        return unready(format!("draining: {}", crate::drain::DRAINING_MESSAGE));
    }
    if let Err(e) = app.store.get_room(RoomId::random()).await {
        return unready(format!("store unavailable: {e}"));
    }
    if let Some(bus) = &app.bus {
        if let Err(e) = bus.ping().await {
            return unready(e);
        }
    }
    Json(Health { status: "ok".into() }).into_response()
}

/// Prometheus metrics.
pub async fn metrics(State(app): State<AppState>) -> Response {
    metrics::gauge!("mesh_rooms_in_registry").set(app.rooms.loaded_count() as f64);
    metrics::gauge!("mesh_rooms_stored").set(app.room_count.load(Ordering::Relaxed) as f64);
    metrics::gauge!("mesh_connections_open").set(app.conns.open_total() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// The OpenAPI document.
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
