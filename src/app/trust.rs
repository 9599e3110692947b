//! Knowing who is on the other end. DTLS checks the peer's certificate against the
//! fingerprint in its session description, but descriptions travel through the relay, so
//! a lying relay could put itself in the middle with certificates of its own. Two checks
//! catch that:
//!
//! - **Safety words**: seven words (with emoji) derived from both fingerprints and the
//!   room. Both ends compute the same words only if each sees the other's real
//!   certificate; people compare them over another channel (in person, a call) and mark
//!   the peer verified (`/verify NAME yes`).
//! - **Known peers**: a verified peer's fingerprint is remembered by name, like SSH's
//!   `known_hosts`; that name with another certificate later is announced loudly, and with
//!   `--strict-identity` refused before anything is sent to it.

use super::{App, Effect, Notice};
use crate::exit::Outcome;
use crate::peer::PeerCommand;
use peertalk_signal::proto::PeerId;

/// Emoji and their words, 64 of them (6 bits each), as in Matrix's short authentication
/// strings: easy to tell apart, to name aloud, and to draw.
const SYMBOLS: [(&str, &str); 64] = [
    ("🐶", "dog"),
    ("🐱", "cat"),
    ("🦁", "lion"),
    ("🐎", "horse"),
    ("🦄", "unicorn"),
    ("🐷", "pig"),
    ("🐘", "elephant"),
    ("🐰", "rabbit"),
    ("🐼", "panda"),
    ("🐓", "rooster"),
    ("🐧", "penguin"),
    ("🐢", "turtle"),
    ("🐟", "fish"),
    ("🐙", "octopus"),
    ("🦋", "butterfly"),
    ("🌷", "flower"),
    ("🌳", "tree"),
    ("🌵", "cactus"),
    ("🍄", "mushroom"),
    ("🌏", "globe"),
    ("🌙", "moon"),
    ("🌈", "rainbow"),
    ("🔥", "fire"),
    ("🍌", "banana"),
    ("🍎", "apple"),
    ("🍓", "strawberry"),
    ("🌽", "corn"),
    ("🍕", "pizza"),
    ("🎂", "cake"),
    ("🧲", "magnet"),
    ("😀", "smiley"),
    ("🤖", "robot"),
    ("🎩", "hat"),
    ("👓", "glasses"),
    ("🔧", "spanner"),
    ("🎅", "santa"),
    ("👍", "thumbs-up"),
    ("🌂", "umbrella"),
    ("⌛", "hourglass"),
    ("⏰", "clock"),
    ("🎁", "gift"),
    ("💡", "bulb"),
    ("📕", "book"),
    ("🎈", "balloon"),
    ("📎", "paperclip"),
    ("🧦", "socks"),
    ("🔒", "lock"),
    ("🔑", "key"),
    ("🔨", "hammer"),
    ("📞", "telephone"),
    ("🏁", "flag"),
    ("🚂", "train"),
    ("🚲", "bicycle"),
    ("🛶", "canoe"),
    ("🚀", "rocket"),
    ("🏆", "trophy"),
    ("⚽", "ball"),
    ("🎸", "guitar"),
    ("🎺", "trumpet"),
    ("🔔", "bell"),
    ("⚓", "anchor"),
    ("🎧", "headphones"),
    ("📁", "folder"),
    ("📌", "pin"),
];

/// How many symbols the safety words have: 42 bits, as Matrix's emoji verification.
const SAFETY_SYMBOLS: usize = 7;

/// The safety words for a connection in `room` between certificates `a` and `b` (in
/// either order), as words separated by spaces.
#[must_use]
pub fn safety_words(room: &str, a: &str, b: &str) -> String {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    for part in ["peertalk safety words v1", room, low, high] {
        hash.update(part.as_bytes());
        hash.update(&[0]);
    }
    let digest = hash.finish();
    let bits = digest.as_ref().iter().take(6).fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    (0..SAFETY_SYMBOLS)
        .map(|i| SYMBOLS[((bits >> (48 - 6 * (i + 1))) & 0x3f) as usize].1)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a `connected` line adds about trust: `; verified ✔`, or the safety words to
/// compare.
#[must_use]
pub fn connected_suffix(safety: Option<&str>, verified: bool) -> String {
    match (safety, verified) {
        (_, true) => "; verified ✔".to_owned(),
        (Some(words), false) => format!("; safety words: {}", with_emoji(words)),
        (None, false) => String::new(),
    }
}

/// The safety words with their emoji, for people to compare: `🐶 dog  🦄 unicorn …`.
#[must_use]
pub fn with_emoji(words: &str) -> String {
    words
        .split(' ')
        .map(|w| match SYMBOLS.iter().find(|(_, word)| *word == w) {
            Some((emoji, word)) => format!("{emoji} {word}"),
            None => w.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("  ")
}

impl App {
    /// The safety words with a peer, once both fingerprints are known.
    pub(super) fn safety_with(&self, id: &PeerId) -> Option<String> {
        let ours = self.settings.identity.as_deref()?;
        let theirs = self.peers.get(id)?.fingerprint.as_deref()?;
        Some(safety_words(&self.settings.room, ours, theirs))
    }

    /// The peer's description named its certificate: compare it with the one remembered
    /// for that name, if any.
    pub(super) fn on_fingerprint(&mut self, id: &PeerId, fingerprint: String, fx: &mut Vec<Effect>) {
        let Some(peer) = self.peers.get_mut(id) else { return };
        let known = self.settings.known.get(&peer.name.to_lowercase()).cloned();
        peer.verified = known.as_deref() == Some(fingerprint.as_str());
        peer.fingerprint = Some(fingerprint.clone());
        let Some(known) = known.filter(|k| *k != fingerprint) else { return };
        let name = peer.name.clone();
        fx.push(Effect::Show(Notice::IdentityChanged {
            peer: id.clone(),
            name: name.clone(),
            known,
            now: fingerprint,
            refused: self.settings.strict_identity,
        }));
        if self.settings.strict_identity {
            peer.failure =
                Some(format!("{name}'s certificate is not the one verified before (--strict-identity)"));
            fx.push(Effect::Peer { id: id.clone(), command: PeerCommand::Close });
            self.exit(
                Outcome::IdentityChanged(format!(
                    "{name} connected with a certificate other than the one you verified; refused before anything was sent (--strict-identity). If {name} really has a new identity, compare safety words again and /verify {name} yes"
                )),
                fx,
            );
        }
    }

    /// `/verify NAME`: shows the safety words with that member; with `confirm`, marks it
    /// verified and remembers its certificate.
    pub(super) fn verify(&mut self, name: &str, confirm: bool, fx: &mut Vec<Effect>) {
        let wanted = name.to_lowercase();
        let Some(id) = self
            .peers
            .iter()
            .find(|(_, p)| p.in_room && p.name.to_lowercase() == wanted)
            .map(|(id, _)| id.clone())
        else {
            let text = format!("nobody called {name} is in this room (/peers lists who is)");
            return fx.push(Effect::Show(Notice::Warning { text }));
        };
        let (Some(words), Some(fingerprint)) =
            (self.safety_with(&id), self.peers.get(&id).and_then(|p| p.fingerprint.clone()))
        else {
            let text = format!("no connection to {name} yet: its certificate is not known");
            return fx.push(Effect::Show(Notice::Warning { text }));
        };
        let name = self.peers[&id].name.clone();
        if confirm {
            if let Some(peer) = self.peers.get_mut(&id) {
                peer.verified = true;
            }
            self.settings.known.insert(name.to_lowercase(), fingerprint.clone());
            fx.push(Effect::Remember { name: name.clone(), fingerprint: fingerprint.clone() });
        }
        let verified = self.peers[&id].verified;
        fx.push(Effect::Show(Notice::Safety { peer: id, name, words, fingerprint, verified }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "AB:CD:01";
    const B: &str = "12:34:EF";
    const PINNED: &str = "bulb unicorn flower fish train pig key";

    #[test]
    fn both_ends_get_the_same_words_whatever_the_order() {
        let words = safety_words("demo", A, B);
        assert_eq!(words, safety_words("demo", B, A));
        assert_eq!(words.split(' ').count(), SAFETY_SYMBOLS);
        assert!(words.split(' ').all(|w| SYMBOLS.iter().any(|(_, s)| *s == w)), "{words}");
    }

    #[test]
    fn the_words_are_pinned_so_other_clients_can_match_them() {
        // The same derivation is in the web client (signal/web/app.js, safetyWords).
        assert_eq!(safety_words("demo", A, B), PINNED);
    }

    #[test]
    fn another_certificate_or_room_gives_other_words() {
        let words = safety_words("demo", A, B);
        assert_ne!(words, safety_words("demo", A, "12:34:EE"), "a certificate in the middle shows");
        assert_ne!(words, safety_words("other", A, B));
    }

    #[test]
    fn the_symbols_are_64_distinct_words_and_emoji() {
        let mut words: Vec<&str> = SYMBOLS.iter().map(|(_, w)| *w).collect();
        let mut emoji: Vec<&str> = SYMBOLS.iter().map(|(e, _)| *e).collect();
        words.sort_unstable();
        words.dedup();
        emoji.sort_unstable();
        emoji.dedup();
        assert_eq!((words.len(), emoji.len()), (64, 64));
        assert_eq!(with_emoji("dog unicorn"), "🐶 dog  🦄 unicorn");
    }
}

#[cfg(test)]
mod app_tests {
    use std::collections::BTreeMap;

    use peertalk_signal::proto::PeerInfo;

    use super::*;
    use crate::app::{Event, Settings};
    use crate::peer::PeerEvent;

    const OURS: &str = "AA:AA";
    const BOBS: &str = "BB:BB";

    fn pid(s: &str) -> PeerId {
        PeerId(s.into())
    }

    /// Alice, who verified bob as `BOBS` before, with bob connecting with `theirs`.
    fn meet_bob(strict: bool, theirs: &str) -> (App, Vec<Effect>) {
        let known = BTreeMap::from([("bob".to_owned(), BOBS.to_owned())]);
        let settings = Settings {
            identity: Some(OURS.into()),
            known,
            strict_identity: strict,
            ..crate::app::testing::settings()
        };
        let mut a = App::new(settings);
        a.update(Event::Welcome {
            me: pid("p0"),
            peers: vec![PeerInfo { id: pid("p1"), name: "bob".into() }],
        });
        let mut fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Fingerprint(theirs.into()) });
        fx.extend(a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Open { plain: false } }));
        (a, fx)
    }

    #[test]
    fn a_known_peer_with_its_certificate_is_verified_and_the_words_are_shown() {
        let (_, fx) = meet_bob(false, BOBS);
        let words = safety_words("demo", OURS, BOBS);
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::Connected { verified: true, safety: Some(w), .. }) if *w == words)));
    }

    #[test]
    fn a_known_name_with_another_certificate_is_announced_and_with_strict_identity_refused() {
        let (_, fx) = meet_bob(false, "CC:CC");
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::IdentityChanged { refused: false, .. }))));
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::Connected { verified: false, .. }))));
        assert_eq!(crate::app::testing::exit(&fx), None, "a warning, not the end");

        let (_, fx) = meet_bob(true, "CC:CC");
        assert!(fx.iter().any(|e| matches!(e, Effect::Peer { command: PeerCommand::Close, .. })));
        assert!(matches!(crate::app::testing::exit(&fx), Some(Outcome::IdentityChanged(_))));
        assert!(!fx.iter().any(|e| matches!(e, Effect::Show(Notice::Connected { .. }))), "never opened");
    }

    #[test]
    fn verify_yes_remembers_the_certificate_by_name() {
        let (mut a, _) = meet_bob(false, "CC:CC");
        let fx = a.update(Event::Verify { name: "Bob".into(), confirm: false });
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::Safety { verified: false, .. }))));
        assert!(!fx.iter().any(|e| matches!(e, Effect::Remember { .. })), "showing remembers nothing");
        let fx = a.update(Event::Verify { name: "bob".into(), confirm: true });
        assert!(fx.contains(&Effect::Remember { name: "bob".into(), fingerprint: "CC:CC".into() }));
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::Safety { verified: true, .. }))));
    }
}
