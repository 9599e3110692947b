//! Taking over the terminal and always giving it back: raw mode, the alternate screen,
//! bracketed paste and mouse reporting are undone on every exit path, a panic included.

use std::io::{self, Stdout};

use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use crossterm::execute;
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type Screen = Terminal<CrosstermBackend<Stdout>>;

/// The terminal, in interface mode until dropped.
pub struct Guard {
    pub screen: Screen,
}

impl Guard {
    /// Switches the terminal to interface mode and installs a panic hook that switches it
    /// back before the panic message prints.
    pub fn enter() -> io::Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        let mut stdout = io::stdout();
        if let Err(e) = execute!(stdout, EnterAlternateScreen, EnableBracketedPaste, EnableMouseCapture) {
            restore();
            return Err(e);
        }
        let screen = Terminal::new(CrosstermBackend::new(stdout)).inspect_err(|_| restore())?;
        Ok(Self { screen })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
        let _ = self.screen.show_cursor();
    }
}

/// Puts the terminal back as the shell expects it. Safe to call more than once.
fn restore() {
    let _ = execute!(io::stdout(), DisableMouseCapture, DisableBracketedPaste, LeaveAlternateScreen);
    let _ = disable_raw_mode();
}
