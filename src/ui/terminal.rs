//! Taking over the terminal and always giving it back: raw mode, the alternate screen,
//! bracketed paste, focus and mouse reporting are undone on every exit path, a panic
//! included.

use std::io::{self, Stdout, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, DisableMouseCapture, EnableBracketedPaste, EnableFocusChange,
    EnableMouseCapture,
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
    /// Switches the terminal to interface mode (taking the mouse with `mouse`) and installs
    /// a panic hook that switches it back before the panic message prints.
    pub fn enter(mouse: bool) -> io::Result<Self> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        enable_raw_mode()?;
        let mut stdout = io::stdout();
        // The title is set while we run (the unread count); xterm's title stack gives the
        // shell's back. Terminals without one ignore both sequences.
        if stdout.write_all(PUSH_TITLE).is_ok() {
            TITLE_PUSHED.store(true, Ordering::SeqCst);
        }
        let entered = execute!(stdout, EnterAlternateScreen, EnableBracketedPaste, EnableFocusChange)
            .and_then(|()| if mouse { execute!(stdout, EnableMouseCapture) } else { Ok(()) });
        if let Err(e) = entered {
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

const PUSH_TITLE: &[u8] = b"\x1b[22;0t";
const POP_TITLE: &[u8] = b"\x1b[23;0t";
/// Popped once only: a second pop would take the shell's own title off the stack.
static TITLE_PUSHED: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as the shell expects it. Safe to call more than once.
fn restore() {
    if TITLE_PUSHED.swap(false, Ordering::SeqCst) {
        let _ = io::stdout().write_all(POP_TITLE);
    }
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        DisableFocusChange,
        DisableBracketedPaste,
        LeaveAlternateScreen
    );
    let _ = disable_raw_mode();
}
