//! Getting the user's attention for a message: the terminal's bell, or a desktop
//! notification through the terminal (OSC 777, which foot, WezTerm, Ghostty, urxvt and
//! VTE terminals show, and OSC 9, which iTerm2, Windows Terminal and kitty show). Terminals
//! that know neither skip them; the bell goes with them, so tmux and screen mark the window.

use crate::cli::Notify;
use crate::sanitize::for_terminal;

/// The longest notification body, in characters.
const MAX_BODY: usize = 200;

/// The bytes to write for a message from `from` saying `text`; `title` names the room.
#[must_use]
pub fn sequence(mode: Notify, title: &str, from: &str, text: &str) -> Vec<u8> {
    match mode {
        Notify::Off => Vec::new(),
        Notify::Bell => b"\x07".to_vec(),
        Notify::Osc => {
            let title = plain(title);
            let body = plain(&format!("{from}: {text}"));
            // OSC 777's fields are split at semicolons; the title must not hold one.
            let title = title.replace(';', ",");
            format!("\x1b]777;notify;{title};{body}\x1b\\\x1b]9;{body}\x1b\\\x07").into_bytes()
        }
    }
}

/// A peer's text as one line of plain characters: no escape, no control character that
/// could end the sequence or start another.
fn plain(text: &str) -> String {
    let visible = for_terminal(text);
    let one_line: String = visible.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.chars().count() > MAX_BODY {
        one_line.chars().take(MAX_BODY - 1).chain(['…']).collect()
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_writes_its_sequence() {
        assert!(sequence(Notify::Off, "peertalk #demo", "bob", "hi").is_empty());
        assert_eq!(sequence(Notify::Bell, "peertalk #demo", "bob", "hi"), b"\x07");
        let osc = String::from_utf8(sequence(Notify::Osc, "peertalk #demo", "bob", "alice: lunch?"))
            .expect("utf-8");
        insta::assert_debug_snapshot!(osc, @r#""\u{1b}]777;notify;peertalk #demo;bob: alice: lunch?\u{1b}\\\u{1b}]9;bob: alice: lunch?\u{1b}\\\u{7}""#);
    }

    #[test]
    fn a_peer_cannot_end_the_notification_or_start_another_sequence() {
        let osc = String::from_utf8(sequence(
            Notify::Osc,
            "peertalk #a;b",
            "eve",
            "x\u{1b}\\\u{1b}]52;c;Y2xpcA==\u{7}\nmore",
        ))
        .expect("utf-8");
        // Two sequences (777, 9) begin and end, and the bell closes; nothing else is raw.
        assert_eq!(osc.matches('\u{1b}').count(), 4, "{osc:?}");
        assert_eq!(osc.matches('\u{7}').count(), 1, "{osc:?}");
        assert!(osc.starts_with("\u{1b}]777;notify;peertalk #a,b;eve: x"), "{osc:?}");
        let long = sequence(Notify::Osc, "t", "bob", &"a".repeat(500));
        assert!(long.len() < 2 * (MAX_BODY + 40) * 2, "bodies are cut short");
    }
}
