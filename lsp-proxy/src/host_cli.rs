//! `mesh-proxy host …`: host control from a terminal, for the room of the current folder,
//! over REST with the folder's seat token (or its link's). A person is named by their seat
//! id or by their name when it is unique.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::Subcommand;
use mesh_protocol::rest::{CreateLink, RoomParticipants};

use crate::host_api::{parse_role, HostApi};
use crate::lsp_ext::role_name;

/// What `mesh-proxy host` does.
#[derive(Debug, Subcommand)]
pub enum HostCmd {
    /// List who is in the room (seat, name, role) and who waits for approval.
    Participants {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give someone another role: reader, writer, or host (which makes you a writer).
    Role {
        /// Their seat id or their name.
        who: String,
        /// reader, writer or host.
        role: String,
    },
    /// Remove someone from the room: their connections close and their seat token stops
    /// working. Without accounts they could take a new seat with the same link: pass
    /// --revoke-link to revoke the link they came in by too (which also disconnects
    /// everyone else who came in with it).
    Kick {
        /// Their seat id or their name.
        who: String,
        /// Also revoke the link they came in by.
        #[arg(long)]
        revoke_link: bool,
    },
    /// Let someone waiting in the lobby in.
    Admit {
        /// Their seat id or their name.
        who: String,
    },
    /// Turn someone waiting in the lobby away.
    Refuse {
        /// Their seat id or their name.
        who: String,
    },
    /// Make joiners wait for your approval (on) or not (off).
    Approval {
        /// on or off.
        state: OnOff,
    },
    /// List the room's links.
    Links {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create or revoke a link.
    #[command(subcommand)]
    Link(LinkCmd),
    /// Show the room's audit trail, newest first.
    Audit {
        /// At most this many entries.
        #[arg(long)]
        limit: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OnOff {
    /// Joiners wait for the host.
    On,
    /// Joiners come straight in.
    Off,
}

/// `mesh-proxy host link …`.
#[derive(Debug, Subcommand)]
pub enum LinkCmd {
    /// Create a join link and print it.
    Create {
        /// reader or writer.
        #[arg(long, default_value = "writer")]
        role: String,
        /// How long it works, in seconds (default: the server's token lifetime).
        #[arg(long, value_name = "SECS")]
        expires_in: Option<u64>,
        /// How many people it may let in (default: unlimited).
        #[arg(long, value_name = "N")]
        max_uses: Option<u32>,
        /// An invitation for one signed-in user only, by email or by the provider's
        /// subject (servers with accounts).
        #[arg(long = "for", value_name = "EMAIL_OR_SUBJECT")]
        for_user: Option<String>,
    },
    /// Revoke a link: it lets nobody in any more, and the connections of the seats it
    /// created close.
    Revoke {
        /// The link's id (see `host links`).
        id: String,
    },
}

/// How a link's `for_user` reads: ` for ada@example.test` (nothing for an open link).
fn invitee_text(for_user: Option<&str>) -> String {
    match for_user.and_then(|f| f.split_once(':')) {
        Some(("user", _)) => " for the room's owner".into(),
        Some((_, who)) => format!(" for {who} only"),
        None => String::new(),
    }
}

/// The seat `who` names among `room`'s participants (`waiting`: among those in the lobby):
/// a seat id, else a unique name.
fn seat_of(room: &RoomParticipants, who: &str, waiting: bool) -> anyhow::Result<String> {
    let people: Vec<(String, String)> = if waiting {
        room.waiting.iter().map(|w| (w.seat.clone(), w.name.clone())).collect()
    } else {
        room.participants
            .iter()
            .filter(|p| !p.companion)
            .map(|p| (p.seat.clone(), p.name.clone()))
            .collect()
    };
    if let Some((seat, _)) = people.iter().find(|(seat, _)| seat == who) {
        return Ok(seat.clone());
    }
    let mut named: Vec<&String> = people
        .iter()
        .filter(|(_, name)| name.eq_ignore_ascii_case(who))
        .map(|(seat, _)| seat)
        .collect();
    named.dedup();
    match named.as_slice() {
        [seat] => Ok((*seat).clone()),
        [] if waiting => {
            bail!("nobody called {who:?} waits in the lobby; `mesh-proxy host participants` lists who does")
        }
        [] => bail!("nobody called {who:?} is in the room; `mesh-proxy host participants` lists seats and names"),
        _ => bail!("several people are called {who:?}: name them by seat id (`mesh-proxy host participants`)"),
    }
}

/// How long ago or ahead `ms` (milliseconds since the epoch) is, for people.
fn when(ms: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let (secs, ahead) = if ms >= now {
        ((ms - now) / 1000, true)
    } else {
        ((now - ms) / 1000, false)
    };
    let span = match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    };
    if ahead {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// Carries out `cmd` against the room of `api`.
pub async fn run(api: &HostApi, cmd: HostCmd) -> anyhow::Result<()> {
    match cmd {
        HostCmd::Participants { json } => {
            let room = api.participants().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&room)?);
                return Ok(());
            }
            println!(
                "Approval: {}",
                if room.approval {
                    "on (joiners wait for the host)"
                } else {
                    "off"
                }
            );
            for p in room.participants.iter().filter(|p| !p.companion) {
                let verified = if p.verified { "" } else { ", unverified" };
                println!(
                    "  {}  {} ({}{verified}, {})",
                    p.seat,
                    p.name,
                    role_name(p.role),
                    p.client
                );
            }
            if !room.waiting.is_empty() {
                println!("Waiting for approval (mesh-proxy host admit|refuse WHO):");
                for w in &room.waiting {
                    let verified = if w.verified { "" } else { ", unverified" };
                    println!(
                        "  {}  {} ({}{verified}, waiting {})",
                        w.seat,
                        w.name,
                        w.client,
                        when(w.since)
                    );
                }
            }
        }
        HostCmd::Role { who, role } => {
            let role = parse_role(&role).map_err(anyhow::Error::msg)?;
            let seat = seat_of(&api.participants().await?, &who, false)?;
            api.set_role(&seat, role).await?;
            println!("{who} is now {}", role_name(role));
        }
        HostCmd::Kick { who, revoke_link } => {
            let room = api.participants().await?;
            let seat = seat_of(&room, &who, false)?;
            // Read before the kick: the participant is gone after it.
            let link = room
                .participants
                .iter()
                .find(|p| p.seat == seat)
                .and_then(|p| p.link.clone());
            api.kick(&seat).await?;
            println!("removed {who} from the room");
            if revoke_link {
                let id = link.context("removed them, but the server did not say which link they came in by")?;
                api.revoke_link(&id)
                    .await
                    .context("removed them, but revoking the link failed")?;
                println!("revoked link {id}, which they came in by: it lets nobody in, and the people who came through it are disconnected");
            }
        }
        HostCmd::Admit { who } => {
            let seat = seat_of(&api.participants().await?, &who, true)?;
            api.admit(&seat).await?;
            println!("let {who} in");
        }
        HostCmd::Refuse { who } => {
            let seat = seat_of(&api.participants().await?, &who, true)?;
            api.refuse(&seat).await?;
            println!("turned {who} away");
        }
        HostCmd::Approval { state } => {
            let on = matches!(state, OnOff::On);
            api.set_approval(on).await?;
            println!(
                "{}",
                if on {
                    "approval on: joiners wait for you (mesh-proxy host admit|refuse WHO)"
                } else {
                    "approval off: joiners come straight in"
                }
            );
        }
        HostCmd::Links { json } => {
            let links = api.links().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&links)?);
                return Ok(());
            }
            for l in links {
                let state = if l.revoked {
                    "revoked".to_string()
                } else {
                    format!("expires {}", when(l.expires_at))
                };
                let uses = match l.max_uses {
                    Some(max) => format!("{}/{max} uses", l.uses),
                    None => format!("{} uses", l.uses),
                };
                let only = invitee_text(l.for_user.as_deref());
                println!("{}  {}{only}  {state}, {uses}\n    {}", l.id, role_name(l.role), l.url);
            }
        }
        HostCmd::Link(LinkCmd::Create {
            role,
            expires_in,
            max_uses,
            for_user,
        }) => {
            let role = parse_role(&role).map_err(anyhow::Error::msg)?;
            let link = api
                .create_link(CreateLink {
                    role,
                    expires_in_secs: expires_in,
                    max_uses,
                    for_user,
                })
                .await?;
            let only = invitee_text(link.for_user.as_deref());
            println!(
                "{} link {}{only} (expires {}):",
                role_name(link.role),
                link.id,
                when(link.expires_at)
            );
            println!("{}", link.url);
        }
        HostCmd::Link(LinkCmd::Revoke { id }) => {
            api.revoke_link(&id).await?;
            println!("revoked link {id}: it lets nobody in, and the people who came through it are disconnected");
        }
        HostCmd::Audit { limit, json } => {
            let entries = api.audit(limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
                return Ok(());
            }
            for e in entries {
                let kind = serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                println!("{:>9}  {kind:<16} {}  {}  {}", when(e.ts), e.actor, e.subject, e.detail);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_protocol::messages::{Participant, Role};
    use mesh_protocol::rest::WaitingJoiner;

    fn room() -> RoomParticipants {
        let p = |seat: &str, name: &str| Participant {
            conn_id: 1,
            seat: seat.into(),
            verified: false,
            link: None,
            name: name.into(),
            color: "#000000".into(),
            role: Role::Writer,
            client: "neovim".into(),
            doc_client_id: None,
            companion: false,
        };
        RoomParticipants {
            participants: vec![p("s1", "Ada"), p("s2", "Bob"), p("s3", "bob")],
            waiting: vec![WaitingJoiner {
                seat: "s9".into(),
                name: "Cy".into(),
                client: "vscode".into(),
                verified: false,
                since: 0,
            }],
            approval: true,
        }
    }

    #[test]
    fn people_are_named_by_seat_or_unique_name_and_mistakes_say_what_to_do() {
        let room = room();
        assert_eq!(seat_of(&room, "s2", false).unwrap(), "s2");
        assert_eq!(seat_of(&room, "ada", false).unwrap(), "s1");
        let two = seat_of(&room, "Bob", false).unwrap_err().to_string();
        assert!(two.contains("several") && two.contains("seat id"), "{two}");
        let none = seat_of(&room, "Zed", false).unwrap_err().to_string();
        assert!(none.contains("host participants"), "{none}");
        assert_eq!(seat_of(&room, "Cy", true).unwrap(), "s9");
        assert!(seat_of(&room, "Ada", true).unwrap_err().to_string().contains("lobby"));
    }
}
