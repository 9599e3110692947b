//! The terminal interface: a [`Frontend`] for the session loop. Terminal events are read
//! in [`Frontend::next_input`], so keys, network events and redraws all go through the
//! session's one `select!`; the screen is redrawn only when something changed.

mod complete;
pub mod input;
mod links;
pub mod notify;
pub mod render;
mod terminal;
pub mod theme;
pub mod view;

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use crossterm::event::{Event as TermEvent, EventStream, MouseEventKind};
use futures_util::StreamExt;

use self::input::{Action, Editor};
use self::render::Look;
use self::terminal::Guard;
use self::theme::Palette;
use self::view::{Tone, View};
use crate::app::Notice;
use crate::cli::{Config, Notify};
use crate::command::{self, Command};
use crate::exit::Outcome;
use crate::session::{self, Frontend, UserInput, now_ms};

/// Lines the mouse wheel scrolls per notch.
const WHEEL_LINES: isize = 3;

/// Runs the chat in the terminal interface.
pub async fn run(config: Config) -> Outcome {
    let guard = match Guard::enter(config.mouse) {
        Ok(guard) => guard,
        Err(e) => return Outcome::Internal(format!("could not set up the terminal: {e}")),
    };
    let look = Look {
        palette: Palette::new(config.theme),
        utc_offset_secs: chrono::Local::now().offset().local_minus_utc(),
        links: links_supported(),
    };
    let mut tui = Tui {
        guard,
        events: EventStream::new(),
        view: View::new(&config.room, &config.name),
        editor: Editor::default(),
        look,
        notify: config.notify,
        title: String::new(),
        sent_at: HashMap::new(),
        dirty: true,
    };
    tui.redraw();
    session::run(config, &mut tui).await
}

/// Terminals that draw OSC 8 hyperlinks, or at least skip them: all but the Linux console
/// and dumb ones.
fn links_supported() -> bool {
    !matches!(std::env::var("TERM").as_deref(), Ok("linux" | "dumb"))
}

struct Tui {
    guard: Guard,
    events: EventStream,
    view: View,
    editor: Editor,
    look: Look,
    notify: Notify,
    /// The terminal title last set.
    title: String,
    /// When each own message was sent, to measure the round trip to its acknowledgement.
    sent_at: HashMap<u64, Instant>,
    dirty: bool,
}

impl Tui {
    fn redraw(&mut self) {
        let (view, editor, look) = (&self.view, &self.editor, &self.look);
        // A failed draw leaves the old frame; the next change draws again.
        let _ = self.guard.screen.draw(|frame| render::draw(frame, view, editor, look));
        let title = self.view.title();
        if title != self.title {
            let _ =
                crossterm::execute!(self.guard.screen.backend_mut(), crossterm::terminal::SetTitle(&title));
            self.title = title;
        }
        self.dirty = false;
    }

    /// Rings or notifies, as --notify says, for a message that wants attention.
    fn alert(&mut self, from: &str, text: &str) {
        use std::io::Write as _;
        let bytes = notify::sequence(self.notify, &format!("peertalk #{}", self.view.room), from, text);
        if !bytes.is_empty() {
            let backend = self.guard.screen.backend_mut();
            let _ = backend.write_all(&bytes).and_then(|()| backend.flush());
        }
    }

    /// Shows the search's current hit.
    fn show_hit(&mut self) {
        let Some(index) = self.view.search.as_ref().and_then(view::Search::entry) else { return };
        if let Ok(size) = self.guard.screen.size() {
            let area = ratatui::layout::Rect::new(0, 0, size.width, size.height);
            self.view.scroll = render::scroll_to_entry(&self.view, index, area, &self.look);
            self.view.clamp_scroll(render::max_scroll(&self.view, area, &self.look));
        }
    }

    fn say(&mut self, text: impl Into<String>, tone: Tone) {
        self.view.say(text, tone, now_ms());
    }

    fn scroll(&mut self, lines: isize) {
        self.view.scroll_by(lines);
        if let Ok(size) = self.guard.screen.size() {
            let area = ratatui::layout::Rect::new(0, 0, size.width, size.height);
            let max = render::max_scroll(&self.view, area, &self.look);
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
            Command::Search(query) => {
                self.view.search(&query);
                if query.is_empty() {
                    self.view.scroll_to_bottom();
                } else {
                    self.show_hit();
                }
            }
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
                    Action::Search(older) => {
                        if self.view.search.is_some() {
                            self.view.search_step(older);
                            self.show_hit();
                        } else {
                            let typed = self.editor.text();
                            let query = typed.strip_prefix("/search").unwrap_or(&typed).trim();
                            if query.is_empty() {
                                self.editor.set_text("/search ");
                            } else if !query.starts_with('/') {
                                // What is typed is the query, as in a shell's Ctrl-R.
                                self.view.search(query);
                                self.editor.set_text("");
                                self.show_hit();
                            }
                        }
                    }
                    Action::Escape => {
                        if self.view.search.take().is_some() {
                            self.view.scroll_to_bottom();
                        }
                    }
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
                TermEvent::FocusGained => self.view.focus(true),
                TermEvent::FocusLost => self.view.focus(false),
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
        if self.notify != Notify::Off
            && let Some((from, text)) = self.view.attention(notice)
        {
            let (from, text) = (from.to_owned(), text.to_owned());
            self.alert(&from, &text);
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
