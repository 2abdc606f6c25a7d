//! `rest`: what the REST API reads from the network, as the server reads it: the request
//! bodies (`serde_json` into `mesh_protocol::rest` types, as axum's `Json` does), the room id
//! in the path and the bearer token (`mesh_server::auth::Auth::check`), the `for_user` of an
//! invitation; and the answers that mesh-proxy's CLI reads back from a server.
//!
//! Invariant checked beyond "no crash": every request body that parses serialises back to
//! JSON that parses to the same value.

use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Duration;

use mesh_protocol::rest::*;
use mesh_protocol::RoomId;
use mesh_server::auth::Auth;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Features, Shape, Target, JSON_TOKENS};

/// The target.
pub const TARGET: Target = Target {
    name: "rest",
    about: "REST request bodies, room ids and bearer tokens as the server parses them, and the answers the CLI parses",
    run,
    shape: Shape::Raw,
    dictionary: JSON_TOKENS,
    max_len: 8 * 1024,
};

/// The secret the fuzz server signs its seed tokens with (see `mesh-fuzz corpus`).
pub const FUZZ_SECRET: &[u8] = b"mesh-fuzz: not a secret, only for seed tokens";

/// The room the seed tokens are for.
pub const FUZZ_ROOM: &str = "000102030405060708090a0b0c0d0e0f";

fn run(input: &[u8], fx: &mut Features) {
    request::<CreateSession>("create-session", input, fx);
    request::<StartRun>("start-run", input, fx);
    request::<CreateLink>("create-link", input, fx);
    request::<DevicePoll>("device-poll", input, fx);
    answer::<Me>("me", input, fx);
    answer::<DeviceStart>("device-start", input, fx);
    answer::<DeviceState>("device-state", input, fx);
    answer::<CreatedSession>("created-session", input, fx);
    answer::<SessionInfo>("session-info", input, fx);
    answer::<Vec<SessionSummary>>("sessions", input, fx);
    answer::<Vec<LanguageInfo>>("languages", input, fx);
    answer::<StartedRun>("started-run", input, fx);
    answer::<Vec<RunRecord>>("runs", input, fx);
    answer::<RunRecord>("run", input, fx);
    answer::<ApiError>("api-error", input, fx);
    answer::<Health>("health", input, fx);

    let text = String::from_utf8_lossy(input);
    let room = RoomId::from_str(FUZZ_ROOM).expect("the fuzz room id parses");
    match RoomId::from_str(&text) {
        Ok(id) => {
            fx.hit("room-id");
            assert_eq!(
                RoomId::from_str(&id.to_string()),
                Ok(id),
                "a room id does not round-trip"
            );
        }
        Err(_) => fx.hit("room-id:bad"),
    }
    static AUTH: OnceLock<Auth> = OnceLock::new();
    let auth = AUTH.get_or_init(|| Auth::new(FUZZ_SECRET, Duration::from_secs(3600)));
    match auth.check(Some(&text), room, None) {
        Ok(role) => fx.hit(&format!("token:{role:?}")),
        Err(e) => fx.hit(&format!("token:{e:?}")),
    }
    // A token bound to a user, shown by another (decision 012).
    if let Err(e) = auth.check(Some(&text), room, Some("u-other")) {
        fx.hit(&format!("token-other-user:{e:?}"));
    }
    // What a host types as an invitation's user, and the stored form read back.
    use mesh_server::accounts::identity::Invitee;
    match Invitee::parse_request(&text) {
        Ok(i) => {
            fx.hit("invitee");
            assert_eq!(
                Invitee::from_stored(&i.stored()),
                Some(i),
                "an invitee does not round-trip"
            );
        }
        Err(_) => fx.hit("invitee:bad"),
    }
    if Invitee::from_stored(&text).is_some() {
        fx.hit("invitee-stored");
    }
}

fn request<T>(name: &str, input: &[u8], fx: &mut Features)
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    match serde_json::from_slice::<T>(input) {
        Ok(value) => {
            fx.hit(name);
            let json = serde_json::to_vec(&value).expect("a parsed body serialises");
            let again: T = serde_json::from_slice(&json).expect("a serialised body parses");
            assert_eq!(again, value, "a {name} body does not round-trip");
        }
        Err(e) => fx.hit(&format!("{name}:{:?}", e.classify())),
    }
}

fn answer<T: DeserializeOwned>(name: &str, input: &[u8], fx: &mut Features) {
    match serde_json::from_slice::<T>(input) {
        Ok(_) => fx.hit(name),
        Err(e) => fx.hit(&format!("{name}:{:?}", e.classify())),
    }
}
