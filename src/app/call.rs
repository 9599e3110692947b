//! The call: whether we send our audio, and to whom. Each side decides for itself;
//! `/call` adds our track to every open connection (and to those that open later),
//! `/hangup` removes it, and the chat carries on either way.

use super::{App, Effect, Link, Notice};
use crate::audio::AudioEvent;
use crate::peer::PeerCommand;

/// What the app asks of the audio engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioAction {
    /// Start the source (microphone or file): a peer can take our packets now.
    Start,
    Stop,
    Mute(bool),
}

/// Our side of the call, as the user is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// Asked for; waiting for a connection to negotiate the track.
    Calling,
    /// Our audio goes out, from `source`.
    Live { source: String },
    /// We stopped sending, for this reason.
    Ended { reason: String },
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Call {
    /// The user wants to send audio.
    pub(super) wanted: bool,
    /// The engine was asked to start its source.
    started: bool,
    muted: bool,
}

impl App {
    pub(super) fn start_call(&mut self, fx: &mut Vec<Effect>) {
        if self.call.wanted {
            fx.push(Effect::Show(Notice::Warning { text: "already in a call; /hangup ends it".to_owned() }));
            return;
        }
        self.call.wanted = true;
        fx.push(Effect::Show(Notice::Call(CallState::Calling)));
        for id in self.open_peers() {
            fx.push(Effect::Peer { id, command: PeerCommand::AddAudio });
        }
    }

    pub(super) fn hang_up(&mut self, fx: &mut Vec<Effect>) {
        if !self.call.wanted {
            fx.push(Effect::Show(Notice::Warning { text: "not in a call; /call starts one".to_owned() }));
            return;
        }
        self.end_call("hung up".to_owned(), fx);
    }

    pub(super) fn toggle_mute(&mut self, fx: &mut Vec<Effect>) {
        self.call.muted = !self.call.muted;
        fx.push(Effect::Audio(AudioAction::Mute(self.call.muted)));
        fx.push(Effect::Show(Notice::Muted { muted: self.call.muted }));
    }

    /// A connection negotiated our track: the first one starts the source, so a file
    /// is sent from its beginning to someone who can hear it.
    pub(super) fn on_sending_audio(&mut self, sending: bool, fx: &mut Vec<Effect>) {
        if sending && self.call.wanted && !self.call.started {
            self.call.started = true;
            fx.push(Effect::Audio(AudioAction::Start));
        }
    }

    pub(super) fn on_audio(&mut self, event: AudioEvent, fx: &mut Vec<Effect>) {
        match event {
            AudioEvent::Started { source } => {
                if self.call.wanted {
                    fx.push(Effect::Show(Notice::Call(CallState::Live { source })));
                }
            }
            AudioEvent::SourceEnded => {
                if self.call.wanted {
                    self.end_call("the whole --audio-in file was sent".to_owned(), fx);
                }
            }
            AudioEvent::Unavailable(why) => {
                if self.call.wanted {
                    self.end_call(format!("{why}; the chat goes on without audio"), fx);
                } else {
                    fx.push(Effect::Show(Notice::Warning { text: why }));
                }
            }
            AudioEvent::Level { peer, dbfs } => fx.push(Effect::Show(Notice::AudioLevel { peer, dbfs })),
        }
    }

    fn end_call(&mut self, reason: String, fx: &mut Vec<Effect>) {
        self.call.wanted = false;
        self.call.started = false;
        fx.push(Effect::Audio(AudioAction::Stop));
        for (id, peer) in &self.peers {
            if peer.link != Link::Gone {
                fx.push(Effect::Peer { id: id.clone(), command: PeerCommand::RemoveAudio });
            }
        }
        fx.push(Effect::Show(Notice::Call(CallState::Ended { reason })));
    }

    fn open_peers(&self) -> Vec<peertalk_signal::proto::PeerId> {
        self.peers.iter().filter(|(_, p)| p.link == Link::Open).map(|(id, _)| id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use peertalk_signal::proto::{PeerId, PeerInfo};

    use super::*;
    use crate::app::{Event, Settings};
    use crate::peer::PeerEvent;

    fn app(call_at_start: bool, audio_from_file: bool) -> App {
        App::new(Settings { call_at_start, audio_from_file, ..crate::app::testing::settings() })
    }

    fn bob() -> PeerId {
        PeerId("p1".into())
    }

    fn joined_with_bob(a: &mut App) -> Vec<Effect> {
        let mut fx = a.update(Event::Welcome {
            me: PeerId("p9".into()),
            peers: vec![PeerInfo { id: bob(), name: "bob".into() }],
        });
        fx.extend(a.update(Event::Peer { id: bob(), event: PeerEvent::Open { plain: false } }));
        fx
    }

    fn audio_commands(fx: &[Effect]) -> Vec<PeerCommand> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Peer { command: c @ (PeerCommand::AddAudio | PeerCommand::RemoveAudio), .. } => {
                    Some(c.clone())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn call_adds_the_track_and_the_first_negotiated_track_starts_the_source() {
        let mut a = app(false, false);
        joined_with_bob(&mut a);
        let fx = a.update(Event::Call);
        assert_eq!(audio_commands(&fx), [PeerCommand::AddAudio]);
        assert!(fx.contains(&Effect::Show(Notice::Call(CallState::Calling))));
        let fx = a.update(Event::Peer { id: bob(), event: PeerEvent::SendingAudio(true) });
        assert_eq!(fx, [Effect::Audio(AudioAction::Start)]);
        let fx = a.update(Event::Peer { id: bob(), event: PeerEvent::SendingAudio(true) });
        assert!(fx.is_empty(), "started once");
        let fx = a.update(Event::Hangup);
        assert_eq!(audio_commands(&fx), [PeerCommand::RemoveAudio]);
        assert!(fx.contains(&Effect::Audio(AudioAction::Stop)));
    }

    #[test]
    fn audio_at_start_reaches_peers_as_they_open() {
        let mut a = app(true, false);
        let fx = joined_with_bob(&mut a);
        assert_eq!(audio_commands(&fx), [PeerCommand::AddAudio]);
    }

    #[test]
    fn a_script_sending_a_file_is_done_once_the_file_is_sent() {
        let mut a = app(true, true);
        joined_with_bob(&mut a);
        let fx = a.update(Event::InputClosed);
        assert!(!fx.iter().any(|e| matches!(e, Effect::Exit(_))), "still sending the file");
        let fx = a.update(Event::Audio(AudioEvent::SourceEnded));
        assert!(fx.iter().any(|e| matches!(e, Effect::Exit(_))), "{fx:?}");
    }

    #[test]
    fn no_microphone_ends_the_call_and_keeps_the_chat() {
        let mut a = app(true, false);
        joined_with_bob(&mut a);
        let fx = a.update(Event::Audio(AudioEvent::Unavailable("no microphone was found".into())));
        assert!(
            fx.iter().any(|e| matches!(e, Effect::Show(Notice::Call(CallState::Ended { reason })) if reason.contains("chat goes on"))),
            "{fx:?}"
        );
        let fx = a.update(Event::Input { text: "still here".into(), ts: 1 });
        assert!(fx.iter().any(|e| matches!(e, Effect::Peer { command: PeerCommand::Send(_), .. })));
    }

    #[test]
    fn mute_toggles() {
        let mut a = app(false, false);
        assert!(a.update(Event::Mute).contains(&Effect::Audio(AudioAction::Mute(true))));
        assert!(a.update(Event::Mute).contains(&Effect::Audio(AudioAction::Mute(false))));
    }
}
