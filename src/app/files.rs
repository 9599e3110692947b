//! Files, as the app sees them: what is offered to whom, what is accepted, and how each
//! transfer ended. The I/O (hashing, channels, disk) is in `crate::transfer`; this part
//! decides, and keeps the count a script's exit code comes from.
//!
//! A file goes to the members present when it is ready (or to the one named), as a
//! message does; members whose connection is still opening get it once it opens, and if
//! nobody is there yet, the first members to arrive get it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use peertalk_signal::proto::PeerId;

use super::{App, Effect, Link, Notice};
use crate::exit::Outcome;
use crate::peer::PeerCommand;
use crate::transfer::{End, FileInfo, TransferCommand, TransferEvent, TransferKey};

/// What happens to a file a peer offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptPolicy {
    /// The user answers (`/accept`, `/decline`): the interface.
    Ask,
    /// Taken at once (`--accept-files`).
    Always,
    /// Declined, with the reason (a script without `--accept-files`).
    Never,
}

/// The command line's say on files.
#[derive(Debug, Clone)]
pub struct FileSettings {
    pub accept: AcceptPolicy,
    /// Larger offers are declined (`--max-file-size`).
    pub max_size: u64,
    /// A script is done once this many offered files have ended (`--expect-files`).
    pub expect: Option<usize>,
    /// Files to send at start (`--send-file`).
    pub send: Vec<PathBuf>,
}

impl Default for FileSettings {
    /// A script that sends none and takes none.
    fn default() -> Self {
        Self { accept: AcceptPolicy::Never, max_size: u64::MAX, expect: None, send: Vec::new() }
    }
}

/// How a transfer that did not end well ended, worst last: a script's exit code is the
/// worst of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileTrouble {
    Declined,
    Cancelled,
    Failed,
}

impl FileTrouble {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Declined => "declined",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }
}

/// Transfers in both directions.
#[derive(Debug, Default)]
pub(super) struct Files {
    /// Numbers for transfers, the user's handle on them; ours double as the wire's id.
    next: u64,
    outgoing: BTreeMap<u64, OutFile>,
    incoming: BTreeMap<TransferKey, InFile>,
    /// Offers that ended, either way, and those that ended with the file here.
    ended_in: usize,
    /// Transfers that did not end well, with the sentence for each.
    troubles: Vec<(FileTrouble, String)>,
}

#[derive(Debug)]
struct OutFile {
    path: PathBuf,
    /// Known once the file is read through and hashed.
    info: Option<FileInfo>,
    /// The one member it is for, by name.
    to: Option<String>,
    /// Members it goes to.
    targets: BTreeMap<PeerId, Target>,
    /// It went out to somebody: members who join later do not get it.
    offered: bool,
}

/// A member a file of ours goes to.
#[derive(Debug)]
struct Target {
    /// Kept for the notices: the member may be gone from the room when its transfer ends.
    name: String,
    /// Its channel was asked for.
    asked: bool,
}

#[derive(Debug)]
struct InFile {
    number: u64,
    info: FileInfo,
    from: String,
    accepted: bool,
}

impl Files {
    /// Whether no transfer is still under way or waiting.
    pub(super) fn idle(&self) -> bool {
        self.outgoing.is_empty() && self.incoming.values().all(|f| !f.accepted)
    }

    /// Whether the offers a script expects have ended.
    pub(super) fn expected_in(&self, expect: Option<usize>) -> bool {
        self.ended_in >= expect.unwrap_or(0)
    }

    /// The outcome for transfers that did not end well, the worst first.
    pub(super) fn outcome(&self) -> Option<Outcome> {
        let worst = self.troubles.iter().map(|(t, _)| *t).max()?;
        let why = self.troubles.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>().join("; ");
        Some(match worst {
            FileTrouble::Declined => Outcome::FileDeclined(why),
            FileTrouble::Cancelled => Outcome::FileCancelled(why),
            FileTrouble::Failed => Outcome::FileFailed(why),
        })
    }

    /// What is unfinished, for a timeout's sentence.
    pub(super) fn unfinished(&self) -> Option<String> {
        let n = self.outgoing.len() + self.incoming.values().filter(|f| f.accepted).count();
        (n > 0).then(|| format!("{n} file transfer(s) unfinished"))
    }
}

impl App {
    /// `/send` or `--send-file`: read and hash it first; it is offered once that is done.
    pub(super) fn send_file(&mut self, path: PathBuf, to: Option<String>, fx: &mut Vec<Effect>) {
        if let Some(name) = &to
            && !self.settings.strict
            && !self
                .peers
                .values()
                .any(|p| p.in_room && p.link != Link::Gone && p.name.eq_ignore_ascii_case(name))
        {
            fx.push(Effect::Show(Notice::InputRejected {
                reason: format!("nobody called {name} is in this room (/peers lists who is)"),
            }));
            return;
        }
        self.files.next += 1;
        let id = self.files.next;
        let file = OutFile { path: path.clone(), info: None, to, targets: BTreeMap::new(), offered: false };
        self.files.outgoing.insert(id, file);
        fx.push(Effect::Transfer(TransferCommand::Prepare { id, path }));
    }

    pub(super) fn on_transfer(&mut self, event: TransferEvent, fx: &mut Vec<Effect>) {
        match event {
            TransferEvent::Prepared { id, result } => self.on_prepared(id, result.map(|p| p.info), fx),
            TransferEvent::Offered { key, info } => self.on_offered(key, info, fx),
            TransferEvent::Progress { key, bytes, rate } => {
                if let Some((number, name, size, who)) = self.describe(&key) {
                    fx.push(Effect::Show(Notice::FileProgress {
                        file: number,
                        incoming: !key.outgoing,
                        peer: key.peer,
                        who,
                        name,
                        bytes,
                        size,
                        rate,
                    }));
                }
            }
            TransferEvent::Resumed { key, offset } => {
                if let Some((number, name, size, who)) = self.describe(&key) {
                    fx.push(Effect::Show(Notice::FileResumed {
                        file: number,
                        incoming: !key.outgoing,
                        peer: key.peer,
                        who,
                        name,
                        offset,
                        size,
                    }));
                }
            }
            TransferEvent::Finished { key, end } => self.on_transfer_end(key, end, fx),
        }
    }

    fn on_prepared(&mut self, id: u64, result: Result<FileInfo, String>, fx: &mut Vec<Effect>) {
        let Some(file) = self.files.outgoing.get_mut(&id) else { return };
        match result {
            Ok(info) => {
                let name = info.name.clone();
                file.info = Some(info);
                let wanted = file.to.as_ref().map(|n| n.to_lowercase());
                let present: Vec<(&PeerId, &super::Peer)> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.in_room && p.link != Link::Gone && !p.speculative)
                    .filter(|(_, p)| wanted.as_ref().is_none_or(|n| p.name.to_lowercase() == *n))
                    .collect();
                // A page on the classic endpoint speaks plain text only.
                for (_, page) in present.iter().filter(|(_, p)| p.plain) {
                    let text = format!(
                        "{} is not peertalk and cannot take files; {name} is not sent there",
                        page.name
                    );
                    fx.push(Effect::Show(Notice::Warning { text }));
                }
                let members: Vec<PeerId> =
                    present.iter().filter(|(_, p)| !p.plain).map(|(id, _)| (*id).clone()).collect();
                if members.is_empty() {
                    let who = file.to.as_deref().unwrap_or("member");
                    let text =
                        format!("nobody is here to take {name} yet; it goes to the first {who} to arrive");
                    fx.push(Effect::Show(Notice::Warning { text }));
                }
                for peer in members {
                    self.offer_file(id, peer, fx);
                }
            }
            Err(reason) => {
                let name =
                    file.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                self.files.outgoing.remove(&id);
                self.files.troubles.push((FileTrouble::Failed, reason.clone()));
                fx.push(Effect::Show(Notice::FileFailed {
                    file: id,
                    incoming: false,
                    peer: None,
                    who: None,
                    name,
                    trouble: FileTrouble::Failed,
                    reason,
                }));
            }
        }
    }

    /// Adds a member to a file's targets, and opens its channel if the connection is open.
    fn offer_file(&mut self, id: u64, peer: PeerId, fx: &mut Vec<Effect>) {
        let (Some(file), Some(member)) = (self.files.outgoing.get_mut(&id), self.peers.get(&peer)) else {
            return;
        };
        let open = member.link == Link::Open;
        file.targets.insert(peer.clone(), Target { name: member.name.clone(), asked: open });
        if open {
            file.offered = true;
            self.open_file_channel(id, peer, false, fx);
        }
    }

    /// Asks for a channel to send file `id` to `peer` on; says so unless it resumes.
    fn open_file_channel(&self, id: u64, peer: PeerId, resuming: bool, fx: &mut Vec<Effect>) {
        if !resuming && let Some(info) = self.files.outgoing.get(&id).and_then(|f| f.info.as_ref()) {
            let who = self.peers.get(&peer).map_or_else(|| peer.0.clone(), |p| p.name.clone());
            fx.push(Effect::Show(Notice::FileOffer {
                file: id,
                incoming: false,
                peer: peer.clone(),
                who,
                name: info.name.clone(),
                size: info.size,
                sha256: info.sha256.clone(),
                ask: false,
            }));
        }
        fx.push(Effect::Peer { id: peer, command: PeerCommand::OpenFile { id } });
    }

    /// A member's channel opened: files waiting for it go out; on a connection that
    /// replaced a broken one (`reopened`), unfinished ones resume on new channels. A
    /// newcomer gets the files that have not gone to anybody yet.
    pub(super) fn files_on_open(&mut self, peer: &PeerId, reopened: bool, fx: &mut Vec<Effect>) {
        let Some(member) = self.peers.get(peer) else { return };
        if member.plain {
            return;
        }
        let display = member.name.clone();
        let name = display.to_lowercase();
        let mut due = Vec::new();
        for (id, file) in &mut self.files.outgoing {
            if file.info.is_none() {
                continue;
            }
            let newcomer = !file.offered
                && !file.targets.contains_key(peer)
                && file.to.as_ref().is_none_or(|n| n.to_lowercase() == name);
            let resuming = match file.targets.get_mut(peer) {
                Some(target) if !target.asked || reopened => std::mem::replace(&mut target.asked, true),
                None if newcomer => {
                    file.targets.insert(peer.clone(), Target { name: display.clone(), asked: true });
                    false
                }
                _ => continue,
            };
            file.offered = true;
            due.push((*id, resuming));
        }
        for (id, resuming) in due {
            self.open_file_channel(id, peer.clone(), resuming, fx);
        }
    }

    /// The connection to a member is over for good: its transfers end.
    pub(super) fn files_on_closed(&mut self, peer: &PeerId, name: &str, why: &str, fx: &mut Vec<Effect>) {
        let reason = format!("{name} {why}");
        let mut never_asked = Vec::new();
        for (id, file) in &mut self.files.outgoing {
            match file.targets.get(peer) {
                Some(Target { asked: true, .. }) => {
                    let key = TransferKey { peer: peer.clone(), id: *id, outgoing: true };
                    fx.push(Effect::Transfer(TransferCommand::Abandon { key, reason: reason.clone() }));
                }
                Some(Target { asked: false, .. }) => never_asked.push(*id),
                None => {}
            }
        }
        for id in never_asked {
            let key = TransferKey { peer: peer.clone(), id, outgoing: true };
            let reason = format!("{name} {why} before the file could be offered");
            self.on_transfer_end(key, End::Failed { reason }, fx);
        }
        for key in self.files.incoming.keys().filter(|k| k.peer == *peer) {
            fx.push(Effect::Transfer(TransferCommand::Abandon { key: key.clone(), reason: reason.clone() }));
        }
    }

    fn on_offered(&mut self, key: TransferKey, info: FileInfo, fx: &mut Vec<Effect>) {
        let Some(from) = self.peers.get(&key.peer).map(|p| p.name.clone()) else { return };
        self.files.next += 1;
        let number = self.files.next;
        fx.push(Effect::Show(Notice::FileOffer {
            file: number,
            incoming: true,
            peer: key.peer.clone(),
            who: from.clone(),
            name: info.name.clone(),
            size: info.size,
            sha256: info.sha256.clone(),
            ask: self.settings.files.accept == AcceptPolicy::Ask && info.size <= self.settings.files.max_size,
        }));
        let limit = self.settings.files.max_size;
        let decision = if info.size > limit {
            Some(Err(format!(
                "it is {}, over the receiver's limit of {} (--max-file-size)",
                human_size(info.size),
                human_size(limit)
            )))
        } else {
            match self.settings.files.accept {
                AcceptPolicy::Always => Some(Ok(())),
                AcceptPolicy::Never => Some(Err(
                    "the receiver is a script that does not take files (it runs without --accept-files)"
                        .to_owned(),
                )),
                AcceptPolicy::Ask => None,
            }
        };
        self.files.incoming.insert(key.clone(), InFile { number, info, from, accepted: false });
        match decision {
            Some(Ok(())) => self.accept(key, fx),
            Some(Err(reason)) => fx.push(Effect::Transfer(TransferCommand::Decline { key, reason })),
            None => {}
        }
    }

    fn accept(&mut self, key: TransferKey, fx: &mut Vec<Effect>) {
        if let Some(file) = self.files.incoming.get_mut(&key) {
            file.accepted = true;
            fx.push(Effect::Transfer(TransferCommand::Accept { key }));
        }
    }

    /// `/accept` or `/decline`, for offer `number` or else the oldest one waiting.
    pub(super) fn answer_offer(&mut self, number: Option<u64>, accept: bool, fx: &mut Vec<Effect>) {
        let waiting = self
            .files
            .incoming
            .iter()
            .filter(|(_, f)| !f.accepted)
            .find(|(_, f)| number.is_none_or(|n| f.number == n))
            .map(|(key, _)| key.clone());
        let Some(key) = waiting else {
            let text = match number {
                Some(n) => format!("no file offer #{n} is waiting for an answer"),
                None => "no file offer is waiting for an answer".to_owned(),
            };
            return fx.push(Effect::Show(Notice::Warning { text }));
        };
        if accept {
            self.accept(key, fx);
        } else {
            let reason = format!("{} declined it", self.settings.name);
            fx.push(Effect::Transfer(TransferCommand::Decline { key, reason }));
        }
    }

    /// `/cancel`: transfer `number`, or else every transfer under way.
    pub(super) fn cancel_files(&mut self, number: Option<u64>, fx: &mut Vec<Effect>) {
        let reason = format!("{} cancelled it", self.settings.name);
        let mut keys: Vec<TransferKey> = self
            .files
            .incoming
            .iter()
            .filter(|(_, f)| number.is_none_or(|n| f.number == n))
            .map(|(key, _)| key.clone())
            .collect();
        let mut never_asked = Vec::new();
        // Files still being hashed, or waiting for somebody to join.
        let mut unsent = Vec::new();
        for (id, file) in &self.files.outgoing {
            if number.is_some_and(|n| n != *id) {
                continue;
            }
            for (peer, target) in &file.targets {
                let key = TransferKey { peer: peer.clone(), id: *id, outgoing: true };
                if target.asked { keys.push(key) } else { never_asked.push(key) }
            }
            if file.targets.is_empty() {
                unsent.push(*id);
            }
        }
        if keys.is_empty() && never_asked.is_empty() && unsent.is_empty() {
            let text = match number {
                Some(n) => format!("there is no file transfer #{n} to cancel"),
                None => "there is no file transfer to cancel".to_owned(),
            };
            return fx.push(Effect::Show(Notice::Warning { text }));
        }
        for key in keys {
            fx.push(Effect::Transfer(TransferCommand::Cancel { key, reason: reason.clone() }));
        }
        for key in never_asked {
            self.on_transfer_end(key, End::Cancelled { reason: reason.clone(), by_us: true }, fx);
        }
        for id in unsent {
            if let Some(file) = self.files.outgoing.remove(&id) {
                let name =
                    file.path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                self.files
                    .troubles
                    .push((FileTrouble::Cancelled, format!("{name} was cancelled before it was offered")));
                fx.push(Effect::Show(Notice::FileFailed {
                    file: id,
                    incoming: false,
                    peer: None,
                    who: None,
                    name,
                    trouble: FileTrouble::Cancelled,
                    reason: reason.clone(),
                }));
                fx.push(Effect::Transfer(TransferCommand::Release { id }));
            }
        }
    }

    fn on_transfer_end(&mut self, key: TransferKey, end: End, fx: &mut Vec<Effect>) {
        let (number, info, who) = if key.outgoing {
            let Some(file) = self.files.outgoing.get_mut(&key.id) else { return };
            let Some(target) = file.targets.remove(&key.peer) else { return };
            let Some(info) = file.info.clone() else { return };
            if file.targets.is_empty() {
                self.files.outgoing.remove(&key.id);
                fx.push(Effect::Transfer(TransferCommand::Release { id: key.id }));
            }
            (key.id, info, target.name)
        } else {
            let Some(file) = self.files.incoming.remove(&key) else { return };
            self.files.ended_in += 1;
            (file.number, file.info, file.from)
        };
        let incoming = !key.outgoing;
        let trouble = match &end {
            End::Done { path, sent } => {
                return fx.push(Effect::Show(Notice::FileDone {
                    file: number,
                    incoming,
                    peer: key.peer,
                    who,
                    name: info.name,
                    size: info.size,
                    sha256: info.sha256,
                    path: path.as_ref().map(|p| p.display().to_string()),
                    sent: *sent,
                }));
            }
            End::Declined { .. } => FileTrouble::Declined,
            End::Cancelled { .. } => FileTrouble::Cancelled,
            End::Failed { .. } => FileTrouble::Failed,
        };
        let (End::Declined { reason, .. } | End::Cancelled { reason, .. } | End::Failed { reason }) = end
        else {
            return;
        };
        let declined_here = incoming && trouble == FileTrouble::Declined;
        // A receiver that declined did what it was set to do; a script expecting files
        // that did not get them did not.
        if !declined_here || self.settings.files.expect.is_some() {
            let sentence = if incoming {
                format!("{} from {who} {}: {reason}", info.name, trouble.as_str())
            } else {
                format!("{} to {who} {}: {reason}", info.name, trouble.as_str())
            };
            self.files.troubles.push((trouble, sentence));
        }
        fx.push(Effect::Show(Notice::FileFailed {
            file: number,
            incoming,
            peer: Some(key.peer),
            who: Some(who),
            name: info.name,
            trouble,
            reason,
        }));
    }

    /// A transfer's number, file name, size and member, for a notice.
    fn describe(&self, key: &TransferKey) -> Option<(u64, String, u64, String)> {
        if key.outgoing {
            let file = self.files.outgoing.get(&key.id)?;
            let info = file.info.as_ref()?;
            Some((key.id, info.name.clone(), info.size, file.targets.get(&key.peer)?.name.clone()))
        } else {
            let file = self.files.incoming.get(key)?;
            Some((file.number, file.info.name.clone(), file.info.size, file.from.clone()))
        }
    }
}

/// A size as people read it: `1.5 MiB`.
#[must_use]
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut size = bytes as f64;
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} bytes") } else { format!("{size:.1} {}", UNITS[unit]) }
}

#[cfg(test)]
mod tests {
    use peertalk_signal::proto::PeerInfo;

    use super::*;
    use crate::app::testing::exit;
    use crate::app::{Event, Settings};
    use crate::peer::PeerEvent;
    use crate::transfer::Prepared;

    /// Alice in #demo, alone until a test brings members in.
    fn app(accept: AcceptPolicy) -> App {
        let files = FileSettings { accept, max_size: 1000, expect: None, send: Vec::new() };
        let mut a = App::new(Settings { files, ..crate::app::testing::settings() });
        a.update(Event::Welcome { me: pid("p0"), peers: vec![] });
        a
    }

    fn pid(s: &str) -> PeerId {
        PeerId(s.into())
    }

    fn info(size: u64) -> FileInfo {
        FileInfo { name: "a.bin".into(), size, sha256: "ab".repeat(32), mime: None }
    }

    fn join(a: &mut App, id: &str, name: &str) -> Vec<Effect> {
        a.update(Event::PeerJoined {
            peer: PeerInfo { id: pid(id), name: name.into() },
            offer: false,
            page: false,
        });
        a.update(Event::Peer { id: pid(id), event: PeerEvent::Open { plain: false } })
    }

    fn opened_files(fx: &[Effect]) -> Vec<(PeerId, u64)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Peer { id, command: PeerCommand::OpenFile { id: file } } => Some((id.clone(), *file)),
                _ => None,
            })
            .collect()
    }

    fn transfer_commands(fx: &[Effect]) -> Vec<TransferCommand> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Transfer(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// Sends a file of `size` bytes as transfer 1 and reports it prepared.
    fn send(a: &mut App, size: u64) -> Vec<Effect> {
        let fx = a.update(Event::SendFile { to: None, path: "a.bin".into() });
        assert_eq!(transfer_commands(&fx), [TransferCommand::Prepare { id: 1, path: "a.bin".into() }]);
        let prepared = Prepared { path: "a.bin".into(), info: info(size) };
        a.update(Event::Transfer(TransferEvent::Prepared { id: 1, result: Ok(prepared) }))
    }

    fn offered(a: &mut App, from: &str, size: u64) -> Vec<Effect> {
        let key = TransferKey { peer: pid(from), id: 7, outgoing: false };
        a.update(Event::Transfer(TransferEvent::Offered { key, info: info(size) }))
    }

    #[test]
    fn a_script_without_accept_files_declines_saying_how_to_take_them() {
        let mut a = app(AcceptPolicy::Never);
        join(&mut a, "p1", "bob");
        let commands = transfer_commands(&offered(&mut a, "p1", 10));
        assert!(
            matches!(&commands[..], [TransferCommand::Decline { reason, .. }] if reason.contains("--accept-files")),
            "{commands:?}"
        );
    }

    #[test]
    fn an_offer_over_the_limit_is_declined_naming_both_sizes_even_when_files_are_taken() {
        let mut a = app(AcceptPolicy::Always);
        join(&mut a, "p1", "bob");
        let commands = transfer_commands(&offered(&mut a, "p1", 5000));
        assert!(
            matches!(&commands[..], [TransferCommand::Decline { reason, .. }]
                if reason.contains("4.9 KiB") && reason.contains("1000 bytes")),
            "{commands:?}"
        );
        let commands = transfer_commands(&offered(&mut a, "p1", 1000));
        assert!(matches!(&commands[..], [TransferCommand::Accept { .. }]), "{commands:?}");
    }

    #[test]
    fn the_interface_asks_and_accept_takes_the_oldest_offer_waiting() {
        let mut a = app(AcceptPolicy::Ask);
        join(&mut a, "p1", "bob");
        let fx = offered(&mut a, "p1", 10);
        assert!(transfer_commands(&fx).is_empty(), "nothing decided yet");
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::FileOffer { ask: true, file: 1, .. }))));
        let fx = a.update(Event::AnswerOffer { file: None, accept: true });
        assert!(matches!(&transfer_commands(&fx)[..], [TransferCommand::Accept { .. }]));
        let fx = a.update(Event::AnswerOffer { file: None, accept: false });
        assert!(fx.iter().any(|e| matches!(e, Effect::Show(Notice::Warning { .. }))), "nothing else waits");
    }

    #[test]
    fn a_file_sent_before_anyone_is_here_goes_to_the_first_member_only() {
        let mut a = app(AcceptPolicy::Never);
        assert!(opened_files(&send(&mut a, 10)).is_empty());
        assert_eq!(opened_files(&join(&mut a, "p1", "bob")), [(pid("p1"), 1)]);
        assert!(opened_files(&join(&mut a, "p2", "cid")).is_empty(), "it went out already");
    }

    #[test]
    fn a_file_with_nobody_to_take_it_says_it_waits_for_the_first_to_arrive() {
        let mut a = app(AcceptPolicy::Never);
        let fx = send(&mut a, 10);
        assert!(
            fx.iter().any(|e| matches!(e, Effect::Show(Notice::Warning { text }) if text.contains("first member to arrive"))),
            "{fx:?}"
        );
    }

    #[test]
    fn a_replaced_connection_resumes_unfinished_transfers_on_new_channels() {
        let mut a = app(AcceptPolicy::Never);
        join(&mut a, "p1", "bob");
        assert_eq!(opened_files(&send(&mut a, 10)), [(pid("p1"), 1)]);
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Open { plain: false } });
        assert_eq!(opened_files(&fx), [(pid("p1"), 1)], "the transfer asks for a new channel");
        assert!(!fx.iter().any(|e| matches!(e, Effect::Show(Notice::FileOffer { .. }))), "not offered anew");
    }

    #[test]
    fn a_sender_waits_for_every_receiver_and_exits_with_the_worst_ending() {
        let mut a = app(AcceptPolicy::Never);
        join(&mut a, "p1", "bob");
        join(&mut a, "p2", "cid");
        assert_eq!(opened_files(&send(&mut a, 10)).len(), 2);
        a.update(Event::InputClosed);
        let done = End::Done { path: None, sent: 10 };
        let key = |p: &str| TransferKey { peer: pid(p), id: 1, outgoing: true };
        let fx = a.update(Event::Transfer(TransferEvent::Finished { key: key("p1"), end: done }));
        assert_eq!(exit(&fx), None, "cid has not answered");
        let declined = End::Declined { reason: "no thanks".into(), by_us: false };
        let fx = a.update(Event::Transfer(TransferEvent::Finished { key: key("p2"), end: declined }));
        assert!(
            matches!(exit(&fx), Some(Outcome::FileDeclined(why)) if why == "a.bin to cid declined: no thanks")
        );
        assert!(transfer_commands(&fx).contains(&TransferCommand::Release { id: 1 }));
    }

    #[test]
    fn a_transfer_that_ends_after_its_member_left_still_names_the_member() {
        let mut a = app(AcceptPolicy::Never);
        join(&mut a, "p1", "bob");
        send(&mut a, 10);
        a.update(Event::PeerLeft(pid("p1")));
        a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Closed });
        let key = TransferKey { peer: pid("p1"), id: 1, outgoing: true };
        let cancelled = End::Cancelled { reason: "bob cancelled it".into(), by_us: false };
        let fx = a.update(Event::Transfer(TransferEvent::Finished { key, end: cancelled }));
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Show(Notice::FileFailed { who: Some(w), .. }) if w == "bob")),
            "{fx:?}"
        );
    }

    #[test]
    fn a_member_that_leaves_mid_transfer_has_its_transfer_abandoned() {
        let mut a = app(AcceptPolicy::Never);
        join(&mut a, "p1", "bob");
        send(&mut a, 10);
        a.update(Event::PeerLeft(pid("p1")));
        let fx = a.update(Event::Peer { id: pid("p1"), event: PeerEvent::Closed });
        let key = TransferKey { peer: pid("p1"), id: 1, outgoing: true };
        assert_eq!(transfer_commands(&fx), [TransferCommand::Abandon { key, reason: "bob left".into() }]);
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(999), "999 bytes");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(50 * 1024 * 1024), "50.0 MiB");
    }
}
