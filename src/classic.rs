//! Signaling through a classic relay (`--signal-protocol classic`): one that forwards each
//! `{"event":...,"data":...}` text frame to every other client, as the Spring
//! `TextWebSocketHandler` examples do, with no ids, no rooms and no presence.
//!
//! [`Translator`] makes such a relay look like ours to the rest of the client. Who offers
//! is settled by `hello` (see PROTOCOL.md): each client sends one on connecting and once
//! in reply to every client it has not heard from before, with a random id; of two
//! clients, the one with the greater id offers. Whichever starts first, each hears the
//! other's hello, and the rule gives one first offerer, so connecting has no glare. Later
//! offers (a call's track) go to the same peer, like any signal.
//!
//! Pages in the Spring examples' style say no hello: they offer, or wait for an offer. A
//! page's offer is answered whenever it comes; and when nobody has said hello within
//! [`PAGE_GRACE`] of joining, we offer to whatever page may be waiting. Either way the
//! peer is a *page*: plain text on its channel, no envelopes, no acknowledgements.
//!
//! A page that offers as soon as it connects can cross our offer to it. Such a page
//! answers ours anyway (a browser rolls its own offer back when one comes in), so a page
//! offer that arrives while ours is unanswered is held for [`PAGE_HOLD`]: if the page's
//! answer comes meanwhile, its offer is dropped; if not, our offer reached nobody (the
//! page came later) and its offer is answered.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use peertalk_signal::classic::{Bye, ClassicMessage, Hello};
use peertalk_signal::proto::{
    ClientMessage, IceCandidate, PeerId, PeerInfo, SdpKind, SessionDescription, Signal,
};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use crate::signaling::{self, JoinError, Joined, Read, RelayEvent, Socket};

/// The path asked for when the `--signal` URL gives none: the Spring examples' and ours.
const DEFAULT_PATH: &str = "/signal";

/// The name given to a peer that says no hello: a browser page.
const UNNAMED_PEER: &str = "browser";

/// How long after joining we wait for a hello before offering to a page that may be
/// waiting for one. A peertalk client answers a hello within one round trip to the relay.
const PAGE_GRACE: Duration = Duration::from_secs(1);

/// How long a page's offer that crossed ours waits for the page's answer to ours (see the
/// module's documentation): a round trip through the relay, with room to spare.
const PAGE_HOLD: Duration = Duration::from_millis(750);

/// Connects to a classic relay and enters `room` (as `?room=`, which relays that have no
/// rooms ignore).
pub async fn join(
    url: &str,
    room: &str,
    name: &str,
    secret: Option<&str>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Joined, JoinError> {
    let url = room_url(url, room, secret);
    let mut ws =
        tokio::time::timeout(signaling::JOIN_TIMEOUT, signaling::open(&url, tls)).await.map_err(|_| {
            JoinError::Unreachable {
                url: url.clone(),
                reason: format!("no answer within {} s", signaling::JOIN_TIMEOUT.as_secs()),
            }
        })??;
    let translator = Translator::new(random_id(), name.to_owned());
    let hello = translator.hello();
    ws.send(Message::Text(hello.to_json().into()))
        .await
        .map_err(|e| JoinError::Unreachable { url: url.clone(), reason: e.to_string() })?;
    let me = PeerId(translator.me.id.clone());
    let (outgoing, outgoing_rx) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::channel(256);
    tokio::spawn(pump(ws, translator, outgoing_rx, events_tx));
    Ok(Joined { me, peers: Vec::new(), outgoing, events })
}

/// The relay URL with the classic path when it names none, and the room (and secret) in
/// the query.
pub(crate) fn room_url(url: &str, room: &str, secret: Option<&str>) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("ws", url));
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let path = if path.is_empty() || path == "/" { DEFAULT_PATH } else { path };
    let mut params = form_urlencoded::Serializer::new(query.to_owned());
    params.append_pair("room", room);
    if let Some(secret) = secret {
        params.append_pair("secret", secret);
    }
    format!("{scheme}://{authority}{path}?{}", params.finish())
}

/// 64 random bits as 16 hex digits. The standard library's hasher keys come from the
/// operating system's random source, which is all a tie-break needs.
fn random_id() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(crate::session::now_ms());
    format!("{:016x}", hasher.finish())
}

async fn pump(
    mut ws: Socket,
    mut translator: Translator,
    mut outgoing: mpsc::UnboundedReceiver<ClientMessage>,
    events: mpsc::Sender<RelayEvent>,
) {
    let grace = tokio::time::sleep(PAGE_GRACE);
    tokio::pin!(grace);
    let mut waiting = true;
    let mut hold_until: Option<tokio::time::Instant> = None;
    let reason = loop {
        tokio::select! {
            () = crate::session::sleep_until(hold_until) => {
                hold_until = None;
                debug!("the page did not answer our offer in time: answering its own");
                for event in translator.release_held() {
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
            }
            () = &mut grace, if waiting => {
                waiting = false;
                debug!("nobody said hello: offering to a page, in case one waits");
                for event in translator.nobody_said_hello() {
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
            }
            frame = ws.next() => match signaling::sort_frame(frame) {
                Read::Text(text) => {
                    let message = match ClassicMessage::parse(&text) {
                        Ok(message) => message,
                        Err(e) => {
                            debug!("ignoring a classic frame we cannot use: {e}");
                            continue;
                        }
                    };
                    let (replies, arrived) = translator.incoming(message);
                    debug!(?arrived, holding = translator.holding(), "classic frame");
                    if translator.holding() && hold_until.is_none() {
                        hold_until = Some(tokio::time::Instant::now() + PAGE_HOLD);
                    }
                    for reply in replies {
                        if let Err(e) = ws.send(Message::Text(reply.to_json().into())).await {
                            debug!("could not answer a hello: {e}");
                        }
                    }
                    for event in arrived {
                        if events.send(event).await.is_err() {
                            return;
                        }
                    }
                }
                Read::Skip => {}
                Read::Ended(reason) => break reason,
            },
            message = outgoing.recv() => match message {
                Some(message) => {
                    let Some(frame) = translator.outgoing(message) else { continue };
                    if let Err(e) = ws.send(Message::Text(frame.to_json().into())).await {
                        break format!("could not write to the relay: {e}");
                    }
                }
                None => {
                    let bye = translator.bye().to_json();
                    let goodbye = async {
                        let _ = ws.send(Message::Text(bye.into())).await;
                        let _ = ws.close(None).await;
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(1), goodbye).await;
                    return;
                }
            },
        }
    };
    let _ = events.send(RelayEvent::Lost(reason)).await;
}

/// Turns classic frames into relay events and our messages into classic frames. Pure, so
/// the offer rule is tested without a socket.
#[derive(Debug)]
pub struct Translator {
    me: Hello,
    /// The client we talk to: the latest that said hello (or a page).
    remote: Option<Remote>,
    /// Clients whose hello we have answered.
    greeted: HashSet<String>,
    /// Pages met so far: each gets an id of its own, so that a page that replaces another
    /// is a new peer to the rest of the client.
    pages: u32,
    /// A page's offer that crossed our unanswered one, and the candidates that followed it.
    held: Option<(SessionDescription, Vec<IceCandidate>)>,
}

#[derive(Debug)]
struct Remote {
    id: PeerId,
    /// It said no hello.
    page: bool,
    /// We offered to it and have no answer yet: perhaps no page is there at all.
    unanswered: bool,
}

impl Translator {
    #[must_use]
    pub fn new(id: String, name: String) -> Self {
        Self { me: Hello { id, name }, remote: None, greeted: HashSet::new(), pages: 0, held: None }
    }

    /// A page's offer is held (see [`PAGE_HOLD`]); call [`Translator::release_held`] then.
    #[must_use]
    pub fn holding(&self) -> bool {
        self.held.is_some()
    }

    /// The page did not answer our offer in time: it never saw it. Its own offer (and
    /// what followed) goes to a new peer.
    pub fn release_held(&mut self) -> Vec<RelayEvent> {
        let mut events = Vec::new();
        if let Some((offer, candidates)) = self.held.take() {
            let from = self.meet_page(false, &mut events);
            events.push(RelayEvent::Signal { from: from.clone(), signal: Signal::Description(offer) });
            for candidate in candidates {
                events.push(RelayEvent::Signal { from: from.clone(), signal: Signal::Candidate(candidate) });
            }
        }
        events
    }

    fn remote_id(&self) -> Option<PeerId> {
        self.remote.as_ref().map(|r| r.id.clone())
    }

    /// A page takes the place of whoever was there; `offer`: we offer to it.
    fn meet_page(&mut self, offer: bool, events: &mut Vec<RelayEvent>) -> PeerId {
        self.pages += 1;
        let id = match self.pages {
            1 => PeerId(UNNAMED_PEER.to_owned()),
            n => PeerId(format!("{UNNAMED_PEER}-{n}")),
        };
        events.extend(self.remote.take().map(|r| RelayEvent::PeerLeft(r.id)));
        self.remote = Some(Remote { id: id.clone(), page: true, unanswered: offer });
        let peer = PeerInfo { id: id.clone(), name: UNNAMED_PEER.to_owned() };
        events.push(RelayEvent::PeerJoined { peer, offer, page: true });
        id
    }

    /// Nobody said hello within [`PAGE_GRACE`]: offer to a page, in case one waits.
    pub fn nobody_said_hello(&mut self) -> Vec<RelayEvent> {
        let mut events = Vec::new();
        if self.remote.is_none() {
            self.meet_page(true, &mut events);
        }
        events
    }

    /// Our hello.
    #[must_use]
    pub fn hello(&self) -> ClassicMessage {
        ClassicMessage::Hello(self.me.clone())
    }

    /// Our goodbye.
    #[must_use]
    pub fn bye(&self) -> ClassicMessage {
        ClassicMessage::Bye(Bye { id: self.me.id.clone() })
    }

    /// One frame from the relay: what to send back, and what the rest of the client hears.
    pub fn incoming(&mut self, message: ClassicMessage) -> (Vec<ClassicMessage>, Vec<RelayEvent>) {
        let mut replies = Vec::new();
        let mut events = Vec::new();
        match message {
            ClassicMessage::Hello(hello) if hello.id != self.me.id => {
                if self.greeted.insert(hello.id.clone()) {
                    replies.push(self.hello());
                }
                let id = PeerId(hello.id.clone());
                if self.remote_id().as_ref() != Some(&id) {
                    // The format is two-party: a newcomer is the same person back (a
                    // restart) far more often than a third one, so it takes the place.
                    events.extend(self.remote.take().map(|r| RelayEvent::PeerLeft(r.id)));
                    self.remote = Some(Remote { id: id.clone(), page: false, unanswered: false });
                    let offer = self.me.id > hello.id;
                    let peer = PeerInfo { id, name: hello.name };
                    events.push(RelayEvent::PeerJoined { peer, offer, page: false });
                }
            }
            ClassicMessage::Hello(_) => {}
            ClassicMessage::Bye(bye) => {
                if self.remote.as_ref().is_some_and(|r| r.id.0 == bye.id) {
                    events.extend(self.remote.take().map(|r| RelayEvent::PeerLeft(r.id)));
                }
            }
            ClassicMessage::Offer(description) => match &self.remote {
                // Crossed ours, or came after ours reached nobody: wait and see.
                Some(remote) if remote.page && remote.unanswered => {
                    self.held = Some((description, Vec::new()));
                }
                Some(remote) => {
                    let from = remote.id.clone();
                    events.push(RelayEvent::Signal { from, signal: Signal::Description(description) });
                }
                None => {
                    let from = self.meet_page(false, &mut events);
                    events.push(RelayEvent::Signal { from, signal: Signal::Description(description) });
                }
            },
            ClassicMessage::Answer(description) => {
                if let Some(remote) = &mut self.remote {
                    remote.unanswered = false;
                    let from = remote.id.clone();
                    events.push(RelayEvent::Signal {
                        from: from.clone(),
                        signal: Signal::Description(description),
                    });
                    // The page took our offer and dropped its own; what it gathered is ours.
                    for candidate in self.held.take().map(|(_, c)| c).unwrap_or_default() {
                        events.push(RelayEvent::Signal {
                            from: from.clone(),
                            signal: Signal::Candidate(candidate),
                        });
                    }
                }
            }
            ClassicMessage::Candidate(candidate) => {
                match (&mut self.held, self.remote.as_ref().map(|r| r.id.clone())) {
                    (Some((_, held)), _) => held.push(candidate),
                    (None, Some(from)) => {
                        events.push(RelayEvent::Signal { from, signal: Signal::Candidate(candidate) })
                    }
                    (None, None) => {}
                }
            }
            ClassicMessage::Error(error) => {
                events.push(RelayEvent::Error { code: error.code, message: error.message });
            }
        }
        (replies, events)
    }

    /// One message of ours as a classic frame; `None` for what the format cannot carry,
    /// or what is addressed to a client that has since been replaced.
    #[must_use]
    pub fn outgoing(&self, message: ClientMessage) -> Option<ClassicMessage> {
        let ClientMessage::Signal { to, signal } = message else { return None };
        if self.remote_id().as_ref() != Some(&to) {
            return None;
        }
        Some(match signal {
            Signal::Description(d) if d.kind == SdpKind::Answer => ClassicMessage::Answer(d),
            Signal::Description(d) => ClassicMessage::Offer(d),
            Signal::Candidate(c) => ClassicMessage::Candidate(c),
            // Classic relays and pages know nothing of passphrase rooms.
            Signal::Pake(_) => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use peertalk_signal::proto::SessionDescription;

    use super::*;

    fn hello(id: &str, name: &str) -> ClassicMessage {
        ClassicMessage::Hello(Hello { id: id.into(), name: name.into() })
    }

    fn joined(events: &[RelayEvent]) -> Option<(String, bool)> {
        events.iter().find_map(|e| match e {
            RelayEvent::PeerJoined { peer, offer, .. } => Some((peer.id.0.clone(), *offer)),
            _ => None,
        })
    }

    fn offer() -> SessionDescription {
        SessionDescription { kind: SdpKind::Offer, sdp: "v=0\r\n".into() }
    }

    #[test]
    fn exactly_one_of_two_clients_offers_whoever_starts_first() {
        let mut a = Translator::new("aaaa".into(), "alice".into());
        let mut b = Translator::new("bbbb".into(), "bob".into());
        // a started first: its hello reached nobody; b's reaches a, and a answers it.
        let (a_replies, a_events) = a.incoming(b.hello());
        assert_eq!(a_replies, [a.hello()]);
        let (b_replies, b_events) = b.incoming(a_replies[0].clone());
        assert_eq!(joined(&a_events), Some(("bbbb".into(), false)));
        assert_eq!(joined(&b_events), Some(("aaaa".into(), true)), "the greater id offers");
        // b answers a hello it had not heard; a has heard b already and stays quiet.
        let (again, events) = a.incoming(b_replies[0].clone());
        assert!(again.is_empty() && events.is_empty());
    }

    #[test]
    fn a_restarted_peer_replaces_the_old_one() {
        let mut a = Translator::new("aaaa".into(), "alice".into());
        a.incoming(hello("0001", "bob"));
        let (_, events) = a.incoming(hello("0002", "bob"));
        assert_eq!(events[0], RelayEvent::PeerLeft(PeerId("0001".into())));
        assert_eq!(joined(&events), Some(("0002".into(), true)));
        let (_, events) = a.incoming(ClassicMessage::Bye(Bye { id: "0002".into() }));
        assert_eq!(events, [RelayEvent::PeerLeft(PeerId("0002".into()))]);
    }

    #[test]
    fn signals_go_to_the_current_peer_only() {
        let mut a = Translator::new("aaaa".into(), "alice".into());
        a.incoming(hello("0001", "bob"));
        let signal = Signal::Description(offer());
        let to_bob = ClientMessage::Signal { to: PeerId("0001".into()), signal: signal.clone() };
        assert_eq!(a.outgoing(to_bob), Some(ClassicMessage::Offer(offer())));
        let stale = ClientMessage::Signal { to: PeerId("0000".into()), signal };
        assert_eq!(a.outgoing(stale), None);
    }

    #[test]
    fn a_page_that_offers_without_hello_is_answered() {
        let mut a = Translator::new("aaaa".into(), "alice".into());
        let (_, events) = a.incoming(ClassicMessage::Offer(offer()));
        assert_eq!(joined(&events), Some((UNNAMED_PEER.into(), false)));
        assert!(matches!(&events[1], RelayEvent::Signal { signal: Signal::Description(_), .. }));
    }

    fn candidate() -> IceCandidate {
        IceCandidate {
            candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
            username_fragment: None,
        }
    }

    #[test]
    fn nobody_saying_hello_gets_an_offer_as_a_page_and_a_late_page_offer_replaces_it() {
        let mut a = Translator::new("aaaa".into(), "alice".into());
        let events = a.nobody_said_hello();
        let guess = PeerInfo { id: PeerId(UNNAMED_PEER.into()), name: UNNAMED_PEER.into() };
        assert_eq!(events, [RelayEvent::PeerJoined { peer: guess, offer: true, page: true }]);
        // Our offer reached nobody; a page that came later offers instead, once it is
        // clear that it will not answer ours.
        let (_, events) = a.incoming(ClassicMessage::Offer(offer()));
        assert!(events.is_empty() && a.holding());
        assert!(a.incoming(ClassicMessage::Candidate(candidate())).1.is_empty());
        let events = a.release_held();
        assert_eq!(events[0], RelayEvent::PeerLeft(PeerId(UNNAMED_PEER.into())));
        assert_eq!(joined(&events), Some((format!("{UNNAMED_PEER}-2"), false)));
        assert!(
            matches!(&events[2], RelayEvent::Signal { from, signal: Signal::Description(_) } if from.0 == "browser-2")
        );
        assert!(
            matches!(&events[3], RelayEvent::Signal { from, signal: Signal::Candidate(_) } if from.0 == "browser-2")
        );
        // Its later offers (a call) renegotiate the same connection.
        let (_, events) = a.incoming(ClassicMessage::Offer(offer()));
        assert!(matches!(&events[..], [RelayEvent::Signal { from, .. }] if from.0 == "browser-2"));
        assert!(a.nobody_said_hello().is_empty(), "someone is there");
    }

    #[test]
    fn a_page_whose_offer_crossed_ours_and_that_answers_ours_keeps_our_connection() {
        let mut a = Translator::new("aaaa".into(), "alice".into());
        a.nobody_said_hello();
        a.incoming(ClassicMessage::Offer(offer()));
        a.incoming(ClassicMessage::Candidate(candidate()));
        let answer = SessionDescription { kind: SdpKind::Answer, sdp: "v=0\r\n".into() };
        let (_, events) = a.incoming(ClassicMessage::Answer(answer));
        assert!(matches!(&events[..], [
            RelayEvent::Signal { from: a, signal: Signal::Description(_) },
            RelayEvent::Signal { from: b, signal: Signal::Candidate(_) },
        ] if a.0 == UNNAMED_PEER && b.0 == UNNAMED_PEER));
        assert!(!a.holding() && a.release_held().is_empty(), "the crossing offer is dropped");
    }

    #[test]
    fn a_page_that_answers_our_offer_keeps_its_place() {
        let mut a = Translator::new("aaaa".into(), "alice".into());
        a.nobody_said_hello();
        let answer = SessionDescription { kind: SdpKind::Answer, sdp: "v=0\r\n".into() };
        let (_, events) = a.incoming(ClassicMessage::Answer(answer));
        assert!(matches!(&events[..], [RelayEvent::Signal { from, .. }] if from.0 == UNNAMED_PEER));
        let (_, events) = a.incoming(ClassicMessage::Offer(offer()));
        assert!(matches!(&events[..], [RelayEvent::Signal { from, .. }] if from.0 == UNNAMED_PEER));
    }

    #[test]
    fn room_and_secret_go_in_the_query_and_the_path_defaults_to_signal() {
        assert_eq!(room_url("ws://127.0.0.1:8787", "a b", None), "ws://127.0.0.1:8787/signal?room=a+b");
        assert_eq!(room_url("ws://h:1/", "r", Some("s&t")), "ws://h:1/signal?room=r&secret=s%26t");
        assert_eq!(room_url("wss://h/ws?x=1", "r", None), "wss://h/ws?x=1&room=r");
    }
}
