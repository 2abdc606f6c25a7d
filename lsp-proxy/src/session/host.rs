//! Host requests from the editor (roles, kicks, approval, links, the audit trail): carried
//! out over the server's REST API off the session's task, answered on the reply channel.

use super::*;

impl Session {
    /// A host request: over REST, with the folder's seat token (or the link's), in its own
    /// task; the answer goes to `reply`.
    pub(super) fn host_request(&mut self, call: HostCall, reply: HostReply) {
        let Some(room) = self.room.as_ref() else {
            let _ = reply.send(Err("not in a room: share the folder or join a room first".into()));
            return;
        };
        let seat = self
            .root
            .as_deref()
            .and_then(|root| crate::mesh_dir::read_seat(root, &room.target.room.to_string()));
        let target = RoomTarget {
            token: seat.map_or_else(|| room.target.token.clone(), |s| s.token),
            ..room.target.clone()
        };
        let me = room.conn_id;
        let api = crate::host_api::HostApi::new(self.identity.tls.clone(), target);
        tokio::spawn(async move {
            let _ = reply.send(host_call(&api, call, me).await);
        });
    }
}

/// Carries out a host request; the answer as the LSP method documents it.
async fn host_call(
    api: &crate::host_api::HostApi,
    call: HostCall,
    me: Option<u64>,
) -> Result<serde_json::Value, String> {
    use crate::host_api::parse_role;
    let done = || serde_json::json!({});
    let value = match call {
        HostCall::Participants => {
            let room = api.participants().await.map_err(|e| e.to_string())?;
            serde_json::to_value(HostParticipants {
                participants: room
                    .participants
                    .iter()
                    .filter(|p| !p.companion)
                    .map(|p| Participant::of(p, me))
                    .collect(),
                waiting: room
                    .waiting
                    .into_iter()
                    .map(|w| JoinRequestParams {
                        seat: w.seat,
                        name: w.name,
                        client: w.client,
                        verified: w.verified,
                    })
                    .collect(),
                approval: room.approval,
            })
        }
        HostCall::SetRole(p) => {
            let role = parse_role(&p.role)?;
            api.set_role(&p.seat, role).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::Kick(p) => {
            api.kick(&p.seat).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::Admit(p) => {
            api.admit(&p.seat).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::Refuse(p) => {
            api.refuse(&p.seat).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::SetApproval(p) => {
            api.set_approval(p.on).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::Links => {
            let links = api.links().await.map_err(|e| e.to_string())?;
            serde_json::to_value(Links {
                links: links.into_iter().map(Link::from).collect(),
            })
        }
        HostCall::CreateLink(p) => {
            let role = parse_role(&p.role)?;
            let link = api
                .create_link(mesh_protocol::rest::CreateLink {
                    role,
                    expires_in_secs: p.expires_in_secs,
                    max_uses: p.max_uses,
                    for_user: None,
                })
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(Link::from(link))
        }
        HostCall::RevokeLink(p) => {
            api.revoke_link(&p.id).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::Audit(p) => {
            let entries = api.audit(p.limit).await.map_err(|e| e.to_string())?;
            serde_json::to_value(Audit { entries })
        }
    };
    value.map_err(|e| e.to_string())
}
