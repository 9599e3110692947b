//! URLs in the conversation as OSC 8 hyperlinks, which terminals that know them make
//! clickable and others ignore. The escape sequence rides in the symbol of every other cell
//! of the link, with the two characters it covers and their width; the cell after it is
//! skipped. The text on screen is unchanged.
//!
//! The text was sanitised before it was drawn, and a URL is taken only while its
//! characters are those RFC 3986 allows, so nothing a peer sends can end the sequence
//! early or smuggle another one in.

use std::num::NonZeroU16;

use ratatui::buffer::{Buffer, CellDiffOption};
use ratatui::layout::Rect;

/// Turns each URL (http:// or https://, up to the end of its row) in `area` into a link.
pub fn mark(buf: &mut Buffer, area: Rect) {
    for y in area.top()..area.bottom() {
        // A cell of more than one character (or none) cannot be part of a URL.
        let row: Vec<char> = (area.left()..area.right())
            .map(|x| {
                let mut chars = buf[(x, y)].symbol().chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => c,
                    _ => '\0',
                }
            })
            .collect();
        let mut x = 0;
        while x < row.len() {
            let len = url_len(&row[x..]);
            if len == 0 {
                x += 1;
                continue;
            }
            let url: String = row[x..x + len].iter().collect();
            for start in (x..x + len).step_by(2) {
                let end = (start + 2).min(x + len);
                let pair: String = row[start..end].iter().collect();
                let left = area.left() + u16::try_from(start).unwrap_or(u16::MAX);
                let width =
                    NonZeroU16::new(u16::try_from(end - start).unwrap_or(1)).unwrap_or(NonZeroU16::MIN);
                buf[(left, y)]
                    .set_symbol(&format!("\u{1b}]8;;{url}\u{1b}\\{pair}\u{1b}]8;;\u{1b}\\"))
                    .set_diff_option(CellDiffOption::ForcedWidth(width));
                if end - start == 2 {
                    buf[(left + 1, y)].set_diff_option(CellDiffOption::Skip);
                }
            }
            x += len;
        }
    }
}

/// How many characters from the start of `chars` are a URL (0 if none starts there).
#[must_use]
pub fn url_len(chars: &[char]) -> usize {
    let starts = |prefix: &str| chars.iter().copied().take(prefix.len()).eq(prefix.chars());
    let scheme = if starts("https://") {
        8
    } else if starts("http://") {
        7
    } else {
        return 0;
    };
    let len = chars.iter().take_while(|c| url_char(**c)).count();
    // A sentence's closing punctuation is not part of the address.
    let trimmed = chars[..len].iter().rev().take_while(|c| ".,)!?;:".contains(**c)).count();
    let len = len - trimmed;
    if len > scheme { len } else { 0 }
}

/// The characters a URL may hold (RFC 3986's unreserved, reserved and `%`).
fn url_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row with one character per cell, as drawn.
    fn row(text: &str) -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, 40, 1));
        for (x, c) in (0u16..).zip(text.chars()) {
            buf[(x, 0)].set_symbol(&c.to_string());
        }
        buf
    }

    #[test]
    fn a_url_becomes_a_link_and_its_text_stays_as_it_was() {
        let mut buf = row("see https://ex.am/p?q=1. ok");
        mark(&mut buf, Rect::new(0, 0, 40, 1));
        let link = "\u{1b}]8;;https://ex.am/p?q=1\u{1b}\\";
        assert_eq!(buf[(4, 0)].symbol(), format!("{link}ht\u{1b}]8;;\u{1b}\\"));
        assert_eq!(buf[(5, 0)].diff_option, CellDiffOption::Skip);
        assert_eq!(buf[(3, 0)].symbol(), " ", "before the link");
        assert_eq!(buf[(23, 0)].symbol(), ".", "the full stop is not part of it");
        assert_eq!(buf[(23, 0)].diff_option, CellDiffOption::None);
    }

    #[test]
    fn nothing_but_url_characters_gets_into_a_link() {
        // A peer's escape was made visible by sanitising; here an ESC that got through
        // anyway ends the URL before it, so it is never inside the sequence.
        let mut buf = row("http://a.b/\u{1b}]8;;evil");
        mark(&mut buf, Rect::new(0, 0, 40, 1));
        let all: String = (0..40).map(|x| buf[(x, 0)].symbol().to_owned()).collect();
        assert!(all.contains("\u{1b}]8;;http://a.b/\u{1b}\\"), "{all:?}");
        assert!(!all.contains("evil\u{1b}\\"), "{all:?}");
        let mut plain = row("no links: http:// alone, ftp://x");
        mark(&mut plain, Rect::new(0, 0, 40, 1));
        assert!((0..40).all(|x| !plain[(x, 0)].symbol().contains('\u{1b}')));
    }
}
