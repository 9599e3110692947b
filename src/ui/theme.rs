//! The interface's colours, one palette per `--theme`. With `none` (and by default under
//! NO_COLOR) nothing is coloured: emphasis is bold, italic, underline and reverse only.

use ratatui::style::{Color, Modifier, Style};

use crate::cli::Theme;

/// Every style the renderer uses, by what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Palette {
    /// Timestamps, hints, system lines' lead-in.
    pub dim: Style,
    /// Routine system lines.
    pub info: Style,
    /// Bad news.
    pub error: Style,
    pub ok: Style,
    pub warn: Style,
    pub bad: Style,
    /// Senders' names, each picked by a hash of the name.
    pub senders: Vec<Style>,
    /// The status bar's ground; its parts add their colour on top.
    pub bar: Style,
    /// Transfers' progress lines.
    pub transfer: Style,
    /// Audio levels.
    pub audio: Style,
    /// The "more below" and read markers.
    pub marker: Style,
    /// Search hits, and the one shown.
    pub hit: Style,
    pub current_hit: Style,
    /// Our name said by someone else.
    pub mention: Style,
    /// Hyperlinks.
    pub link: Style,
}

impl Palette {
    #[must_use]
    pub fn new(theme: Theme) -> Self {
        let fg = |c: Color| Style::new().fg(c);
        let bold = Style::new().add_modifier(Modifier::BOLD);
        match theme {
            Theme::Dark => Self {
                dim: fg(Color::DarkGray),
                info: fg(Color::DarkGray).add_modifier(Modifier::ITALIC),
                error: fg(Color::Red),
                ok: fg(Color::LightGreen),
                warn: fg(Color::Yellow),
                bad: fg(Color::LightRed),
                senders: [
                    Color::Cyan,
                    Color::Magenta,
                    Color::Green,
                    Color::Yellow,
                    Color::Blue,
                    Color::LightRed,
                ]
                .map(|c| fg(c).add_modifier(Modifier::BOLD))
                .to_vec(),
                bar: Style::new().fg(Color::White).bg(Color::DarkGray),
                transfer: fg(Color::Cyan),
                audio: fg(Color::LightCyan),
                marker: Style::new().fg(Color::Black).bg(Color::Yellow),
                hit: Style::new().fg(Color::Black).bg(Color::Yellow),
                current_hit: Style::new().fg(Color::Black).bg(Color::LightGreen).add_modifier(Modifier::BOLD),
                mention: fg(Color::LightYellow).add_modifier(Modifier::BOLD),
                link: fg(Color::LightBlue).add_modifier(Modifier::UNDERLINED),
            },
            // Dark, saturated colours: light ones (yellow, light green) vanish on white.
            Theme::Light => Self {
                dim: fg(Color::DarkGray),
                info: fg(Color::DarkGray).add_modifier(Modifier::ITALIC),
                error: fg(Color::Red),
                ok: fg(Color::Green),
                warn: fg(Color::Magenta),
                bad: fg(Color::Red),
                senders: [
                    Color::Blue,
                    Color::Magenta,
                    Color::Green,
                    Color::Red,
                    Color::Cyan,
                    Color::DarkGray,
                ]
                .map(|c| fg(c).add_modifier(Modifier::BOLD))
                .to_vec(),
                bar: Style::new().fg(Color::Black).bg(Color::Gray),
                transfer: fg(Color::Blue),
                audio: fg(Color::Blue),
                marker: Style::new().fg(Color::White).bg(Color::Blue),
                hit: Style::new().fg(Color::Black).bg(Color::LightYellow),
                current_hit: Style::new().fg(Color::White).bg(Color::Green).add_modifier(Modifier::BOLD),
                mention: fg(Color::Red).add_modifier(Modifier::BOLD),
                link: fg(Color::Blue).add_modifier(Modifier::UNDERLINED),
            },
            Theme::None => {
                let plain = Style::new();
                let reverse = Style::new().add_modifier(Modifier::REVERSED);
                Self {
                    dim: plain,
                    info: plain.add_modifier(Modifier::ITALIC),
                    error: bold,
                    ok: plain,
                    warn: plain,
                    bad: bold,
                    senders: vec![bold],
                    bar: reverse,
                    transfer: plain,
                    audio: plain,
                    marker: reverse,
                    hit: reverse,
                    current_hit: reverse.add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
                    mention: bold.add_modifier(Modifier::UNDERLINED),
                    link: plain.add_modifier(Modifier::UNDERLINED),
                }
            }
        }
    }

    /// A sender's style, the same for a name every time.
    #[must_use]
    pub fn sender(&self, name: &str) -> Style {
        let hash = name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        self.senders[hash as usize % self.senders.len()]
    }
}
