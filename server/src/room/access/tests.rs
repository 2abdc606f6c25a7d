//! Rule-named tests of who may be in a room: links, seats, approval, and (decision 012)
//! seats bound to signed-in users and invitations.

use super::*;

const NOW: u64 = 1_000_000;
const DAY: u64 = 24 * 3600 * 1000;

fn room() -> (Access, String, String) {
    let mut access = Access::from_state(AccessState::default(), DEFAULT_MAX_LINKS);
    let host = access
        .create_link_record(Role::Host, NOW + DAY, None, NOW, "server".into())
        .unwrap();
    let writer = access
        .create_link_record(Role::Writer, NOW + DAY, None, NOW, "server".into())
        .unwrap();
    (access, host.id, writer.id)
}

fn host_of(access: &mut Access, host_link: &str) -> Caller {
    let Entry::Seat(seat) = access
        .enter(&Grant::Link(host_link.into()), None, NOW, |_| false)
        .unwrap()
    else {
        panic!("the host's link never waits");
    };
    access.rest_caller(&Grant::Seat(seat), None, NOW).unwrap()
}

#[test]
fn the_host_link_opens_one_seat_and_other_links_one_seat_per_use() {
    let (mut access, host, writer) = room();
    let a = access.enter(&Grant::Link(host.clone()), None, NOW, |_| false).unwrap();
    let b = access.enter(&Grant::Link(host), None, NOW, |_| false).unwrap();
    assert_eq!(a, b, "one person, however many devices");
    let c = access
        .enter(&Grant::Link(writer.clone()), None, NOW, |_| false)
        .unwrap();
    let d = access
        .enter(&Grant::Link(writer.clone()), None, NOW, |_| false)
        .unwrap();
    assert_ne!(c, d);
    assert_eq!(access.links[&writer].uses, 2);
}

#[test]
fn revoked_expired_and_used_up_links_are_refused_naming_which() {
    let (mut access, host, _) = room();
    let caller = host_of(&mut access, &host);
    let once = access
        .create_link(
            &caller,
            NewLink {
                role: Role::Reader,
                expires_in_secs: Some(60),
                max_uses: Some(1),
                for_user: None,
            },
            NOW,
            DAY,
        )
        .unwrap();
    access
        .enter(&Grant::Link(once.id.clone()), None, NOW, |_| false)
        .unwrap();
    let used = access
        .enter(&Grant::Link(once.id.clone()), None, NOW, |_| false)
        .unwrap_err();
    assert!(used.message.contains("max_uses"), "{used:?}");
    let expired = access
        .check(&Grant::Link(once.id.clone()), None, NOW + 61_000)
        .unwrap_err();
    assert!(expired.message.contains("expired"), "{expired:?}");
    let other = access
        .create_link(
            &caller,
            NewLink {
                role: Role::Writer,
                expires_in_secs: None,
                max_uses: None,
                for_user: None,
            },
            NOW,
            DAY,
        )
        .unwrap();
    let Entry::Seat(seat) = access
        .enter(&Grant::Link(other.id.clone()), None, NOW, |_| false)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(access.revoke_link(&caller, &other.id, NOW).unwrap(), vec![seat.clone()]);
    let revoked = access.check(&Grant::Link(other.id), None, NOW).unwrap_err();
    assert!(revoked.message.contains("revoked"), "{revoked:?}");
    let seat_refused = access.check(&Grant::Seat(seat), None, NOW).unwrap_err();
    assert!(seat_refused.message.contains("revoked"), "{seat_refused:?}");
    for r in [used, expired, revoked] {
        assert!(r.message.contains("ask the host for a new link"));
    }
}

#[test]
fn handing_over_the_host_role_makes_the_old_host_a_writer() {
    let (mut access, host, writer) = room();
    let caller = host_of(&mut access, &host);
    let Entry::Seat(bob) = access.enter(&Grant::Link(writer), None, NOW, |_| false).unwrap() else {
        panic!()
    };
    let changed = access.set_role(&caller, &bob, Role::Host).unwrap();
    let old = caller.seat.clone().unwrap();
    assert_eq!(changed, vec![(old.clone(), Role::Writer), (bob.clone(), Role::Host)]);
    let again = access.rest_caller(&Grant::Link(host), None, NOW).unwrap();
    assert_eq!(
        again.role,
        Role::Writer,
        "the host's link opens the old host's seat, now a writer"
    );
    assert_eq!(
        access.set_role(&again, &bob, Role::Reader).unwrap_err().code,
        ErrorCode::Forbidden
    );
}

#[test]
fn the_host_cannot_leave_the_room_without_a_host_nor_kick_itself() {
    let (mut access, host, _) = room();
    let caller = host_of(&mut access, &host);
    let me = caller.seat.clone().unwrap();
    assert!(access.set_role(&caller, &me, Role::Writer).is_err());
    assert!(access.kick(&caller, &me).is_err());
    assert!(access.revoke_link(&caller, &host, NOW).is_err());
}

#[test]
fn with_approval_a_link_sends_joiners_to_the_lobby_and_admission_takes_the_use() {
    let (mut access, host, writer) = room();
    let caller = host_of(&mut access, &host);
    assert!(access.set_approval(&caller, true).unwrap());
    let Entry::Lobby { seat, link } = access
        .enter(&Grant::Link(writer.clone()), None, NOW, |_| false)
        .unwrap()
    else {
        panic!("approval sends joiners to the lobby")
    };
    assert_eq!(access.links[&writer].uses, 0);
    access.admit(&link, seat.clone(), None, NOW, |_| false).unwrap();
    assert_eq!(access.links[&writer].uses, 1);
    assert_eq!(access.check(&Grant::Seat(seat), None, NOW), Ok(()));
    assert!(matches!(
        access.enter(&Grant::Link(host), None, NOW, |_| false),
        Ok(Entry::Seat(_))
    ));
}

#[test]
fn a_kicked_seat_is_refused_and_everything_is_queued_for_the_store() {
    let (mut access, host, writer) = room();
    let caller = host_of(&mut access, &host);
    let Entry::Seat(bob) = access.enter(&Grant::Link(writer), None, NOW, |_| false).unwrap() else {
        panic!()
    };
    access.take_changes();
    access.kick(&caller, &bob).unwrap();
    access.record(NOW, AuditKind::Kicked, &caller.name, &bob, "");
    let refused = access.check(&Grant::Seat(bob), None, NOW).unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    assert!(refused.message.contains("removed"));
    let changes = access.take_changes();
    assert!(matches!(&changes[..], [AccessChange::Seat(s), AccessChange::Audit(_)] if s.kicked));
}

#[test]
fn with_approval_on_a_link_alone_reads_nothing_over_rest_an_admitted_seat_does() {
    let (mut access, host, writer) = room();
    let h = host_of(&mut access, &host);
    assert_eq!(
        access
            .rest_caller(&Grant::Link(writer.clone()), None, NOW)
            .unwrap()
            .role,
        Role::Writer
    );
    access.set_approval(&h, true).unwrap();
    let refused = access.rest_caller(&Grant::Link(writer), None, NOW).unwrap_err();
    assert_eq!(refused.code, ErrorCode::Forbidden);
    assert!(refused.message.contains("seat's token"), "{}", refused.message);
    assert_eq!(
        access.rest_caller(&Grant::Link(host), None, NOW).unwrap().role,
        Role::Host
    );
    let seat = h.seat.clone().unwrap();
    assert_eq!(
        access.rest_caller(&Grant::Seat(seat), None, NOW).unwrap().role,
        Role::Host
    );
}

fn user(id: &str, email: &str) -> Verified {
    Verified {
        id: id.into(),
        name: id.to_uppercase(),
        email: Some(email.into()),
        subject: id.into(),
    }
}

#[test]
fn a_signed_in_person_has_one_seat_bound_to_them_whichever_link_they_use() {
    let (mut access, _host, writer) = room();
    let ada = user("ada", "ada@example.test");
    let Entry::Seat(seat) = access
        .enter(&Grant::Link(writer.clone()), Some(&ada), NOW, |_| false)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(access.seats[&seat].user.as_deref(), Some("ada"));
    let again = access
        .enter(&Grant::Link(writer.clone()), Some(&ada), NOW, |_| false)
        .unwrap();
    assert_eq!(again, Entry::Seat(seat.clone()), "the same seat, not a new one");
    assert_eq!(access.links[&writer].uses, 1, "and no second use of the link");
    let bob = user("bob", "bob@example.test");
    let other = access.check(&Grant::Seat(seat.clone()), Some(&bob), NOW).unwrap_err();
    assert_eq!(other.code, ErrorCode::Forbidden);
    let anonymous = access.check(&Grant::Seat(seat), None, NOW).unwrap_err();
    assert!(anonymous.message.contains("sign in"), "{anonymous:?}");
}

#[test]
fn an_invitation_lets_in_only_the_user_it_names() {
    let (mut access, host, _) = room();
    let caller = host_of(&mut access, &host);
    let invite = Invitee::parse_request("bob@example.test").unwrap();
    let link = access
        .create_link(
            &caller,
            NewLink {
                role: Role::Writer,
                expires_in_secs: None,
                max_uses: None,
                for_user: Some(invite),
            },
            NOW,
            DAY,
        )
        .unwrap();
    assert_eq!(link.for_user.as_deref(), Some("email:bob@example.test"));
    let grant = Grant::Link(link.id.clone());
    let carol = access
        .check(&grant, Some(&user("carol", "carol@example.test")), NOW)
        .unwrap_err();
    assert!(carol.message.contains("someone else"), "{carol:?}");
    let nobody = access.check(&grant, None, NOW).unwrap_err();
    assert!(nobody.message.contains("sign in first"), "{nobody:?}");
    assert!(access
        .enter(&grant, Some(&user("bob", "bob@example.test")), NOW, |_| false)
        .is_ok());
    let listed = access.links(&NoTokens);
    let listed = listed.iter().find(|l| l.id == link.id).unwrap();
    assert_eq!(listed.for_user.as_deref(), Some("email:bob@example.test"));
}

#[test]
fn a_kicked_signed_in_person_cannot_come_back_through_another_link() {
    let (mut access, host, writer) = room();
    let caller = host_of(&mut access, &host);
    let bob = user("bob", "bob@example.test");
    let Entry::Seat(seat) = access
        .enter(&Grant::Link(writer.clone()), Some(&bob), NOW, |_| false)
        .unwrap()
    else {
        panic!()
    };
    access.kick(&caller, &seat).unwrap();
    let fresh = access
        .create_link(
            &caller,
            NewLink {
                role: Role::Reader,
                expires_in_secs: None,
                max_uses: None,
                for_user: None,
            },
            NOW,
            DAY,
        )
        .unwrap();
    let refused = access
        .enter(&Grant::Link(fresh.id), Some(&bob), NOW, |_| false)
        .unwrap_err();
    assert!(refused.message.contains("removed"), "{refused:?}");
    // Without accounts nothing ties a person to a seat: a new seat it is (decision 011).
    assert!(access.enter(&Grant::Link(writer), None, NOW, |_| false).is_ok());
}

#[test]
fn links_are_bounded_and_ended_ones_make_room() {
    let mut access = Access::from_state(AccessState::default(), 3);
    let caller = Caller {
        seat: None,
        role: Role::Host,
        name: REST_ACTOR.into(),
    };
    let ids: Vec<String> = (0..3)
        .map(|_| {
            access
                .create_link(
                    &caller,
                    NewLink {
                        role: Role::Reader,
                        expires_in_secs: None,
                        max_uses: None,
                        for_user: None,
                    },
                    NOW,
                    DAY,
                )
                .unwrap()
                .id
        })
        .collect();
    let full = access
        .create_link(
            &caller,
            NewLink {
                role: Role::Reader,
                expires_in_secs: None,
                max_uses: None,
                for_user: None,
            },
            NOW,
            DAY,
        )
        .unwrap_err();
    assert!(full.message.contains("max_links"), "{full:?}");
    access.revoke_link(&caller, &ids[0], NOW).unwrap();
    access
        .create_link(
            &caller,
            NewLink {
                role: Role::Reader,
                expires_in_secs: None,
                max_uses: None,
                for_user: None,
            },
            NOW,
            DAY,
        )
        .unwrap();
    assert_eq!(access.links(&NoTokens).len(), 3);
}
