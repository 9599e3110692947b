//! Who is connected and who is in which room: plain data, no I/O, so every rule about
//! membership and routing is tested without a socket.
//!
//! In a cluster the registry also holds the members of this relay's rooms that are on
//! other relays ("remote" members), as far as this relay has heard; a room is kept only
//! while it has a member here.

use std::collections::{HashMap, HashSet};

use crate::proto::{self, ErrorCode, PeerId, PeerInfo, Refusal};

/// Which endpoint a room was joined through. Rooms of the two never share members: a
/// classic client could not read a peertalk message, nor the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The peertalk protocol (`/`).
    Main,
    /// The classic broadcast endpoint (`/signal`).
    Classic,
}

/// A room: rooms of the same name on the two endpoints are different rooms.
pub type RoomKey = (Endpoint, String);

/// Every connection the relay knows, and the rooms they are in.
#[derive(Debug)]
pub struct Registry {
    members: HashMap<PeerId, Member>,
    rooms: HashMap<RoomKey, Vec<PeerId>>,
    /// Members here that are in a room.
    local_joined: usize,
    max_rooms: usize,
    max_peers_per_room: usize,
}

#[derive(Debug)]
struct Member {
    name: String,
    room: Option<RoomKey>,
    /// The relay the member is connected to, when it is not this one.
    relay: Option<String>,
}

impl Registry {
    #[must_use]
    pub fn new(max_rooms: usize, max_peers_per_room: usize) -> Self {
        Self {
            members: HashMap::new(),
            rooms: HashMap::new(),
            local_joined: 0,
            max_rooms,
            max_peers_per_room,
        }
    }

    /// Records a new connection, not yet in any room. A member this relay knew on another
    /// relay is forgotten: it has come here, and its join will place it again.
    pub fn connect(&mut self, id: PeerId) {
        if self.relay_of(&id).is_some() {
            self.disconnect(&id);
        }
        self.members.insert(id, Member { name: String::new(), room: None, relay: None });
    }

    /// Puts a connection in a room; returns the members that were already there, in the
    /// order they joined.
    pub fn join(
        &mut self,
        id: &PeerId,
        endpoint: Endpoint,
        room: &str,
        name: &str,
    ) -> Result<Vec<PeerInfo>, Refusal> {
        self.check_unjoined(id)?;
        let key = (endpoint, room.to_owned());
        // Classic connections have no names.
        if endpoint == Endpoint::Main
            && let Some(ids) = self.rooms.get(&key)
        {
            let taken = |candidate: &str| {
                ids.iter().any(|other| {
                    self.members.get(other).is_some_and(|m| m.name.to_lowercase() == candidate.to_lowercase())
                })
            };
            if taken(name) {
                let free = proto::first_free_name(name, taken);
                return Err(Refusal::new(
                    ErrorCode::NameTaken,
                    format!(
                        "The name {name:?} is already taken in room {room:?}; join under another, such as {free:?}."
                    ),
                ));
            }
        }
        let member = self.members.get_mut(id).ok_or_else(not_connected)?;
        match self.rooms.get(&key) {
            Some(ids) if ids.len() >= self.max_peers_per_room => {
                return Err(Refusal::new(
                    ErrorCode::RoomFull,
                    format!("Room {room:?} is full ({} members); try another room.", ids.len()),
                ));
            }
            None if self.rooms.len() >= self.max_rooms => {
                return Err(Refusal::new(
                    ErrorCode::TooManyRooms,
                    "The relay has as many rooms as it allows; join an existing room or try later.",
                ));
            }
            _ => {}
        }
        member.room = Some(key.clone());
        name.clone_into(&mut member.name);
        self.local_joined += 1;
        let ids = self.rooms.entry(key).or_default();
        let others = ids.clone();
        ids.push(id.clone());
        Ok(others.into_iter().map(|id| self.info(id)).collect())
    }

    /// Refuses a connection that is unknown or already in a room.
    pub fn check_unjoined(&self, id: &PeerId) -> Result<(), Refusal> {
        let member = self.members.get(id).ok_or_else(not_connected)?;
        match &member.room {
            Some((_, current)) => Err(Refusal::new(
                ErrorCode::AlreadyJoined,
                format!(
                    "This connection is already in room {current:?}; open another connection to join a second room."
                ),
            )),
            None => Ok(()),
        }
    }

    /// Puts a connection in a room the cluster has already admitted it to, with no checks
    /// of its own.
    pub fn enter(&mut self, id: &PeerId, key: RoomKey, name: &str) {
        let Some(member) = self.members.get_mut(id) else { return };
        if member.room.is_some() {
            return;
        }
        member.room = Some(key.clone());
        name.clone_into(&mut member.name);
        self.local_joined += 1;
        self.rooms.entry(key).or_default().push(id.clone());
    }

    /// Records that `id` is in `key` on `relay`, if this relay has a member there; true
    /// when it was not known before (and this relay's members must be told).
    pub fn learn(&mut self, id: &PeerId, key: &RoomKey, name: &str, relay: &str) -> bool {
        if let Some(member) = self.members.get_mut(id) {
            if member.relay.is_some() && member.room.as_ref() == Some(key) {
                // Moved between relays: the same peer, nothing to announce.
                member.relay = Some(relay.to_owned());
            }
            return false;
        }
        let Some(ids) = self.rooms.get_mut(key) else { return false };
        ids.push(id.clone());
        let member = Member { name: name.to_owned(), room: Some(key.clone()), relay: Some(relay.to_owned()) };
        self.members.insert(id.clone(), member);
        true
    }

    /// Forgets a connection; if it was in a room, returns the members left behind, who
    /// must be told.
    pub fn disconnect(&mut self, id: &PeerId) -> Vec<PeerId> {
        let Some(Member { room: Some(room), relay, .. }) = self.members.remove(id) else {
            return Vec::new();
        };
        if relay.is_none() {
            self.local_joined -= 1;
        }
        let Some(ids) = self.rooms.get_mut(&room) else { return Vec::new() };
        ids.retain(|m| m != id);
        let rest = ids.clone();
        let members = &self.members;
        if !rest.iter().any(|m| members.get(m).is_some_and(|m| m.relay.is_none())) {
            // Nobody here is left to tell, and this relay hears no more about the room.
            self.rooms.remove(&room);
            for other in &rest {
                self.members.remove(other);
            }
        }
        rest
    }

    /// The relay `id` is connected to, when it is in one of this relay's rooms from another.
    #[must_use]
    pub fn relay_of(&self, id: &PeerId) -> Option<&str> {
        self.members.get(id)?.relay.as_deref()
    }

    /// Whether `id` is a connection to this relay.
    #[must_use]
    pub fn is_local(&self, id: &PeerId) -> bool {
        self.members.get(id).is_some_and(|m| m.relay.is_none())
    }

    /// The room `id` is in.
    #[must_use]
    pub fn room_key(&self, id: &PeerId) -> Option<&RoomKey> {
        self.members.get(id)?.room.as_ref()
    }

    /// Everyone in `key`, in the order this relay learnt of them.
    #[must_use]
    pub fn members_of(&self, key: &RoomKey) -> &[PeerId] {
        self.rooms.get(key).map_or(&[], Vec::as_slice)
    }

    /// The other relays with members in `key`, each once.
    #[must_use]
    pub fn relays_in(&self, key: &RoomKey) -> Vec<String> {
        let mut relays: Vec<String> = Vec::new();
        for id in self.members_of(key) {
            if let Some(relay) = self.relay_of(id)
                && !relays.iter().any(|r| r == relay)
            {
                relays.push(relay.to_owned());
            }
        }
        relays
    }

    /// Members on relays that are not in `live`.
    #[must_use]
    pub fn on_dead_relays(&self, live: &HashSet<String>) -> Vec<PeerId> {
        let dead = |m: &Member| m.relay.as_ref().is_some_and(|r| !live.contains(r));
        self.members.iter().filter(|(_, m)| dead(m)).map(|(id, _)| id.clone()).collect()
    }

    /// The rooms with members here.
    #[must_use]
    pub fn rooms(&self) -> Vec<RoomKey> {
        self.rooms.keys().cloned().collect()
    }

    /// This relay's own members of `key`, with their names.
    #[must_use]
    pub fn locals_in(&self, key: &RoomKey) -> Vec<(PeerId, String)> {
        let local = |id: &&PeerId| self.is_local(id);
        self.members_of(key).iter().filter(local).map(|id| (id.clone(), self.info(id.clone()).name)).collect()
    }

    /// Checks that `from` may send to `to`: both in the same room, and not to itself.
    pub fn route(&self, from: &PeerId, to: &PeerId) -> Result<(), Refusal> {
        let sender = self.members.get(from).ok_or_else(not_connected)?;
        let Some(room) = &sender.room else {
            return Err(Refusal::new(
                ErrorCode::NotJoined,
                "Send a \"join\" message before signalling; this connection is in no room yet.",
            ));
        };
        let reachable = from != to && self.members.get(to).is_some_and(|m| m.room.as_ref() == Some(room));
        if reachable {
            Ok(())
        } else {
            Err(Refusal::new(
                ErrorCode::UnknownPeer,
                format!("There is no peer {:?} in room {:?} to send to (it may have left).", to.0, room.1),
            ))
        }
    }

    /// How many rooms have at least one member.
    #[must_use]
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// How many connections to this relay are in a room.
    #[must_use]
    pub fn joined_count(&self) -> usize {
        self.local_joined
    }

    /// The public view of a member.
    pub fn info(&self, id: PeerId) -> PeerInfo {
        let name = self.members.get(&id).map(|m| m.name.clone()).unwrap_or_default();
        PeerInfo { id, name }
    }
}

fn not_connected() -> Refusal {
    Refusal::new(ErrorCode::NotJoined, "This connection is not registered with the relay.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PeerId {
        PeerId(s.to_owned())
    }

    fn registry(ids: &[&str]) -> Registry {
        let mut r = Registry::new(100, 16);
        for i in ids {
            r.connect(id(i));
        }
        r
    }

    #[test]
    fn joiner_learns_who_was_there_in_join_order() {
        let mut r = registry(&["p1", "p2", "p3"]);
        assert!(r.join(&id("p1"), Endpoint::Main, "demo", "alice").expect("joins").is_empty());
        r.join(&id("p2"), Endpoint::Main, "demo", "bob").expect("joins");
        let seen = r.join(&id("p3"), Endpoint::Main, "demo", "carol").expect("joins");
        let names: Vec<_> = seen.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob"]);
    }

    #[test]
    fn a_name_is_unique_in_its_room_ignoring_case_and_a_free_one_is_suggested() {
        let mut r = registry(&["p1", "p2", "p3", "p4", "p5"]);
        r.join(&id("p1"), Endpoint::Main, "demo", "bob").expect("joins");
        r.join(&id("p2"), Endpoint::Main, "demo", "bob-2").expect("joins");
        let taken = r.join(&id("p3"), Endpoint::Main, "demo", "Bob").expect_err("taken");
        assert_eq!(taken.code, ErrorCode::NameTaken);
        assert!(taken.message.contains(r#"such as "Bob-3""#), "{}", taken.message);
        r.join(&id("p3"), Endpoint::Main, "other", "bob").expect("another room");
        r.disconnect(&id("p1"));
        r.join(&id("p4"), Endpoint::Main, "demo", "bob").expect("free again once bob left");
        r.join(&id("p5"), Endpoint::Classic, "demo", "").expect("classic connections have no names");
    }

    #[test]
    fn full_rooms_and_too_many_rooms_are_refused() {
        let mut r = Registry::new(1, 2);
        for i in ["p1", "p2", "p3", "p4"] {
            r.connect(id(i));
        }
        r.join(&id("p1"), Endpoint::Main, "a", "alice").expect("joins");
        r.join(&id("p2"), Endpoint::Main, "a", "bob").expect("joins");
        assert_eq!(
            r.join(&id("p3"), Endpoint::Main, "a", "carol").expect_err("full").code,
            ErrorCode::RoomFull
        );
        assert_eq!(
            r.join(&id("p4"), Endpoint::Main, "b", "dave").expect_err("no room").code,
            ErrorCode::TooManyRooms
        );
        r.disconnect(&id("p1"));
        r.join(&id("p3"), Endpoint::Main, "a", "carol").expect("a place freed up");
    }

    #[test]
    fn a_connection_joins_one_room_only() {
        let mut r = registry(&["p1"]);
        r.join(&id("p1"), Endpoint::Main, "a", "alice").expect("joins");
        let err = r.join(&id("p1"), Endpoint::Main, "b", "alice").expect_err("second join refused");
        assert_eq!(err.code, ErrorCode::AlreadyJoined);
    }

    #[test]
    fn signals_reach_only_members_of_the_same_room() {
        let mut r = registry(&["p1", "p2", "p3", "p4"]);
        r.join(&id("p1"), Endpoint::Main, "a", "alice").expect("joins");
        r.join(&id("p2"), Endpoint::Main, "a", "bob").expect("joins");
        r.join(&id("p3"), Endpoint::Main, "b", "carol").expect("joins");
        assert!(r.route(&id("p1"), &id("p2")).is_ok());
        assert_eq!(r.route(&id("p1"), &id("p3")).expect_err("other room").code, ErrorCode::UnknownPeer);
        assert_eq!(r.route(&id("p1"), &id("p1")).expect_err("self").code, ErrorCode::UnknownPeer);
        let nobody = r.route(&id("p1"), &id("p9")).expect_err("nobody");
        assert_eq!(nobody.code, ErrorCode::UnknownPeer);
        assert!(
            nobody.message.starts_with("There is no peer \"p9\" in room"),
            "no debug form: {}",
            nobody.message
        );
        assert_eq!(r.route(&id("p4"), &id("p1")).expect_err("not joined").code, ErrorCode::NotJoined);
    }

    mod properties {
        use std::collections::HashMap;

        use proptest::prelude::*;

        use super::*;

        #[derive(Debug, Clone)]
        enum Op {
            Join { peer: u8, room: u8 },
            Leave { peer: u8 },
            Route { from: u8, to: u8 },
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0..12u8, 0..4u8).prop_map(|(peer, room)| Op::Join { peer, room }),
                (0..12u8).prop_map(|peer| Op::Leave { peer }),
                (0..12u8, 0..12u8).prop_map(|(from, to)| Op::Route { from, to }),
            ]
        }

        proptest! {
            /// Whatever happens, a signal is allowed exactly between two different members
            /// of one room, and rooms never exceed their limit.
            #[test]
            fn routing_never_crosses_rooms(ops in proptest::collection::vec(op(), 1..200)) {
                let mut registry = Registry::new(3, 4);
                // Our own model of who is in which room.
                let mut model: HashMap<u8, u8> = HashMap::new();
                let pid = |n: u8| PeerId(format!("p{n}"));
                for n in 0..12 {
                    registry.connect(pid(n));
                }
                for op in ops {
                    match op {
                        Op::Join { peer, room } => {
                            if registry.join(&pid(peer), Endpoint::Main, &format!("r{room}"), "x").is_ok() {
                                prop_assert!(!model.contains_key(&peer), "joined twice");
                                model.insert(peer, room);
                            }
                        }
                        Op::Leave { peer } => {
                            registry.disconnect(&pid(peer));
                            registry.connect(pid(peer));
                            model.remove(&peer);
                        }
                        Op::Route { from, to } => {
                            let allowed = registry.route(&pid(from), &pid(to)).is_ok();
                            let same_room = from != to && model.contains_key(&from) && model.get(&from) == model.get(&to);
                            prop_assert_eq!(allowed, same_room);
                        }
                    }
                    let mut sizes: HashMap<u8, usize> = HashMap::new();
                    for room in model.values() {
                        *sizes.entry(*room).or_default() += 1;
                    }
                    prop_assert!(sizes.len() <= 3 && sizes.values().all(|n| *n <= 4));
                }
            }
        }
    }

    #[test]
    fn classic_and_main_rooms_of_one_name_are_apart() {
        let mut r = registry(&["p1", "p2", "p3"]);
        r.join(&id("p1"), Endpoint::Main, "a", "alice").expect("joins");
        assert!(r.join(&id("p2"), Endpoint::Classic, "a", "").expect("joins").is_empty());
        r.join(&id("p3"), Endpoint::Classic, "a", "").expect("joins");
        assert_eq!(r.members_of(&(Endpoint::Classic, "a".into())), [id("p2"), id("p3")]);
        assert_eq!(r.route(&id("p1"), &id("p2")).expect_err("other endpoint").code, ErrorCode::UnknownPeer);
    }

    #[test]
    fn members_on_other_relays_are_known_only_while_someone_here_shares_their_room() {
        let mut r = registry(&["p1"]);
        let room = (Endpoint::Main, "a".to_owned());
        assert!(!r.learn(&id("p9"), &room, "zed", "r2"), "no room here yet: nothing to learn");
        r.join(&id("p1"), Endpoint::Main, "a", "alice").expect("joins");
        assert!(r.learn(&id("p2"), &room, "bob", "r2"), "new: to be announced");
        assert!(!r.learn(&id("p2"), &room, "bob", "r3"), "moved relays: not announced again");
        assert_eq!(r.relay_of(&id("p2")), Some("r3"));
        assert!(r.route(&id("p1"), &id("p2")).is_ok(), "signals reach it");
        assert_eq!(r.relays_in(&room), ["r3"]);
        assert_eq!(r.joined_count(), 1, "only this relay's own members count");
        let live = HashSet::from(["r2".to_owned()]);
        assert_eq!(r.on_dead_relays(&live), [id("p2")]);
        r.disconnect(&id("p1"));
        assert_eq!(r.relay_of(&id("p2")), None, "forgotten with the last member here");
        assert_eq!(r.room_count(), 0);
    }

    #[test]
    fn a_member_that_comes_here_from_another_relay_is_placed_once() {
        let mut r = registry(&["p1"]);
        let room = (Endpoint::Main, "a".to_owned());
        r.join(&id("p1"), Endpoint::Main, "a", "alice").expect("joins");
        r.learn(&id("p2"), &room, "bob", "r2");
        r.connect(id("p2"));
        r.enter(&id("p2"), room.clone(), "bob");
        assert_eq!(r.members_of(&room), [id("p1"), id("p2")]);
        assert!(r.is_local(&id("p2")));
        assert_eq!(r.joined_count(), 2);
    }

    #[test]
    fn relay_forgets_peer_that_disconnects_and_empty_rooms() {
        let mut r = registry(&["p1", "p2"]);
        r.join(&id("p1"), Endpoint::Main, "a", "alice").expect("joins");
        r.join(&id("p2"), Endpoint::Main, "a", "bob").expect("joins");
        assert_eq!(r.disconnect(&id("p1")), vec![id("p2")]);
        assert_eq!(r.route(&id("p2"), &id("p1")).expect_err("gone").code, ErrorCode::UnknownPeer);
        assert!(r.disconnect(&id("p2")).is_empty());
        r.connect(id("p3"));
        assert!(
            r.join(&id("p3"), Endpoint::Main, "a", "carol").expect("joins").is_empty(),
            "the room starts empty again"
        );
    }
}
