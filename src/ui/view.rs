//! What the interface shows, as plain data: the conversation, the peers and their
//! connections, and the scroll position. Notices from the app go in through
//! [`View::apply`]; rendering only reads. No terminal I/O here.

use std::collections::BTreeMap;

use peertalk_signal::proto::PeerId;

use crate::app::{CallState, FileTrouble, Notice, human_size};
use crate::peer::{LinkState, Path};

/// How many entries the scrollback keeps.
const SCROLLBACK: usize = 10_000;

/// Where an own message is on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued or on the wire.
    Sent,
    /// This many of this many members have acknowledged it (or went away first).
    Partial(usize, usize),
    /// Every member it was for acknowledged it.
    Delivered,
    /// A peer that sends no acknowledgements (a page) has it in its SCTP stack: sent,
    /// not confirmed read.
    Transmitted,
    /// Everyone it was for left before acknowledging it.
    Failed,
}

/// Whether a system line is routine or bad news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Error,
}

/// One item of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Chat { ts: u64, from: String, text: String, own: Option<(u64, Delivery)> },
    System { ts: u64, text: String, tone: Tone },
}

/// The relay connection, as the status bar shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayState {
    Joining,
    Joined,
    Hosting,
    Lost,
    /// Trying again: this is attempt number .0.
    Reconnecting(u32),
}

/// A peer, as the status bar shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerView {
    pub name: String,
    pub state: LinkState,
    pub path: Option<Path>,
    /// While the peer sends us audio: its latest level in dBFS (-inf until one is measured).
    pub audio: Option<f32>,
    /// Its certificate is the one verified for its name.
    pub verified: bool,
}

/// A file transfer under way or waiting for an answer, as its progress line shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferView {
    pub incoming: bool,
    pub who: String,
    pub name: String,
    pub bytes: u64,
    pub size: u64,
    /// Bytes a second lately.
    pub rate: f64,
    /// An offer to us that waits for /accept or /decline.
    pub asking: bool,
}

/// Our side of the call, as the status bar shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallBar {
    Calling,
    Live,
}

/// Everything on screen.
#[derive(Debug, Clone)]
pub struct View {
    pub room: String,
    pub name: String,
    pub relay: RelayState,
    pub hosting: bool,
    pub peers: BTreeMap<PeerId, PeerView>,
    pub entries: Vec<Entry>,
    /// How many rendered lines the view is scrolled up from the bottom.
    pub scroll: usize,
    /// Entries that arrived while scrolled up.
    pub unseen: usize,
    /// The last measured chat round trip, in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Our call, if we are in one.
    pub call: Option<CallBar>,
    pub muted: bool,
    /// The members panel is shown (F2 or /members).
    pub panel: bool,
    /// Who has each of our recent messages, for `/info`.
    receipts: BTreeMap<u64, Receipt>,
    /// File transfers under way, by direction (incoming), number and member.
    pub transfers: BTreeMap<(bool, u64, PeerId), TransferView>,
    /// The terminal has focus (focus events; assumed until told otherwise).
    pub focused: bool,
    /// The read marker is drawn above this entry: the first one that came after focus
    /// went away. Cleared when you send, moved when focus goes away again.
    pub read_marker: Option<usize>,
    /// Messages from others since focus went away, for the terminal's title.
    pub unread: usize,
    /// The search through the scrollback, while one is on.
    pub search: Option<Search>,
}

/// A search through the conversation (`/search TEXT`, Ctrl-R).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub query: String,
    /// The entries that hold it, oldest first.
    pub hits: Vec<usize>,
    /// Which hit is shown (an index into `hits`); the newest at first.
    pub current: usize,
}

impl Search {
    /// The entry shown, if there is a hit.
    #[must_use]
    pub fn entry(&self) -> Option<usize> {
        self.hits.get(self.current).copied()
    }
}

/// Who has one of our messages.
#[derive(Debug, Default, Clone)]
struct Receipt {
    acked: Vec<String>,
    transmitted: Vec<String>,
    missed: Vec<String>,
    /// Members it is for, once one has acknowledged it.
    of: Option<usize>,
    settled: bool,
}

impl View {
    #[must_use]
    pub fn new(room: &str, name: &str) -> Self {
        Self {
            room: room.to_owned(),
            name: name.to_owned(),
            relay: RelayState::Joining,
            hosting: false,
            peers: BTreeMap::new(),
            entries: Vec::new(),
            scroll: 0,
            unseen: 0,
            rtt_ms: None,
            call: None,
            muted: false,
            panel: false,
            receipts: BTreeMap::new(),
            transfers: BTreeMap::new(),
            focused: true,
            read_marker: None,
            unread: 0,
            search: None,
        }
    }

    /// Focus came or went. Going away sets the read marker after what is on screen now;
    /// coming back clears the unread count (the marker stays, to show where you left off).
    pub fn focus(&mut self, focused: bool) {
        if !focused && self.focused {
            self.read_marker = Some(self.entries.len());
        }
        self.focused = focused;
        self.unread = 0;
    }

    /// The terminal's title: the room, after the unread count when there is one.
    #[must_use]
    pub fn title(&self) -> String {
        let room = crate::sanitize::for_terminal(&self.room);
        match self.unread {
            0 => format!("peertalk #{room}"),
            n => format!("({n}) peertalk #{room}"),
        }
    }

    /// Whether `notice` deserves the user's attention: a message that names us, or any
    /// message while the terminal is not focused. Returns its sender and text.
    #[must_use]
    pub fn attention<'n>(&self, notice: &'n Notice) -> Option<(&'n str, &'n str)> {
        match notice {
            Notice::Message { from, text, .. } if !self.focused || mentions(text, &self.name) => {
                Some((from.as_str(), text.as_str()))
            }
            _ => None,
        }
    }

    /// Starts a search for `query` (an empty one ends it), showing the newest hit.
    pub fn search(&mut self, query: &str) {
        if query.is_empty() {
            self.search = None;
            return;
        }
        let needle = query.to_lowercase();
        let hits: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry_text(entry).to_lowercase().contains(&needle))
            .map(|(index, _)| index)
            .collect();
        let current = hits.len().saturating_sub(1);
        self.search = Some(Search { query: query.to_owned(), hits, current });
    }

    /// Moves the search to an older hit (`older`) or a newer one; stays at either end.
    pub fn search_step(&mut self, older: bool) {
        if let Some(search) = &mut self.search {
            search.current = if older {
                search.current.saturating_sub(1)
            } else {
                (search.current + 1).min(search.hits.len().saturating_sub(1))
            };
        }
    }

    /// Takes in one notice; `now` (ms since the epoch) stamps system lines.
    pub fn apply(&mut self, notice: &Notice, now: u64) {
        if matches!(notice, Notice::Sent { .. }) && self.focused {
            // Writing means you have caught up.
            self.read_marker = None;
        }
        let info = |text: String| Entry::System { ts: now, text, tone: Tone::Info };
        let error = |text: String| Entry::System { ts: now, text, tone: Tone::Error };
        let entry = match notice {
            Notice::Joined { room, peers, .. } => {
                self.relay = if self.hosting { RelayState::Hosting } else { RelayState::Joined };
                for p in peers {
                    let view = PeerView {
                        name: p.name.clone(),
                        state: LinkState::Connecting,
                        path: None,
                        audio: None,
                        verified: false,
                    };
                    self.peers.insert(p.id.clone(), view);
                }
                let here = if peers.is_empty() {
                    "nobody else is here yet".to_owned()
                } else {
                    format!("here: {}", peers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "))
                };
                info(format!("joined room {room} as {}; {here}", self.name))
            }
            Notice::HostingRelay { url, page } => {
                self.hosting = true;
                info(format!(
                    "no relay answered at {url}, so this client runs one (it stops when you quit); browsers join at {page}"
                ))
            }
            Notice::PeerJoined { peer, name } => {
                self.peers.insert(
                    peer.clone(),
                    PeerView {
                        name: name.clone(),
                        state: LinkState::Connecting,
                        path: None,
                        audio: None,
                        verified: false,
                    },
                );
                info(format!("{name} joined"))
            }
            Notice::PeerLeft { peer, name } => {
                self.peers.remove(peer);
                info(format!("{name} left"))
            }
            Notice::Connected { peer, name, path, plain, verified, safety } => {
                let view = self.peers.entry(peer.clone()).or_insert_with(|| PeerView {
                    name: name.clone(),
                    state: LinkState::Connecting,
                    path: None,
                    audio: None,
                    verified: false,
                });
                view.state = LinkState::Connected;
                view.path.clone_from(path);
                view.verified = *verified;
                let how = match path {
                    Some(p) => format!(" ({} path over {})", p.kind(), p.protocol),
                    None => String::new(),
                };
                let plain = if *plain { crate::app::PLAIN_PEER } else { "" };
                let trust = crate::app::connected_suffix(safety.as_deref(), *verified);
                info(format!("connected to {name}{how}{plain}{trust}"))
            }
            Notice::Link { peer, name, state, detail } => {
                if let Some(view) = self.peers.get_mut(peer) {
                    view.state = *state;
                }
                let text = match detail {
                    Some(d) => format!("connection to {name} {state}: {d}"),
                    None => format!("connection to {name} {state}"),
                };
                if *state == LinkState::Failed { error(text) } else { info(text) }
            }
            Notice::Message { from, ts, text, private, .. } => {
                if !self.focused {
                    self.unread += 1;
                }
                let from = if *private { format!("{from} (private)") } else { from.clone() };
                Entry::Chat { ts: *ts, from, text: text.clone(), own: None }
            }
            Notice::Sent { id, ts, text, to } => Entry::Chat {
                ts: *ts,
                from: match to {
                    Some(to) => format!("{} → {to} (private)", self.name),
                    None => self.name.clone(),
                },
                text: text.clone(),
                own: Some((*id, Delivery::Sent)),
            },
            Notice::Delivered { id, acked, of, to, .. } => {
                let receipt = self.receipts.entry(*id).or_default();
                receipt.acked.push(to.clone());
                receipt.of = Some(*of);
                self.mark(
                    *id,
                    if acked == of { Delivery::Delivered } else { Delivery::Partial(*acked, *of) },
                );
                return;
            }
            Notice::Settled { id, delivered, transmitted, missed } if !missed.is_empty() => {
                self.settle_receipt(*id, delivered, transmitted, missed);
                let reached = delivered.len() + transmitted.len();
                let total = reached + missed.len();
                self.mark(
                    *id,
                    if reached == 0 { Delivery::Failed } else { Delivery::Partial(delivered.len(), total) },
                );
                return;
            }
            Notice::Settled { id, delivered, transmitted, missed } => {
                self.settle_receipt(*id, delivered, transmitted, missed);
                return;
            }
            Notice::Transmitted { id, to, .. } => {
                self.receipts.entry(*id).or_default().transmitted.push(to.clone());
                self.mark(*id, Delivery::Transmitted);
                return;
            }
            // The marks change once each message is settled, when every member is accounted for.
            Notice::Undelivered { ids, to, .. } => {
                error(format!("{} message(s) were not delivered to {to}: {to} went away", ids.len()))
            }
            Notice::Renamed { name } => {
                self.name.clone_from(name);
                info(format!("you are now {name}"))
            }
            Notice::RelayError { code, message } => {
                error(format!("relay refused a message ({code}): {message}"))
            }
            Notice::RelayLost { reason } => {
                self.relay = RelayState::Lost;
                error(format!("lost the relay ({reason}); open connections keep working"))
            }
            // The status bar counts the attempts; a line for each would bury the chat.
            Notice::RelayRetrying { attempt, .. } => {
                self.relay = RelayState::Reconnecting(*attempt);
                return;
            }
            Notice::RelayBack { resumed, .. } => {
                self.relay = if self.hosting { RelayState::Hosting } else { RelayState::Joined };
                if *resumed {
                    info("back with the relay".to_owned())
                } else {
                    info("back with the relay, under a new id".to_owned())
                }
            }
            Notice::InputRejected { reason } => error(format!("not sent: {reason}")),
            Notice::Warning { text } => error(text.clone()),
            Notice::Call(CallState::Calling) => {
                self.call = Some(CallBar::Calling);
                info("calling: your audio goes out once a peer has negotiated it".to_owned())
            }
            Notice::Call(CallState::Live { source }) => {
                self.call = Some(CallBar::Live);
                info(format!("in the call, sending the {source}; /mute, /hangup"))
            }
            Notice::Call(CallState::Ended { reason }) => {
                self.call = None;
                info(format!("call ended: {reason}"))
            }
            Notice::Muted { muted } => {
                self.muted = *muted;
                info(if *muted { "muted".to_owned() } else { "unmuted".to_owned() })
            }
            Notice::PeerAudio { peer, name, receiving } => {
                if let Some(view) = self.peers.get_mut(peer) {
                    view.audio = receiving.then_some(f32::NEG_INFINITY);
                }
                let hint = if self.call.is_none() { "; /call to answer" } else { "" };
                if *receiving {
                    info(format!("{name} is sending audio{hint}"))
                } else {
                    info(format!("{name} stopped sending audio"))
                }
            }
            Notice::FileOffer { file, incoming, peer, who, name, size, ask, .. } => {
                let view = TransferView {
                    incoming: *incoming,
                    who: who.clone(),
                    name: name.clone(),
                    bytes: 0,
                    size: *size,
                    rate: 0.0,
                    asking: *ask,
                };
                self.transfers.insert((*incoming, *file, peer.clone()), view);
                match (incoming, ask) {
                    (true, true) => info(format!(
                        "{who} offers {name} ({}): /accept {file} or /decline {file} (Alt-Y, Alt-N)",
                        human_size(*size)
                    )),
                    (true, false) => info(format!("{who} offers {name} ({})", human_size(*size))),
                    (false, _) => info(format!("offering {name} ({}) to {who}", human_size(*size))),
                }
            }
            Notice::FileProgress { file, incoming, peer, bytes, rate, .. } => {
                if let Some(view) = self.transfers.get_mut(&(*incoming, *file, peer.clone())) {
                    view.bytes = *bytes;
                    view.rate = *rate;
                    view.asking = false;
                }
                return;
            }
            Notice::FileResumed { file, incoming, peer, who, name, offset, .. } => {
                if let Some(view) = self.transfers.get_mut(&(*incoming, *file, peer.clone())) {
                    view.bytes = *offset;
                }
                info(format!("{name} with {who} goes on from {}", human_size(*offset)))
            }
            Notice::FileDone { file, incoming, peer, who, name, size, path, .. } => {
                self.transfers.remove(&(*incoming, *file, peer.clone()));
                if *incoming {
                    let path = path.as_deref().unwrap_or_default();
                    info(format!(
                        "received {name} from {who} ({}, SHA-256 checked): {path}",
                        human_size(*size)
                    ))
                } else {
                    info(format!("{who} has {name} ({}, SHA-256 checked)", human_size(*size)))
                }
            }
            Notice::FileFailed { file, incoming, peer, who, name, trouble, reason } => {
                if let Some(peer) = peer {
                    self.transfers.remove(&(*incoming, *file, peer.clone()));
                }
                let with = match (who, incoming) {
                    (Some(who), true) => format!(" from {who}"),
                    (Some(who), false) => format!(" to {who}"),
                    (None, _) => String::new(),
                };
                let line = format!("{name}{with}: {reason}");
                match trouble {
                    FileTrouble::Failed => error(line),
                    FileTrouble::Declined | FileTrouble::Cancelled => info(line),
                }
            }
            Notice::Safety { peer, name, words, verified, .. } => {
                if let Some(view) = self.peers.get_mut(peer) {
                    view.verified = *verified;
                }
                let words = crate::app::with_emoji(words);
                if *verified {
                    info(format!("{name} is verified ✔ — safety words: {words}"))
                } else {
                    info(format!(
                        "safety words with {name}: {words} — if {name} sees the same, /verify {name} yes"
                    ))
                }
            }
            Notice::IdentityChanged { peer, name, known, now, refused } => {
                if let Some(view) = self.peers.get_mut(peer) {
                    view.verified = false;
                }
                let what = if *refused {
                    "refused (--strict-identity)"
                } else {
                    "compare safety words (/verify) before trusting it"
                };
                error(format!(
                    "WARNING: {name} connected with certificate {now}, not the {known} you verified: someone may be in the middle; {what}"
                ))
            }
            // The meter in the status bar shows it.
            Notice::AudioLevel { peer, dbfs } => {
                if let Some(view) = self.peers.get_mut(peer)
                    && view.audio.is_some()
                {
                    view.audio = Some(*dbfs);
                }
                return;
            }
        };
        self.push(entry);
    }

    /// Adds a line the interface itself says (help, /peers, errors in commands).
    pub fn say(&mut self, text: impl Into<String>, tone: Tone, now: u64) {
        self.push(Entry::System { ts: now, text: text.into(), tone });
    }

    /// Empties the conversation (the /clear command).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.scroll = 0;
        self.unseen = 0;
        self.read_marker = None;
        self.search = None;
    }

    /// Scrolls up (positive) or down (negative) by `lines`; the renderer clamps the top.
    pub fn scroll_by(&mut self, lines: isize) {
        self.scroll = self.scroll.saturating_add_signed(lines);
        if self.scroll == 0 {
            self.unseen = 0;
        }
    }

    /// Back to the newest messages.
    pub fn scroll_to_bottom(&mut self) {
        self.scroll = 0;
        self.unseen = 0;
    }

    /// Holds the scroll position at `max` (the top of the conversation) or below.
    pub fn clamp_scroll(&mut self, max: usize) {
        self.scroll = self.scroll.min(max);
    }

    fn push(&mut self, entry: Entry) {
        if self.scroll > 0 {
            self.unseen += 1;
        }
        if let Some(search) = &mut self.search
            && entry_text(&entry).to_lowercase().contains(&search.query.to_lowercase())
        {
            search.hits.push(self.entries.len());
        }
        self.entries.push(entry);
        if self.entries.len() > SCROLLBACK {
            let dropped = self.entries.len() - SCROLLBACK;
            self.entries.drain(..dropped);
            self.read_marker = self.read_marker.map(|m| m.saturating_sub(dropped));
            if let Some(search) = &mut self.search {
                let before = search.hits.len();
                search.hits.retain(|&hit| hit >= dropped);
                search.hits.iter_mut().for_each(|hit| *hit -= dropped);
                search.current = search.current.saturating_sub(before - search.hits.len());
            }
        }
    }

    fn settle_receipt(&mut self, id: u64, delivered: &[String], transmitted: &[String], missed: &[String]) {
        let receipt = self.receipts.entry(id).or_default();
        receipt.acked = delivered.to_vec();
        receipt.transmitted = transmitted.to_vec();
        receipt.missed = missed.to_vec();
        receipt.of = Some(delivered.len() + transmitted.len() + missed.len());
        receipt.settled = true;
        while self.receipts.len() > SCROLLBACK {
            self.receipts.pop_first();
        }
    }

    /// A sentence on who has our message `id` (the last one when `None`), for `/info`.
    #[must_use]
    pub fn receipt(&self, id: Option<u64>) -> String {
        let last = self.entries.iter().rev().find_map(|e| match e {
            Entry::Chat { own: Some((id, _)), .. } => Some(*id),
            _ => None,
        });
        let Some(id) = id.or(last) else { return "you have sent nothing yet".to_owned() };
        let Some(receipt) = self.receipts.get(&id) else {
            return format!("message {id}: nobody has acknowledged it yet");
        };
        let mut parts = Vec::new();
        if !receipt.acked.is_empty() {
            parts.push(format!("acknowledged by {}", receipt.acked.join(", ")));
        }
        if !receipt.transmitted.is_empty() {
            parts
                .push(format!("sent to {} (pages send no acknowledgements)", receipt.transmitted.join(", ")));
        }
        if !receipt.missed.is_empty() {
            parts.push(format!("missed by {}, who went away first", receipt.missed.join(", ")));
        }
        let accounted = receipt.acked.len() + receipt.transmitted.len() + receipt.missed.len();
        let waiting = receipt.of.unwrap_or(0).saturating_sub(accounted);
        if !receipt.settled && waiting > 0 {
            parts.push(format!("{waiting} more to acknowledge"));
        }
        format!("message {id}: {}", parts.join("; "))
    }

    fn mark(&mut self, id: u64, delivery: Delivery) {
        let own = self.entries.iter_mut().rev().find_map(|e| match e {
            Entry::Chat { own: Some((own_id, state)), .. } if *own_id == id => Some(state),
            _ => None,
        });
        if let Some(state) = own {
            // Sent to a page stays sent; only acknowledgements do better.
            let kept =
                *state == Delivery::Transmitted && matches!(delivery, Delivery::Sent | Delivery::Failed);
            if !kept {
                *state = delivery;
            }
        }
    }
}

/// The text an entry shows, for searching.
fn entry_text(entry: &Entry) -> &str {
    match entry {
        Entry::Chat { text, .. } | Entry::System { text, .. } => text,
    }
}

/// Whether `text` names `name` as a word (`alice`, `@alice:`, `Alice,`), ignoring case.
#[must_use]
pub fn mentions(text: &str, name: &str) -> bool {
    let (text, name) = (text.to_lowercase(), name.to_lowercase());
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    !name.is_empty()
        && text.match_indices(&name).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            !before.is_some_and(word) && !after.is_some_and(word)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(s: &str) -> PeerId {
        PeerId(s.into())
    }

    #[test]
    fn own_messages_go_from_sent_to_delivered_member_by_member() {
        let mut v = View::new("demo", "alice");
        v.apply(&Notice::Sent { id: 1, ts: 0, text: "hi".into(), to: None }, 0);
        v.apply(&Notice::Delivered { id: 1, peer: pid("p1"), to: "bob".into(), acked: 1, of: 2 }, 0);
        assert!(matches!(&v.entries[0], Entry::Chat { own: Some((1, Delivery::Partial(1, 2))), .. }));
        v.apply(&Notice::Delivered { id: 1, peer: pid("p2"), to: "carol".into(), acked: 2, of: 2 }, 0);
        assert!(matches!(&v.entries[0], Entry::Chat { own: Some((1, Delivery::Delivered)), .. }));
    }

    #[test]
    fn info_says_who_has_a_message() {
        let mut v = View::new("demo", "alice");
        assert_eq!(v.receipt(None), "you have sent nothing yet");
        v.apply(&Notice::Sent { id: 1, ts: 0, text: "hi".into(), to: None }, 0);
        assert_eq!(v.receipt(None), "message 1: nobody has acknowledged it yet");
        v.apply(&Notice::Delivered { id: 1, peer: pid("p1"), to: "bob".into(), acked: 1, of: 3 }, 0);
        assert_eq!(v.receipt(Some(1)), "message 1: acknowledged by bob; 2 more to acknowledge");
        let settled = Notice::Settled {
            id: 1,
            delivered: vec!["bob".into(), "carol".into()],
            transmitted: vec![],
            missed: vec!["dave".into()],
        };
        v.apply(&settled, 0);
        assert_eq!(
            v.receipt(None),
            "message 1: acknowledged by bob, carol; missed by dave, who went away first"
        );
    }

    #[test]
    fn undelivered_messages_are_said_and_marked_once_settled() {
        let mut v = View::new("demo", "alice");
        v.apply(&Notice::Sent { id: 1, ts: 0, text: "hi".into(), to: None }, 0);
        v.apply(&Notice::Sent { id: 2, ts: 0, text: "all?".into(), to: None }, 0);
        v.apply(&Notice::Undelivered { ids: vec![1, 2], peer: pid("p1"), to: "bob".into() }, 0);
        assert!(matches!(&v.entries[2], Entry::System { tone: Tone::Error, .. }));
        let settled = |id, delivered: &[&str]| Notice::Settled {
            id,
            delivered: delivered.iter().map(|n| (*n).to_owned()).collect(),
            transmitted: vec![],
            missed: vec!["bob".into()],
        };
        v.apply(&settled(1, &[]), 0);
        v.apply(&settled(2, &["carol"]), 0);
        assert!(matches!(&v.entries[0], Entry::Chat { own: Some((1, Delivery::Failed)), .. }));
        assert!(matches!(&v.entries[1], Entry::Chat { own: Some((2, Delivery::Partial(1, 2))), .. }));
    }

    #[test]
    fn messages_arriving_while_scrolled_up_are_counted_until_back_at_the_bottom() {
        let mut v = View::new("demo", "alice");
        v.scroll_by(5);
        let msg = Notice::Message {
            peer: pid("p1"),
            from: "bob".into(),
            id: 1,
            ts: 0,
            text: "x".into(),
            private: false,
        };
        v.apply(&msg, 0);
        v.apply(&msg, 0);
        assert_eq!(v.unseen, 2);
        v.scroll_by(-5);
        assert_eq!((v.scroll, v.unseen), (0, 0));
    }

    #[test]
    fn peer_states_follow_the_connection() {
        let mut v = View::new("demo", "alice");
        v.apply(&Notice::PeerJoined { peer: pid("p1"), name: "bob".into() }, 0);
        assert_eq!(v.peers[&pid("p1")].state, LinkState::Connecting);
        v.apply(
            &Notice::Connected {
                peer: pid("p1"),
                name: "bob".into(),
                path: None,
                plain: false,
                safety: None,
                verified: false,
            },
            0,
        );
        assert_eq!(v.peers[&pid("p1")].state, LinkState::Connected);
        v.apply(&Notice::PeerLeft { peer: pid("p1"), name: "bob".into() }, 0);
        assert!(v.peers.is_empty());
    }

    fn from_bob(text: &str) -> Notice {
        Notice::Message {
            peer: pid("p1"),
            from: "bob".into(),
            id: 1,
            ts: 0,
            text: text.into(),
            private: false,
        }
    }

    #[test]
    fn a_message_that_names_you_wants_attention_and_so_does_any_while_unfocused() {
        let mut v = View::new("demo", "alice");
        assert_eq!(v.attention(&from_bob("@Alice: lunch?")), Some(("bob", "@Alice: lunch?")));
        assert_eq!(v.attention(&from_bob("alice, lunch?")).map(|(f, _)| f), Some("bob"));
        assert_eq!(v.attention(&from_bob("malice and alicent")), None, "only the whole word");
        assert_eq!(v.attention(&from_bob("lunch?")), None);
        v.focus(false);
        assert_eq!(v.attention(&from_bob("lunch?")), Some(("bob", "lunch?")));
        let own = Notice::Sent { id: 1, ts: 0, text: "alice here".into(), to: None };
        assert_eq!(v.attention(&own), None, "never for your own");
    }

    #[test]
    fn unread_messages_count_in_the_title_and_the_marker_stays_until_you_write() {
        let mut v = View::new("demo", "alice");
        v.apply(&from_bob("seen"), 0);
        assert_eq!(v.title(), "peertalk #demo");
        v.focus(false);
        v.apply(&from_bob("one"), 0);
        v.apply(&Notice::PeerJoined { peer: pid("p2"), name: "carol".into() }, 0);
        v.apply(&from_bob("two"), 0);
        assert_eq!(v.title(), "(2) peertalk #demo", "messages count, other lines do not");
        assert_eq!(v.read_marker, Some(1));
        v.focus(true);
        assert_eq!((v.title().as_str(), v.read_marker), ("peertalk #demo", Some(1)));
        v.apply(&Notice::Sent { id: 1, ts: 0, text: "back".into(), to: None }, 0);
        assert_eq!(v.read_marker, None);
    }

    #[test]
    fn search_finds_every_entry_and_steps_from_the_newest_to_the_oldest() {
        let mut v = View::new("demo", "alice");
        for text in ["Deploy at 3", "lunch", "deploy done", "ok"] {
            v.apply(&from_bob(text), 0);
        }
        v.search("DEPLOY");
        let search = v.search.clone().expect("searching");
        assert_eq!((search.entry(), search.hits), (Some(2), vec![0, 2]));
        v.search_step(true);
        assert_eq!(v.search.as_ref().and_then(Search::entry), Some(0));
        v.search_step(true);
        assert_eq!(v.search.as_ref().and_then(Search::entry), Some(0), "stays at the oldest");
        v.apply(&from_bob("deploy again"), 0);
        assert_eq!(v.search.as_ref().map(|s| s.hits.clone()), Some(vec![0, 2, 4]), "new hits join");
        v.search("");
        assert!(v.search.is_none());
    }

    #[test]
    fn the_marker_and_the_hits_follow_entries_when_old_ones_are_dropped() {
        let mut v = View::new("demo", "alice");
        v.apply(&from_bob("needle"), 0);
        for _ in 0..10 {
            v.apply(&from_bob("hay"), 0);
        }
        v.apply(&from_bob("needle"), 0);
        v.focus(false);
        v.search("needle");
        for _ in 0..SCROLLBACK - 12 {
            v.apply(&from_bob("hay"), 0);
        }
        assert_eq!(v.entries.len(), SCROLLBACK);
        v.apply(&from_bob("more hay"), 0);
        assert_eq!(v.read_marker, Some(11));
        assert_eq!(v.search.as_ref().map(|s| (s.hits.clone(), s.current)), Some((vec![10], 0)));
    }
}
