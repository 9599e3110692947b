//! Making someone else's text safe to print on a terminal.
//!
//! A peer controls every byte of its messages and its name. Printed raw, an escape
//! sequence could recolour the screen, move the cursor, set the window title or worse.
//! Control characters are therefore replaced by visible stand-ins, so nothing is lost
//! and nothing is interpreted.

use peertalk_signal::proto::is_unsafe_char;

/// Returns `text` with every control and bidirectional-override character replaced by a
/// visible stand-in: C0 controls by their Unicode "control picture" (ESC becomes `␛`,
/// newline `␊`), DEL by `␡`, and the rest by U+FFFD.
#[must_use]
pub fn for_terminal(text: &str) -> String {
    if !might_be_unsafe(text) || !text.chars().any(is_unsafe_char) {
        return text.to_owned();
    }
    text.chars().map(|c| if is_unsafe_char(c) { stand_in(c) } else { c }).collect()
}

/// A byte scan: every unsafe character is encoded starting with a byte below 0x20, 0x7F
/// (DEL), 0xC2 (C1 controls) or 0xE2 (bidirectional controls). Each 64-byte chunk is
/// folded without an early exit, which the compiler vectorises; a plain `any` stops at
/// every byte and took a tenth of a bulk receiver's time.
fn might_be_unsafe(text: &str) -> bool {
    text.as_bytes().chunks(64).any(|chunk| {
        chunk.iter().fold(false, |seen, &b| seen | (b < 0x20) | (b == 0x7F) | (b == 0xC2) | (b == 0xE2))
    })
}

fn stand_in(c: char) -> char {
    match u32::from(c) {
        n @ 0x00..=0x1F => char::from_u32(0x2400 + n).unwrap_or('\u{FFFD}'),
        0x7F => '\u{2421}',
        _ => '\u{FFFD}',
    }
}

#[cfg(test)]
mod tests {
    use super::for_terminal;

    #[test]
    fn plain_and_wide_text_passes_through() {
        assert_eq!(for_terminal("안녕하세요 👋 hello"), "안녕하세요 👋 hello");
    }

    #[test]
    fn escape_sequences_become_visible_and_inert() {
        let out = for_terminal("\u{1b}[2J\u{1b}]0;pwned\u{7}hi\r\n");
        assert!(!out.chars().any(char::is_control), "{out:?}");
        assert_eq!(out, "␛[2J␛]0;pwned␇hi␍␊");
    }

    #[test]
    fn every_unsafe_character_is_caught_by_the_byte_scan() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32).filter(|c| super::is_unsafe_char(*c)) {
            assert!(super::might_be_unsafe(c.encode_utf8(&mut [0; 4])), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn c1_controls_and_bidi_overrides_are_replaced() {
        assert_eq!(for_terminal("a\u{9b}31mb"), "a\u{FFFD}31mb");
        assert_eq!(for_terminal("\u{202E}txt.exe"), "\u{FFFD}txt.exe");
        assert_eq!(for_terminal("del\u{7f}"), "del␡");
    }
}
