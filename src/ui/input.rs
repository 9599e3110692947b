//! The input line: editing keys, history, and pastes. Plain state, no terminal I/O;
//! [`Editor::key`] turns a key into an edit or an [`Action`].

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use unicode_width::UnicodeWidthChar;

/// How many sent lines Up/Down can recall.
const HISTORY: usize = 500;

/// What a key asks of the rest of the interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond the edit itself.
    None,
    /// Enter on a non-empty line: send it (or run it, if it is a command).
    Submit(String),
    /// Scroll the conversation by this many pages (positive is up).
    Page(isize),
    /// Ctrl-C, or Ctrl-D on an empty line.
    Quit,
    /// F2: show or hide the members panel.
    TogglePanel,
    /// Tab: complete the path being typed.
    Complete,
    /// Alt-Y (true) or Alt-N: accept or decline the oldest file offer waiting.
    Answer(bool),
    /// Ctrl-R (true: older) or Ctrl-S (newer): search, or step through the hits.
    Search(bool),
    /// Esc: end the search.
    Escape,
}

/// The line being typed, with a cursor that counts characters.
#[derive(Debug, Default, Clone)]
pub struct Editor {
    text: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Position in history while browsing with Up/Down; `None` when editing fresh text.
    recall: Option<usize>,
    /// What was typed before browsing history, restored by Down past the newest entry.
    draft: Vec<char>,
}

impl Editor {
    /// The current text.
    #[must_use]
    pub fn text(&self) -> String {
        self.text.iter().collect()
    }

    /// The cursor's column in display cells (wide characters count two), with newlines
    /// shown as one cell.
    #[must_use]
    pub fn cursor_column(&self) -> usize {
        self.text[..self.cursor].iter().map(|c| display_width(*c)).sum()
    }

    /// The text as shown on one line, newlines as `⏎`.
    #[must_use]
    pub fn display(&self) -> String {
        self.text.iter().map(|c| if *c == '\n' { '⏎' } else { *c }).collect()
    }

    /// Inserts pasted text at the cursor; newlines stay, so a multi-line paste is sent
    /// as one message.
    pub fn paste(&mut self, text: &str) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        for c in text.chars().filter(|c| *c == '\n' || !c.is_control()) {
            self.insert(c);
        }
    }

    /// Applies one key.
    pub fn key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Enter if alt => self.insert('\n'),
            KeyCode::Enter => return self.submit(),
            KeyCode::Char('c') if ctrl => return Action::Quit,
            KeyCode::Char('d') if ctrl && self.text.is_empty() => return Action::Quit,
            KeyCode::Char('d') if ctrl => self.delete(),
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.text.len(),
            KeyCode::Char('w') if ctrl => self.delete_word_back(),
            KeyCode::Char('u') if ctrl => {
                self.text.drain(..self.cursor);
                self.cursor = 0;
            }
            KeyCode::Char('k') if ctrl => self.text.truncate(self.cursor),
            KeyCode::Char('y' | 'Y') if alt => return Action::Answer(true),
            KeyCode::Char('n' | 'N') if alt => return Action::Answer(false),
            KeyCode::Tab => return Action::Complete,
            KeyCode::Char('b') if alt => self.cursor = self.word_back(),
            KeyCode::Char('f') if alt => self.cursor = self.word_forward(),
            KeyCode::Char(c) if !ctrl => self.insert(c),
            KeyCode::Backspace if alt => self.delete_word_back(),
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.text.remove(self.cursor);
            }
            KeyCode::Delete => self.delete(),
            KeyCode::Left if ctrl || alt => self.cursor = self.word_back(),
            KeyCode::Right if ctrl || alt => self.cursor = self.word_forward(),
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.text.len()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.text.len(),
            KeyCode::Up => self.recall_older(),
            KeyCode::Down => self.recall_newer(),
            KeyCode::F(2) => return Action::TogglePanel,
            KeyCode::Char('r') if ctrl => return Action::Search(true),
            KeyCode::Char('s') if ctrl => return Action::Search(false),
            KeyCode::Esc => return Action::Escape,
            KeyCode::PageUp => return Action::Page(1),
            KeyCode::PageDown => return Action::Page(-1),
            _ => {}
        }
        Action::None
    }

    /// Replaces the text, with the cursor at its end (a completion).
    pub fn set_text(&mut self, text: &str) {
        self.text = text.chars().collect();
        self.cursor = self.text.len();
    }

    /// Whether the cursor is at the end of the text.
    #[must_use]
    pub fn at_end(&self) -> bool {
        self.cursor == self.text.len()
    }

    fn insert(&mut self, c: char) {
        self.text.insert(self.cursor, c);
        self.cursor += 1;
    }

    fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    fn submit(&mut self) -> Action {
        let text = self.text();
        if text.trim().is_empty() {
            return Action::None;
        }
        if self.history.last() != Some(&text) {
            self.history.push(text.clone());
            if self.history.len() > HISTORY {
                self.history.remove(0);
            }
        }
        self.text.clear();
        self.cursor = 0;
        self.recall = None;
        Action::Submit(text)
    }

    fn delete_word_back(&mut self) {
        let start = self.word_back();
        self.text.drain(start..self.cursor);
        self.cursor = start;
    }

    /// Where the word before the cursor starts (skipping the spaces before it).
    fn word_back(&self) -> usize {
        let mut i = self.cursor;
        while i > 0 && self.text[i - 1].is_whitespace() {
            i -= 1;
        }
        while i > 0 && !self.text[i - 1].is_whitespace() {
            i -= 1;
        }
        i
    }

    /// Where the word after the cursor ends.
    fn word_forward(&self) -> usize {
        let mut i = self.cursor;
        while i < self.text.len() && self.text[i].is_whitespace() {
            i += 1;
        }
        while i < self.text.len() && !self.text[i].is_whitespace() {
            i += 1;
        }
        i
    }

    fn recall_older(&mut self) {
        let next = match self.recall {
            None if self.history.is_empty() => return,
            None => {
                self.draft = std::mem::take(&mut self.text);
                self.history.len() - 1
            }
            Some(0) => return,
            Some(i) => i - 1,
        };
        self.recall = Some(next);
        self.text = self.history[next].chars().collect();
        self.cursor = self.text.len();
    }

    fn recall_newer(&mut self) {
        let Some(i) = self.recall else { return };
        if i + 1 < self.history.len() {
            self.recall = Some(i + 1);
            self.text = self.history[i + 1].chars().collect();
        } else {
            self.recall = None;
            self.text = std::mem::take(&mut self.draft);
        }
        self.cursor = self.text.len();
    }
}

/// Cells a character takes on screen; control characters never reach the screen, and a
/// newline is drawn as one `⏎`.
#[must_use]
pub fn display_width(c: char) -> usize {
    if c == '\n' { 1 } else { c.width().unwrap_or(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn alt(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::ALT)
    }

    fn typed(s: &str) -> Editor {
        let mut e = Editor::default();
        for c in s.chars() {
            e.key(key(KeyCode::Char(c)));
        }
        e
    }

    #[test]
    fn typing_and_moving_the_cursor_edits_in_place() {
        let mut e = typed("helo");
        e.key(key(KeyCode::Left));
        e.key(key(KeyCode::Char('l')));
        assert_eq!(e.text(), "hello");
        e.key(key(KeyCode::Home));
        e.key(key(KeyCode::Char('>')));
        e.key(key(KeyCode::End));
        e.key(key(KeyCode::Char('!')));
        assert_eq!(e.text(), ">hello!");
    }

    #[test]
    fn word_and_line_deletion() {
        let mut e = typed("one two  three");
        e.key(ctrl('w'));
        assert_eq!(e.text(), "one two  ");
        e.key(ctrl('w'));
        assert_eq!(e.text(), "one ");
        e.key(ctrl('u'));
        assert_eq!(e.text(), "");
    }

    #[test]
    fn alt_b_and_alt_f_move_by_words() {
        let mut e = typed("alpha beta gamma");
        e.key(alt('b'));
        e.key(alt('b'));
        assert_eq!(e.cursor, 6);
        e.key(alt('f'));
        assert_eq!(e.cursor, 10);
    }

    #[test]
    fn up_and_down_recall_history_and_restore_the_draft() {
        let mut e = typed("first");
        assert_eq!(e.key(key(KeyCode::Enter)), Action::Submit("first".into()));
        for c in "second".chars() {
            e.key(key(KeyCode::Char(c)));
        }
        e.key(key(KeyCode::Enter));
        for c in "draft".chars() {
            e.key(key(KeyCode::Char(c)));
        }
        e.key(key(KeyCode::Up));
        assert_eq!(e.text(), "second");
        e.key(key(KeyCode::Up));
        assert_eq!(e.text(), "first");
        e.key(key(KeyCode::Down));
        e.key(key(KeyCode::Down));
        assert_eq!(e.text(), "draft");
    }

    #[test]
    fn a_multi_line_paste_is_one_message() {
        let mut e = Editor::default();
        e.paste("line one\r\nline two\n");
        assert_eq!(e.key(key(KeyCode::Enter)), Action::Submit("line one\nline two\n".into()));
    }

    #[test]
    fn the_cursor_column_counts_wide_characters_twice() {
        let e = typed("한국 ok");
        assert_eq!(e.cursor_column(), 7);
    }

    #[test]
    fn ctrl_c_and_ctrl_d_on_an_empty_line_quit() {
        assert_eq!(Editor::default().key(ctrl('c')), Action::Quit);
        assert_eq!(Editor::default().key(ctrl('d')), Action::Quit);
        assert_eq!(typed("x").key(ctrl('d')), Action::None);
    }
}
