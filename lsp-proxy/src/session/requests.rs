//! What the editor and the command line ask of a session (`mesh/share`, `mesh/join`,
//! `mesh/resolve`, agent edits, ...): one handler per request, answering on its reply channel.

use super::*;

impl Session {
    pub(super) fn on_request(&mut self, req: Request) {
        match req {
            Request::Host(call, reply) => self.host_request(call, reply),
            Request::Share(params, reply) => {
                if let Some(room) = self.room.as_mut() {
                    // Shared from here before (the folder's record, a restart): the same
                    // room, its links, after the same merge as a first share.
                    let Some(link) = self.share_link.clone() else {
                        let _ = reply.send(Err(format!(
                            "this folder is in room {} already, joined with a link: leave it first to share it as a new room",
                            room.target.room
                        )));
                        return;
                    };
                    let result = ShareResult {
                        room: room.target.room.to_string(),
                        link,
                        read_link: room.read_link.clone().unwrap_or_default(),
                    };
                    if room.synced {
                        let _ = reply.send(Ok(result));
                    } else {
                        room.share_again.push((result, reply));
                    }
                    return;
                }
                if self.root.is_none() {
                    let _ = reply.send(Err("open a folder first: mesh shares the workspace folder".into()));
                    return;
                }
                // The folder is read and checked before the room exists: a share over a
                // limit creates nothing.
                let scanned = match disk::scan(self.root.as_deref().expect("checked above"), &self.identity.limits) {
                    Ok((files, skipped)) => Box::new(Scanned(files, skipped)),
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                        return;
                    }
                };
                let server = params.server.clone().unwrap_or_else(|| self.identity.server.clone());
                let name = params.name.clone().or_else(|| {
                    self.root
                        .as_ref()
                        .and_then(|r| r.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                });
                let tx = self.events_tx.clone();
                let create_token = self.identity.create_token.clone();
                let tls = self.identity.tls.clone();
                tokio::spawn(async move {
                    let result = create_room(&tls, &server, name, create_token.as_deref()).await;
                    let _ = tx.send(Event::Created(
                        result,
                        ShareParams {
                            server: Some(server),
                            ..params
                        },
                        reply,
                        scanned,
                    ));
                });
            }
            Request::Join(link, reply) => {
                let target = match RoomTarget::parse(&link) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                        return;
                    }
                };
                if let Some(room) = self.room.as_mut() {
                    if room.target.room != target.room {
                        let _ = reply.send(Err("already in a room: leave it first".into()));
                    } else if !room.synced {
                        // Rejoining this room already (the folder's record): the rejoin runs
                        // the same merge as a first join; answer when it is done.
                        room.on_synced.push(reply);
                    } else {
                        let _ = reply.send(Ok(JoinResult {
                            room: room.target.room.to_string(),
                            files: room_files(&room.doc).len(),
                            conflicts: self.disk.conflict_paths(),
                        }));
                    }
                    return;
                }
                if self.root.is_none() {
                    let _ = reply.send(Err("open a folder first: mesh joins into the workspace folder".into()));
                    return;
                }
                self.open_room(target, None);
                if let Some(room) = self.room.as_mut() {
                    room.on_synced.push(reply);
                }
            }
            Request::Leave(reply) => {
                self.leave();
                let _ = reply.send(Ok(()));
            }
            Request::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Request::Chat(text, reply) => {
                let result = match &self.room {
                    Some(room) if room.state == ConnState::Connected => {
                        room.send(&ClientMessage::Chat { text });
                        Ok(())
                    }
                    Some(_) => Err("not connected to the room right now; try again when the connection is back".into()),
                    None => Err("not in a room".into()),
                };
                let _ = reply.send(result);
            }
            Request::GhostAsk(params, reply) => {
                let path = match &params.uri {
                    Some(uri) => match self.room_path(uri) {
                        Some(p) => Some(p),
                        None => {
                            let _ = reply.send(Err(format!(
                                "{uri} is not a file of the room: ask about a file of the shared folder"
                            )));
                            return;
                        }
                    },
                    None => None,
                };
                let result = crate::ask_cli::editor_ask(params, path).and_then(|msg| match &self.room {
                    Some(room) if room.state == ConnState::Connected => {
                        room.send(&msg);
                        Ok(())
                    }
                    Some(_) => Err("not connected to the room right now; try again when the connection is back".into()),
                    None => Err("not in a room".into()),
                });
                let _ = reply.send(result);
            }
            Request::Ghost(params, reply) => {
                let result = match &self.room {
                    Some(room) if room.state == ConnState::Connected => {
                        super::ghost::decision(&self.ghosts, room.role, params).map(|command| {
                            room.send(&ClientMessage::Ghost { command });
                        })
                    }
                    Some(_) => Err("not connected to the room right now; try again when the connection is back".into()),
                    None => Err("not in a room".into()),
                };
                let _ = reply.send(result);
            }
            Request::ChatHistory(reply) => {
                let messages = self.room.as_ref().map(Room::chat_history).unwrap_or_default();
                let _ = reply.send(ChatHistory { messages });
            }
            Request::Resolve(params, reply) => {
                let result = self.resolve_request(params);
                let _ = reply.send(result);
            }
            Request::Follow(who, reply) => {
                let participants = self.room.as_ref().map(|r| r.participants.clone()).unwrap_or_default();
                let _ = reply.send(self.presence.follow(who, &participants));
                self.update_follow();
                self.publish_awareness();
            }
            Request::Run(params, reply) => {
                let path = match (&params.uri, &params.path) {
                    (Some(uri), _) => self.room_path(uri).ok_or_else(|| match &self.root {
                        Some(root) => format!(
                            "{uri} is not in the shared folder {}; only the room's files can run",
                            root.display()
                        ),
                        None => "open the shared folder first: runs take files of the room".to_string(),
                    }),
                    (None, Some(path)) => Ok(path.clone()),
                    (None, None) => Err("say which file to run: mesh/run takes a `uri` or a `path`".into()),
                };
                let view = View(self.room.as_ref());
                let standing = Room::standing(self.room.as_ref());
                let exists = |p: &str| view.text(p).is_some();
                match self
                    .runs
                    .request(standing, path, params.language, exists, Instant::now())
                {
                    Ok(msg) => {
                        self.run_reply = Some(reply);
                        self.apply(vec![Effect::Send(msg)]);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Request::RunInput(params, reply) => {
                let result = self
                    .runs
                    .input(Room::standing(self.room.as_ref()), params)
                    .map(|msgs| self.apply(msgs.into_iter().map(Effect::Send).collect()));
                let _ = reply.send(result);
            }
            Request::RoomFiles(reply) => {
                let files = Room::standing(self.room.as_ref())
                    .map(|_| room_files(&self.room.as_ref().expect("standing says in a room").doc));
                let _ = reply.send(files);
            }
            Request::Agent(edit, reply) => {
                let result = self.agent_edit(edit);
                let _ = reply.send(result);
            }
            Request::RunStop(run_id, reply) => {
                let result = self
                    .runs
                    .stop(Room::standing(self.room.as_ref()), &run_id)
                    .map(|msg| self.apply(vec![Effect::Send(msg)]));
                let _ = reply.send(result);
            }
        }
    }

    pub(super) fn on_created(
        &mut self,
        result: Result<CreatedSession, String>,
        params: ShareParams,
        reply: oneshot::Sender<Result<ShareResult, String>>,
        Scanned(files, skipped): Scanned,
    ) {
        let created = match result {
            Ok(c) => c,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let server = params.server.unwrap_or_else(|| self.identity.server.clone());
        // The sharer connects as host; the link it hands out carries a writer token.
        let target = RoomTarget {
            server: server.clone(),
            room: created.id,
            token: created.host_token.clone(),
        };
        let root = self.root.clone().expect("checked before creating");
        if !skipped.binary.is_empty() || !skipped.too_large.is_empty() {
            self.apply(vec![tell(
                "info",
                format!(
                    "shared without {} binary and {} too large files",
                    skipped.binary.len(),
                    skipped.too_large.len(),
                ),
            )]);
        }
        let host_link = target.link();
        self.open_room(target, Some(created.read_link.clone()));
        let _ = crate::config::save_session(crate::config::SessionRecord {
            dir: root,
            link: host_link,
            read_link: Some(created.read_link.clone()),
            share_link: Some(created.join_link.clone()),
            name: created.name.clone(),
        });
        self.share_link = Some(created.join_link.clone());
        let result = ShareResult {
            room: created.id.to_string(),
            link: created.join_link,
            read_link: created.read_link,
        };
        let files = files.into_iter().map(|f| (f.path, f.text)).collect();
        if let Some(room) = self.room.as_mut() {
            // The upload waits for the connection, so it goes out as a stream of modest
            // updates rather than one huge sync message.
            room.pending_share = Some((files, result, reply));
        }
    }

    /// The first sync of a room is done: a share uploads its folder; then every open buffer
    /// and every file of the folder is merged with the room by the same rule, whether this
    /// is a first join, a rejoin (the editor reopening the folder, `join` again, a restart)
    /// or a share. Only then, with disk sync watching, does a join hear that it is done, so
    /// a file written right after "Joined" is seen.
    pub(super) fn on_first_sync(&mut self) {
        if let Some((files, result, reply)) = self.room.as_mut().and_then(|r| r.pending_share.take()) {
            // Open buffers hold the editor's truth, which may be ahead of the disk.
            let open = self.docs.shared_texts();
            let seen: HashSet<String> = files.iter().map(|(p, _)| p.clone()).collect();
            let mut merged: Vec<(String, String)> = files
                .into_iter()
                .map(|(path, text)| {
                    let text = open.get(&path).cloned().unwrap_or(text);
                    (path, text)
                })
                .collect();
            let mut extra: Vec<(String, String)> = open.into_iter().filter(|(p, _)| !seen.contains(p)).collect();
            extra.sort();
            merged.extend(extra);
            if let Some(room) = self.room.as_mut() {
                upload(&room.doc, merged);
                // The share is done when the server has the files: it answers a sync step 1
                // only after everything sent before it is stored.
                room.send_sync_step1();
                room.share_ack = Some((result, reply));
            }
            self.feed_room_changes();
        }
        // A join writes nothing when the room is over the folder limits.
        if let Some(room) = self.room.as_mut().filter(|r| !r.on_synced.is_empty()) {
            let files = room_files(&room.doc);
            let bytes = files.iter().map(|(_, text)| text.len() as u64).sum();
            if let Err(e) = self.identity.limits.check(Transfer::Join, files.len(), bytes) {
                for reply in room.on_synced.drain(..) {
                    let _ = reply.send(Err(e.to_string()));
                }
                self.leave();
                return;
            }
        }
        // Buffers first: where a file is open, the buffer is the local side of the merge.
        // After a demotion the buffers follow the room instead: a reader has nothing to merge.
        let uris: Vec<String> = self.docs.iter().map(|(u, _)| u.clone()).collect();
        let follow = self.room.as_mut().is_some_and(|r| std::mem::take(&mut r.follow_room));
        for uri in uris {
            if follow {
                let fx = self.docs.follow_room(&uri, &View(self.room.as_ref()));
                self.apply(fx);
            } else {
                self.attach_doc(&uri);
            }
        }
        self.start_disk_sync();
        let Some(room) = self.room.as_mut() else { return };
        for (result, reply) in room.share_again.drain(..) {
            let _ = reply.send(Ok(result));
        }
        let replies: Vec<_> = room.on_synced.drain(..).collect();
        if replies.is_empty() {
            return;
        }
        let files = room_files(&room.doc).len();
        let result = JoinResult {
            room: room.target.room.to_string(),
            files,
            conflicts: self.disk.conflict_paths(),
        };
        if let Some(root) = self.root.clone() {
            let _ = crate::config::save_session(crate::config::SessionRecord {
                dir: root,
                link: room.target.link(),
                read_link: room.read_link.clone(),
                share_link: self.share_link.clone(),
                name: String::new(),
            });
        }
        for reply in replies {
            let _ = reply.send(Ok(result.clone()));
        }
    }

    /// Connects to a room; its events come back as [`Event::Room`].
    pub(super) fn open_room(&mut self, target: RoomTarget, read_link: Option<String>) {
        let events = self.events_tx.clone();
        let (room_tx, mut room_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(ev) = room_rx.recv().await {
                if events.send(Event::Room(ev)).is_err() {
                    break;
                }
            }
        });
        // The folder's seat in this room, when it has one, holds the role: connect with it.
        let seat = self
            .root
            .as_deref()
            .and_then(|root| crate::mesh_dir::read_seat(root, &target.room.to_string()));
        let shown = RoomTarget {
            token: seat.as_ref().map_or_else(|| target.token.clone(), |s| s.token.clone()),
            ..target.clone()
        };
        let conn = room::connect(shown, self.identity.tls.clone(), room_tx);
        self.runs = Runs::default();
        self.text_changes.lock().expect("not poisoned").clear();
        self.room = Some(Room::new(
            target,
            read_link,
            conn,
            self.remote_dirty.clone(),
            self.text_changes.clone(),
        ));
        if let (Some(room), Some(seat)) = (self.room.as_mut(), seat) {
            room.seats.seat = Some(seat.id);
        }
    }

    /// `mesh/resolve`: what `mesh-proxy resolve PATH` does, from the editor.
    pub(super) fn resolve_request(&mut self, params: ResolveParams) -> Result<(), String> {
        let (Some(root), Some(room)) = (self.root.clone(), self.room.as_ref()) else {
            return Err("not in a room".into());
        };
        let path = match (&params.uri, &params.path) {
            (Some(uri), _) => self
                .room_path(uri)
                .ok_or_else(|| format!("{uri} is not in the shared folder {}", root.display()))?,
            (None, Some(path)) => path.clone(),
            (None, None) => return Err("say which file: mesh/resolve takes a `uri` or a `path`".into()),
        };
        if !self.disk.is_conflict(&path) {
            return Err(format!("{path} is not in conflict"));
        }
        let room_id = room.target.room.to_string();
        crate::mesh_dir::resolve(&root, &room_id, &path).map_err(|e| e.to_string())?;
        self.resolve_conflict(&path);
        Ok(())
    }

    /// Carries out an agent's edit: checked against our role and the room's text now, applied
    /// as one operation, written to disk like a remote change, and the cursor moved there.
    pub(super) fn agent_edit(&mut self, edit: AgentEdit) -> Result<AgentEdited, String> {
        let standing = Room::standing(self.room.as_ref())?;
        if !standing.writable {
            return Err(
                "this room link is read-only: edits need a writer link (ask the host for one, \
                        or for the writer role)"
                    .into(),
            );
        }
        let (path, change, cursor, line) = match edit {
            AgentEdit::Replace {
                path,
                old_text,
                new_text,
            } => {
                let text = self
                    .view()
                    .text(&path)
                    .ok_or_else(|| format!("{path} is not in the room: list_files shows the room's files"))?;
                let (op, cursor, line) =
                    agent::replace_op(&text, &old_text, &new_text).map_err(|e| format!("{path}: {e}"))?;
                let change = RoomChange::Edit {
                    path: path.clone(),
                    ops: vec![op],
                };
                (path, change, cursor, line)
            }
            AgentEdit::Create { path, text } => {
                if self.view().text(&path).is_some() {
                    return Err(format!("{path} is in the room already: edit it instead"));
                }
                let root = self.root.clone().ok_or("not in a folder")?;
                crate::workspace::safe_join(&root, &path).map_err(|e| format!("{path} cannot be a room file: {e}"))?;
                if path.split('/').next() == Some(".mesh") {
                    return Err(".mesh/ is the proxy's own folder, not the room's: choose another path".into());
                }
                let cursor = text.encode_utf16().count() as u64;
                let line = u32::try_from(text.matches('\n').count() + 1).unwrap_or(u32::MAX);
                (path.clone(), RoomChange::Create { path, text }, cursor, line)
            }
        };
        self.change_room(change);
        // The folder's copy follows as it does for someone else's change.
        self.remote_dirty.lock().expect("not poisoned").insert(path.clone());
        self.presence.agent_cursor = Some(agent::cursor_at(&path, cursor));
        self.publish_awareness();
        Ok(AgentEdited { path, line, cursor })
    }
}
