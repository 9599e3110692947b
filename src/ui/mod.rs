//! The terminal interface: a [`Frontend`] for the session loop. Terminal events are read
//! in [`Frontend::next_input`], so keys, network events and redraws all go through the
//! session's one `select!`; the screen is redrawn only when something changed.

mod complete;
pub mod input;
pub mod render;
mod terminal;
pub mod view;

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use crossterm::event::{Event as TermEvent, EventStream, MouseEventKind};
use futures_util::StreamExt;

use self::input::{Action, Editor};
use self::terminal::Guard;
use self::view::{Tone, View};
use crate::app::Notice;
use crate::cli::Config;
use crate::command::{self, Command};
use crate::exit::Outcome;
use crate::session::{self, Frontend, UserInput, now_ms};

/// Lines the mouse wheel scrolls per notch.
const WHEEL_LINES: isize = 3;

/// Runs the chat in the terminal interface.
pub async fn run(config: Config) -> Outcome {
    let guard = match Guard::enter() {
        Ok(guard) => guard,
        Err(e) => return Outcome::Internal(format!("could not set up the terminal: {e}")),
    };
    let utc_offset_secs = chrono::Local::now().offset().local_minus_utc();
    let mut tui = Tui {
        guard,
        events: EventStream::new(),
        view: View::new(&config.room, &config.name),
        editor: Editor::default(),
        utc_offset_secs,
        sent_at: HashMap::new(),
        dirty: true,
    };
    tui.redraw();
    session::run(config, &mut tui).await
}

struct Tui {
    guard: Guard,
    events: EventStream,
    view: View,
    editor: Editor,
    utc_offset_secs: i32,
    /// When each own message was sent, to measure the round trip to its acknowledgement.
    sent_at: HashMap<u64, Instant>,
    dirty: bool,
}

impl Tui {
    fn redraw(&mut self) {
        let (view, editor, offset) = (&self.view, &self.editor, self.utc_offset_secs);
        // A failed draw leaves the old frame; the next change draws again.
        let _ = self.guard.screen.draw(|frame| render::draw(frame, view, editor, offset));
        self.dirty = false;
    }

    fn say(&mut self, text: impl Into<String>, tone: Tone) {
        self.view.say(text, tone, now_ms());
    }

    fn scroll(&mut self, lines: isize) {
        self.view.scroll_by(lines);
        if let Ok(size) = self.guard.screen.size() {
            let area = ratatui::layout::Rect::new(0, 0, size.width, size.height);
            let max = render::max_scroll(&self.view, area, self.utc_offset_secs);
            self.view.clamp_scroll(max);
        }
    }

    /// Runs a command line locally; returns what the session must do, if anything.
    fn command(&mut self, command: Command) -> Option<UserInput> {
        match command {
            Command::Quit => return Some(UserInput::Quit),
            Command::Nick(name) => return Some(UserInput::Rename(name)),
            Command::Msg { to, text } => return Some(UserInput::Private { to, text }),
            Command::Call => return Some(UserInput::Call),
            Command::Hangup => return Some(UserInput::Hangup),
            Command::Mute => return Some(UserInput::Mute),
            Command::Send(args) => {
                let (to, path) = command::send_target(&args, std::path::Path::is_file);
                return Some(UserInput::SendFile { to, path });
            }
            Command::Answer { file, accept } => return Some(UserInput::AnswerOffer { file, accept }),
            Command::Cancel(file) => return Some(UserInput::CancelFile(file)),
            Command::Verify { name, confirm } => return Some(UserInput::Verify { name, confirm }),
            Command::Help => command::help().into_iter().for_each(|line| self.say(line, Tone::Info)),
            Command::Peers => {
                let lines: Vec<String> = if self.view.peers.is_empty() {
                    vec!["nobody else is in the room".to_owned()]
                } else {
                    self.view
                        .peers
                        .iter()
                        .map(|(id, p)| {
                            let path = p.path.as_ref().map_or_else(String::new, |p| {
                                format!(", {} path over {}", p.kind(), p.protocol)
                            });
                            format!("{} ({id}): {}{path}", p.name, p.state)
                        })
                        .collect()
                };
                lines.into_iter().for_each(|line| self.say(line, Tone::Info));
            }
            Command::Clear => self.view.clear(),
            Command::Members => self.view.panel = !self.view.panel,
            Command::Info(id) => {
                let line = self.view.receipt(id);
                self.say(line, Tone::Info);
            }
            Command::Unknown(why) => {
                self.say(why, Tone::Error);
                command::help().into_iter().for_each(|line| self.say(line, Tone::Info));
            }
        }
        None
    }

    fn page(&self) -> isize {
        self.guard
            .screen
            .size()
            .map_or(10, |s| isize::try_from(s.height.saturating_sub(3).max(1)).unwrap_or(10))
    }
}

impl Frontend for Tui {
    async fn next_input(&mut self) -> UserInput {
        loop {
            // The only await: everything after it is synchronous, so dropping this future
            // for another event loses nothing.
            let Some(Ok(event)) = self.events.next().await else { return UserInput::Quit };
            match event {
                TermEvent::Key(key) => match self.editor.key(key) {
                    Action::None => {}
                    Action::Quit => return UserInput::Quit,
                    Action::TogglePanel => {
                        self.view.panel = !self.view.panel;
                        self.dirty = true;
                    }
                    Action::Page(pages) => self.scroll(pages * self.page()),
                    Action::Answer(accept) => return UserInput::AnswerOffer { file: None, accept },
                    Action::Complete => {
                        if self.editor.at_end()
                            && let Some(line) = complete::send_line(&self.editor.text())
                        {
                            self.editor.set_text(&line);
                        }
                    }
                    Action::Submit(line) => match command::parse(&line) {
                        None => {
                            self.view.scroll_to_bottom();
                            return UserInput::Line(command::unescape(&line).to_owned());
                        }
                        Some(command) => {
                            if let Some(input) = self.command(command) {
                                return input;
                            }
                        }
                    },
                },
                TermEvent::Paste(text) => self.editor.paste(&text),
                TermEvent::Mouse(mouse) => match mouse.kind {
                    MouseEventKind::ScrollUp => self.scroll(WHEEL_LINES),
                    MouseEventKind::ScrollDown => self.scroll(-WHEEL_LINES),
                    _ => continue,
                },
                TermEvent::Resize(..) => {}
                _ => continue,
            }
            self.redraw();
        }
    }

    fn paced(&self) -> bool {
        false
    }

    async fn show(&mut self, notice: &Notice) -> io::Result<()> {
        match notice {
            Notice::Sent { id, .. } => {
                self.sent_at.insert(*id, Instant::now());
            }
            Notice::Delivered { id, .. } => {
                if let Some(sent) = self.sent_at.remove(id) {
                    self.view.rtt_ms = Some(sent.elapsed().as_secs_f64() * 1e3);
                }
            }
            Notice::Undelivered { ids, .. } => {
                for id in ids {
                    self.sent_at.remove(id);
                }
            }
            _ => {}
        }
        self.view.apply(notice, now_ms());
        self.dirty = true;
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.dirty {
            self.redraw();
        }
        Ok(())
    }
}
