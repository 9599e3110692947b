//! Drawing the [`View`] and the [`Editor`]: the conversation, the status bar and the input
//! line. Reads state, never changes it. Text is measured in display cells, so wide
//! characters (Korean, CJK, emoji) wrap and place the cursor correctly.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::input::{Editor, display_width};
use super::theme::Palette;
use super::view::{CallBar, Delivery, Entry, RelayState, Tone, View};
use crate::app::human_size;
use crate::peer::LinkState;
use crate::sanitize::for_terminal;

/// Columns taken by the timestamp (`12:34 `); wrapped lines are indented this far.
const STAMP: usize = 6;

/// How the screen is drawn, besides what is on it.
#[derive(Debug, Clone)]
pub struct Look {
    pub palette: Palette,
    /// The offset of the user's time zone, for timestamps.
    pub utc_offset_secs: i32,
    /// URLs become OSC 8 hyperlinks.
    pub links: bool,
}

/// Draws the whole screen and places the cursor in the input line.
pub fn draw(frame: &mut Frame, view: &View, editor: &Editor, look: &Look) {
    let p = &look.palette;
    let shown = u16::try_from(view.transfers.len().min(MAX_TRANSFER_LINES)).unwrap_or(0);
    let [messages, transfers, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(shown),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(transfer_lines(view, p, transfers.width as usize)), transfers);
    let messages = if view.panel && messages.width >= MIN_WIDTH_FOR_PANEL {
        let [messages, panel] =
            Layout::horizontal([Constraint::Min(1), Constraint::Length(PANEL_WIDTH)]).areas(messages);
        frame.render_widget(Paragraph::new(members_panel(view, p)), panel);
        messages
    } else {
        messages
    };
    draw_messages(frame, messages, view, look);
    if look.links {
        super::links::mark(frame.buffer_mut(), messages);
    }
    frame.render_widget(Paragraph::new(status_line(view, p, status.width as usize)), status);
    draw_input(frame, input, view, editor, p);
}

/// Transfers shown at once above the status bar; more are counted on the last line.
const MAX_TRANSFER_LINES: usize = 4;

/// One line per transfer: direction, number, name, member, then a bar with the rate and
/// the time left, or how to answer an offer.
fn transfer_lines(view: &View, p: &Palette, width: usize) -> Vec<Line<'static>> {
    let dim = p.dim;
    let mut lines = Vec::new();
    for (index, ((incoming, file, _), t)) in view.transfers.iter().enumerate() {
        if index + 1 == MAX_TRANSFER_LINES && view.transfers.len() > MAX_TRANSFER_LINES {
            let more = view.transfers.len() - index;
            lines.push(Line::from(Span::styled(format!("  … and {more} more transfers"), dim)));
            break;
        }
        let (arrow, dir) = if *incoming { ("⇣", "←") } else { ("⇡", "→") };
        let head = format!("{arrow} #{file} {} {dir} {} ", for_terminal(&t.name), for_terminal(&t.who));
        let tail = if t.asking {
            format!("{} waits: /accept {file} or /decline {file}", human_size(t.size))
        } else {
            let percent = t.bytes.saturating_mul(100).checked_div(t.size).unwrap_or(100);
            let left = if t.rate > 0.0 {
                let secs = (t.size.saturating_sub(t.bytes)) as f64 / t.rate;
                format!(" {}:{:02} left", (secs as u64) / 60, (secs as u64) % 60)
            } else {
                String::new()
            };
            let bar_width = 20usize;
            let filled = usize::try_from(percent).unwrap_or(100).min(100) * bar_width / 100;
            format!(
                "[{}{}] {percent:>3}% {}/s{left}",
                "=".repeat(filled),
                " ".repeat(bar_width - filled),
                human_size(t.rate as u64)
            )
        };
        let text: String = format!("{head}{tail}").chars().take(width).collect();
        lines.push(Line::from(Span::styled(text, p.transfer)));
    }
    lines
}

/// The members panel's width, and the narrowest screen that still shows it.
const PANEL_WIDTH: u16 = 30;
const MIN_WIDTH_FOR_PANEL: u16 = 60;

/// One or two lines per member: name and state, then path, round trip and audio.
fn members_panel(view: &View, p: &Palette) -> Vec<Line<'static>> {
    let dim = p.dim;
    let mut lines = vec![Line::from(Span::styled(format!("│ members ({})", view.peers.len()), dim))];
    if view.peers.is_empty() {
        lines.push(Line::from(Span::styled("│ nobody else is here", dim)));
    }
    for peer in view.peers.values() {
        let (state, colour) = state_label(peer.state, p);
        let state = if state.is_empty() { "connected" } else { state.trim_start() };
        lines.push(Line::from(vec![
            Span::styled("│ ", dim),
            Span::styled(for_terminal(&peer.name), Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(if peer.verified { " ✔" } else { "" }, p.ok),
            Span::styled(format!(" {state}"), colour),
        ]));
        let mut detail = Vec::new();
        if let Some(path) = &peer.path {
            detail.push(format!("{} {}", path.kind(), path.protocol));
            if let Some(rtt) = path.rtt_ms {
                detail.push(format!("rtt {rtt:.1} ms"));
            }
        }
        if let Some(dbfs) = peer.audio {
            detail.push(format!("♪{}", meter(dbfs)));
        }
        if !detail.is_empty() {
            lines.push(Line::from(Span::styled(format!("│   {}", detail.join(", ")), dim)));
        }
    }
    lines
}

fn state_label(state: LinkState, p: &Palette) -> (&'static str, Style) {
    match state {
        LinkState::Connected => ("", p.ok),
        LinkState::New | LinkState::Connecting => (" connecting", p.warn),
        LinkState::Disconnected => (" disconnected", p.warn),
        LinkState::Failed => (" failed", p.bad),
        LinkState::Closed => (" closed", p.dim),
    }
}

/// How far up the conversation can scroll at this size.
#[must_use]
pub fn max_scroll(view: &View, area: Rect, look: &Look) -> usize {
    let height = area.height.saturating_sub(2) as usize;
    let total: usize =
        (0..view.entries.len()).map(|i| lines_of(view, i, area.width as usize, look).len()).sum();
    total.saturating_sub(height)
}

/// The scroll position that shows entry `index` about halfway up the screen.
#[must_use]
pub fn scroll_to_entry(view: &View, index: usize, area: Rect, look: &Look) -> usize {
    let height = area.height.saturating_sub(2) as usize;
    let below: usize =
        (index + 1..view.entries.len()).map(|i| lines_of(view, i, area.width as usize, look).len()).sum();
    below.saturating_sub(height / 2)
}

fn draw_messages(frame: &mut Frame, area: Rect, view: &View, look: &Look) {
    let (width, height) = (area.width as usize, area.height as usize);
    if height == 0 {
        return;
    }
    // Wrap only as much history as the screen (and the scroll position) needs.
    let needed = height + view.scroll;
    let mut lines: Vec<Line<'static>> = Vec::new();
    for index in (0..view.entries.len()).rev() {
        let mut wrapped = lines_of(view, index, width, look);
        wrapped.append(&mut lines);
        lines = wrapped;
        if lines.len() >= needed {
            break;
        }
    }
    let scroll = view.scroll.min(lines.len().saturating_sub(height));
    let end = lines.len() - scroll;
    let mut shown: Vec<Line<'static>> = lines[end.saturating_sub(height)..end].to_vec();
    if scroll > 0 {
        let text = match view.unseen {
            0 => " more below: PageDown ".to_owned(),
            n => format!(" {n} new below: PageDown "),
        };
        let marker = Line::from(Span::styled(centre(&text, width, '─'), look.palette.marker));
        if shown.len() == height {
            shown.pop();
        }
        shown.push(marker);
    }
    // Bottom-aligned, as chat reads: the newest line sits just above the status bar.
    let top_pad = height.saturating_sub(shown.len());
    let mut padded = vec![Line::default(); top_pad];
    padded.extend(shown);
    frame.render_widget(Paragraph::new(padded), area);
}

/// Entry `index` as lines, under the read marker when it is the first one unread.
fn lines_of(view: &View, index: usize, width: usize, look: &Look) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if view.read_marker == Some(index) {
        lines.push(Line::from(Span::styled(
            centre(" new since you looked away ", width, '─'),
            look.palette.dim,
        )));
    }
    let search = view
        .search
        .as_ref()
        .filter(|search| search.hits.binary_search(&index).is_ok())
        .map(|search| (search.query.as_str(), search.entry() == Some(index)));
    lines.extend(entry_lines(&view.entries[index], width, look, &view.name, search));
    lines
}

/// One entry as styled, wrapped lines. `me` is our name, marked where others say it;
/// `search` is the query to highlight, and whether this is the hit being shown.
fn entry_lines(
    entry: &Entry,
    width: usize,
    look: &Look,
    me: &str,
    search: Option<(&str, bool)>,
) -> Vec<Line<'static>> {
    let p = &look.palette;
    let dim = p.dim;
    let mut cells: Vec<(char, Style)> = Vec::new();
    let push = |cells: &mut Vec<(char, Style)>, text: &str, style: Style| {
        cells.extend(text.chars().map(|c| (c, style)));
    };
    let body_start;
    match entry {
        Entry::Chat { ts, from, text, own } => {
            push(&mut cells, &clock(*ts, look.utc_offset_secs), dim);
            let name_style = match own {
                Some(_) => Style::new().add_modifier(Modifier::BOLD),
                None => p.sender(from),
            };
            push(&mut cells, &for_terminal(from), name_style);
            push(&mut cells, ": ", Style::new());
            body_start = cells.len();
            let body = Style::new();
            for (i, line) in text.split('\n').enumerate() {
                if i > 0 {
                    cells.push(('\n', body));
                }
                push(&mut cells, &for_terminal(line), body);
            }
            mark_links(&mut cells[body_start..], p.link);
            if own.is_none() {
                mark_matches(&mut cells[body_start..], me, p.mention, true);
            }
            if let Some((_, delivery)) = own {
                let partial;
                let (mark, style) = match delivery {
                    Delivery::Sent => (" ·", dim),
                    Delivery::Partial(acked, of) => {
                        partial = format!(" ✓ {acked}/{of}");
                        (partial.as_str(), p.warn)
                    }
                    Delivery::Delivered => (" ✓", p.ok),
                    Delivery::Transmitted => (" →", p.transfer),
                    Delivery::Failed => (" ✗ not delivered", p.error),
                };
                let end = cells.len();
                push(&mut cells, mark, style);
                if let Some((query, current)) = search {
                    mark_matches(
                        &mut cells[body_start..end],
                        query,
                        if current { p.current_hit } else { p.hit },
                        false,
                    );
                }
                return wrap(&cells, width);
            }
        }
        Entry::System { ts, text, tone } => {
            push(&mut cells, &clock(*ts, look.utc_offset_secs), dim);
            let style = match tone {
                Tone::Info => p.info,
                Tone::Error => p.error,
            };
            push(&mut cells, "-- ", style);
            body_start = cells.len();
            push(&mut cells, &for_terminal(text), style);
        }
    }
    if let Some((query, current)) = search {
        mark_matches(&mut cells[body_start..], query, if current { p.current_hit } else { p.hit }, false);
    }
    wrap(&cells, width)
}

/// Restyles each occurrence of `needle` in `cells` (ignoring case); with `whole_word`, only
/// where it stands as a word.
fn mark_matches(cells: &mut [(char, Style)], needle: &str, style: Style, whole_word: bool) {
    let lower = |c: char| c.to_lowercase().next().unwrap_or(c);
    let needle: Vec<char> = needle.chars().map(lower).collect();
    if needle.is_empty() || needle.len() > cells.len() {
        return;
    }
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut at = 0;
    while at + needle.len() <= cells.len() {
        let found = cells[at..at + needle.len()].iter().zip(&needle).all(|((c, _), n)| lower(*c) == *n);
        let bounded = !whole_word
            || (at.checked_sub(1).is_none_or(|b| !word(cells[b].0))
                && cells.get(at + needle.len()).is_none_or(|(c, _)| !word(*c)));
        if found && bounded {
            for cell in &mut cells[at..at + needle.len()] {
                cell.1 = cell.1.patch(style);
            }
            at += needle.len();
        } else {
            at += 1;
        }
    }
}

/// Underlines the URLs in `cells`, as [`super::links`] finds them.
fn mark_links(cells: &mut [(char, Style)], style: Style) {
    let chars: Vec<char> = cells.iter().map(|(c, _)| *c).collect();
    let mut at = 0;
    while at < chars.len() {
        match super::links::url_len(&chars[at..]) {
            0 => at += 1,
            len => {
                for cell in &mut cells[at..at + len] {
                    cell.1 = cell.1.patch(style);
                }
                at += len;
            }
        }
    }
}

/// Breaks cells into lines of at most `width` display cells, at spaces where it can,
/// indenting continuation lines under the text.
fn wrap(cells: &[(char, Style)], width: usize) -> Vec<Line<'static>> {
    let indent = if width > STAMP * 3 { STAMP } else { 0 };
    let mut rows: Vec<Vec<(char, Style)>> = vec![Vec::new()];
    let mut used = 0;
    for &(c, style) in cells {
        if c == '\n' {
            rows.push(vec![(' ', Style::new()); indent]);
            used = indent;
            continue;
        }
        let w = display_width(c);
        if used + w > width && used > indent {
            let row = rows.last_mut().expect("rows is never empty");
            // Carry the partial word to the next line if there is a space to break at.
            let carry = match row.iter().rposition(|(ch, _)| *ch == ' ') {
                Some(space)
                    if space >= indent
                        && space + 1 < row.len()
                        && indent + cells_width(&row[space + 1..]) + w <= width =>
                {
                    row.split_off(space + 1)
                }
                _ => Vec::new(),
            };
            let mut next = vec![(' ', Style::new()); indent];
            next.extend(carry);
            used = cells_width(&next);
            rows.push(next);
        }
        rows.last_mut().expect("rows is never empty").push((c, style));
        used += w;
    }
    rows.into_iter().map(|row| to_line(&row)).collect()
}

fn cells_width(cells: &[(char, Style)]) -> usize {
    cells.iter().map(|(c, _)| display_width(*c)).sum()
}

fn to_line(row: &[(char, Style)]) -> Line<'static> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut current = String::new();
    let mut style = None;
    for &(c, s) in row {
        if style != Some(s) && !current.is_empty() {
            spans.push(Span::styled(std::mem::take(&mut current), style.unwrap_or_default()));
        }
        style = Some(s);
        current.push(c);
    }
    if !current.is_empty() {
        spans.push(Span::styled(current, style.unwrap_or_default()));
    }
    Line::from(spans)
}

fn status_line(view: &View, p: &Palette, width: usize) -> Line<'static> {
    let bar = p.bar;
    let sep = Span::styled(" │ ", bar);
    let mut spans = vec![
        Span::styled(format!(" #{}", for_terminal(&view.room)), bar.add_modifier(Modifier::BOLD)),
        sep.clone(),
        Span::styled(for_terminal(&view.name), bar),
        sep.clone(),
    ];
    let (relay, relay_colour) = match view.relay {
        RelayState::Joining => ("relay: joining".to_owned(), p.warn),
        RelayState::Joined => ("relay: ok".to_owned(), p.ok),
        RelayState::Hosting => ("relay: hosting".to_owned(), p.ok),
        RelayState::Lost => ("relay: lost".to_owned(), p.bad),
        RelayState::Reconnecting(attempt) => (format!("relay: reconnecting (try {attempt})"), p.warn),
    };
    spans.push(Span::styled(relay, bar.patch(relay_colour)));
    if view.peers.is_empty() {
        spans.push(sep.clone());
        spans.push(Span::styled("no peers", bar));
    }
    let mut each = Vec::new();
    for peer in view.peers.values() {
        each.push(sep.clone());
        let (state, colour) = state_label(peer.state, p);
        let path = match (&peer.path, peer.state) {
            (Some(p), LinkState::Connected) => format!(" ({})", p.kind()),
            _ => String::new(),
        };
        let verified = if peer.verified { " ✔" } else { "" };
        each.push(Span::styled(
            format!("{}{verified}{state}{path}", for_terminal(&peer.name)),
            bar.patch(colour),
        ));
        if let Some(dbfs) = peer.audio {
            each.push(Span::styled(format!(" ♪{}", meter(dbfs)), bar.patch(p.audio)));
        }
    }
    let mut tail = Vec::new();
    if let Some(call) = view.call {
        tail.push(sep.clone());
        let (text, colour) = match (call, view.muted) {
            (CallBar::Calling, _) => ("call: calling", p.warn),
            (CallBar::Live, false) => ("call: live", p.ok),
            (CallBar::Live, true) => ("call: muted", p.bad),
        };
        tail.push(Span::styled(text, bar.patch(colour)));
    }

    if let Some(rtt) = view.rtt_ms {
        tail.push(sep.clone());
        tail.push(Span::styled(format!("rtt {rtt:.1} ms"), bar));
    }
    // Each member by name while they fit (one always is); in a larger room, counts (F2
    // lists them).
    let width_of = |spans: &[Span<'_>]| spans.iter().map(Span::width).sum::<usize>();
    if view.peers.len() <= 1 || width_of(&spans) + width_of(&each) + width_of(&tail) <= width {
        spans.extend(each);
    } else if !view.peers.is_empty() {
        spans.push(sep.clone());
        spans.extend(peer_counts(view, p));
    }
    spans.extend(tail);
    let used: usize = spans.iter().map(|s| s.width()).sum();
    spans.push(Span::styled(" ".repeat(width.saturating_sub(used)), bar));
    Line::from(spans)
}

/// "7 members: 6 ok, 1 connecting ♪2 (F2)", coloured by state.
fn peer_counts(view: &View, p: &Palette) -> Vec<Span<'static>> {
    let bar = p.bar;
    let count = |pred: fn(LinkState) -> bool| view.peers.values().filter(|p| pred(p.state)).count();
    let ok = count(|s| s == LinkState::Connected);
    let waiting = count(|s| matches!(s, LinkState::New | LinkState::Connecting | LinkState::Disconnected));
    let failed = count(|s| matches!(s, LinkState::Failed | LinkState::Closed));
    let mut spans = vec![Span::styled(format!("{} members: ", view.peers.len()), bar)];
    spans.push(Span::styled(format!("{ok} ok"), bar.patch(p.ok)));
    if waiting > 0 {
        spans.push(Span::styled(format!(", {waiting} connecting"), bar.patch(p.warn)));
    }
    if failed > 0 {
        spans.push(Span::styled(format!(", {failed} failed"), bar.patch(p.bad)));
    }
    let audio = view.peers.values().filter(|peer| peer.audio.is_some()).count();
    if audio > 0 {
        spans.push(Span::styled(format!(" ♪{audio}"), bar.patch(p.audio)));
    }
    spans.push(Span::styled(" (F2)", bar));
    spans
}

/// A level in dBFS as five cells, from -60 dBFS (empty) to 0 (full).
fn meter(dbfs: f32) -> String {
    const CELLS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let fill = ((dbfs + 60.0) / 60.0).clamp(0.0, 1.0) * 5.0 * 8.0;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let eighths = fill.round() as usize;
    (0..5).map(|cell| CELLS[eighths.saturating_sub(cell * 8).min(8)]).collect()
}

/// The input line; while a search is on and nothing is typed, how it stands.
fn draw_input(frame: &mut Frame, area: Rect, view: &View, editor: &Editor, p: &Palette) {
    let prompt = "> ";
    let width = area.width as usize;
    let text = editor.display();
    let cursor = editor.cursor_column();
    // Scroll horizontally so the cursor stays on screen.
    let room = width.saturating_sub(prompt.len() + 1).max(1);
    let skip = cursor.saturating_sub(room);
    let mut shown = String::new();
    let mut skipped = 0;
    for c in text.chars() {
        if skipped < skip {
            skipped += display_width(c);
            continue;
        }
        shown.push(c);
    }
    let mut spans = vec![Span::styled(prompt, p.dim), Span::raw(shown)];
    if let Some(search) = view.search.as_ref().filter(|_| text.is_empty()) {
        let found = match search.hits.len() {
            0 => "no match".to_owned(),
            n => format!("{} of {n}", search.current + 1),
        };
        spans.push(Span::styled(
            format!("search {:?}: {found} · ^R older · ^S newer · Esc ends", for_terminal(&search.query)),
            p.info,
        ));
    }
    let line = Line::from(spans);
    frame.render_widget(Paragraph::new(line), area);
    let x = area.x + u16::try_from(prompt.len() + cursor - skipped.min(cursor)).unwrap_or(area.width - 1);
    frame.set_cursor_position(Position::new(x.min(area.x + area.width.saturating_sub(1)), area.y));
}

/// `HH:MM ` in the user's time zone.
fn clock(ts_ms: u64, utc_offset_secs: i32) -> String {
    let secs = i64::try_from(ts_ms / 1000).unwrap_or(0) + i64::from(utc_offset_secs);
    let minutes = secs.rem_euclid(86_400) / 60;
    format!("{:02}:{:02} ", minutes / 60, minutes % 60)
}

fn centre(text: &str, width: usize, fill: char) -> String {
    let w: usize = text.chars().map(display_width).sum();
    let left = width.saturating_sub(w) / 2;
    let right = width.saturating_sub(w + left);
    format!("{}{text}{}", fill.to_string().repeat(left), fill.to_string().repeat(right))
}

#[cfg(test)]
mod tests {
    use peertalk_signal::proto::{PeerId, PeerInfo};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::app::Notice;
    use crate::cli::Theme;
    use crate::peer::Path;

    /// 2026-11-24 09:30 UTC, in milliseconds.
    const T0: u64 = 1_795_512_600_000;

    fn screen(view: &View, editor: &Editor, width: u16, height: u16) -> TestBackend {
        screen_in(Theme::Dark, view, editor, width, height)
    }

    fn screen_in(theme: Theme, view: &View, editor: &Editor, width: u16, height: u16) -> TestBackend {
        let look = look(theme);
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
        terminal.draw(|frame| draw(frame, view, editor, &look)).expect("draw");
        terminal.backend().clone()
    }

    fn look(theme: Theme) -> Look {
        Look { palette: Palette::new(theme), utc_offset_secs: 0, links: false }
    }

    fn dark() -> Palette {
        Palette::new(Theme::Dark)
    }

    fn pid(s: &str) -> PeerId {
        PeerId(s.into())
    }

    fn host_path() -> Path {
        Path { local: "host".into(), remote: "host".into(), protocol: "udp".into(), rtt_ms: Some(0.2) }
    }

    /// Alice joins #demo, where bob already is.
    fn joined_with_bob() -> Notice {
        let bob = PeerInfo { id: pid("p1"), name: "bob".into() };
        Notice::Joined { room: "demo".into(), me: pid("p2"), peers: vec![bob] }
    }

    /// Alice in #demo, talking with bob over a direct path.
    fn conversation() -> View {
        let mut v = View::new("demo", "alice");
        v.apply(&joined_with_bob(), T0);
        v.apply(
            &Notice::Connected {
                peer: pid("p1"),
                name: "bob".into(),
                path: Some(host_path()),
                plain: false,
                safety: None,
                verified: false,
            },
            T0,
        );
        let said = |id, text: &str| Notice::Message {
            peer: pid("p1"),
            from: "bob".into(),
            id,
            ts: T0 + 60_000,
            text: text.into(),
            private: false,
        };
        v.apply(&said(1, "안녕하세요! 오늘 회의는 세 시에 시작합니다. 늦지 마세요 🙏"), T0);
        v.apply(
            &Notice::Sent {
                id: 1,
                ts: T0 + 120_000,
                text: "네, 알겠습니다 👍 I'll bring the 🍰 and the slides for the quarterly review".into(),
                to: None,
            },
            T0,
        );
        v.apply(&Notice::Delivered { id: 1, peer: pid("p1"), to: "bob".into(), acked: 1, of: 1 }, T0);
        v.apply(&Notice::Sent { id: 2, ts: T0 + 180_000, text: "one more thing".into(), to: None }, T0);
        v.apply(&said(2, "\u{1b}[31mno colours from peers\u{7}"), T0);
        v.rtt_ms = Some(0.4);
        v
    }

    #[test]
    fn transfers_show_their_progress_and_an_offer_how_to_answer() {
        let mut v = conversation();
        let offer = |file, incoming, peer: &str, who: &str, name: &str, size| Notice::FileOffer {
            file,
            incoming,
            peer: pid(peer),
            who: who.into(),
            name: name.into(),
            size,
            sha256: "ab".repeat(32),
            ask: incoming,
        };
        v.apply(&offer(1, false, "p1", "bob", "slides.pdf", 40 * 1024 * 1024), T0);
        v.apply(
            &Notice::FileProgress {
                file: 1,
                incoming: false,
                peer: pid("p1"),
                who: "bob".into(),
                name: "slides.pdf".into(),
                bytes: 10 * 1024 * 1024,
                size: 40 * 1024 * 1024,
                rate: 2.0 * 1024.0 * 1024.0,
            },
            T0,
        );
        v.apply(&offer(2, true, "p1", "bob", "\u{1b}]0;x\u{7}.txt", 1500), T0);
        insta::assert_snapshot!(screen(&v, &Editor::default(), 80, 16));
    }

    #[test]
    fn a_verified_member_has_a_check_mark_in_the_status_bar_and_the_panel() {
        let mut v = conversation();
        v.panel = true;
        let safety = Notice::Safety {
            peer: pid("p1"),
            name: "bob".into(),
            words: "dog rocket key moon pizza anchor bell".into(),
            fingerprint: "AB:CD".into(),
            verified: true,
        };
        v.apply(&safety, T0);
        let screen = format!("{:?}", screen(&v, &Editor::default(), 100, 12));
        assert!(screen.contains("bob ✔ (host)"), "status bar: {screen}");
        assert!(screen.contains("bob ✔ connected"), "panel: {screen}");
        assert!(screen.contains("bob is verified ✔"), "the line: {screen}");
    }

    #[test]
    fn empty_room() {
        let mut v = View::new("demo", "alice");
        v.apply(
            &Notice::HostingRelay {
                url: "ws://127.0.0.1:8787".into(),
                page: "http://127.0.0.1:8787/?room=demo".into(),
            },
            T0,
        );
        v.apply(&Notice::Joined { room: "demo".into(), me: pid("p1"), peers: vec![] }, T0);
        insta::assert_snapshot!(screen(&v, &Editor::default(), 60, 8));
    }

    #[test]
    fn conversation_with_wrapping_korean_and_emoji() {
        let mut editor = Editor::default();
        editor.paste("typing 한글 here");
        insta::assert_snapshot!(screen(&conversation(), &editor, 60, 14));
    }

    #[test]
    fn scrolled_back_with_new_messages_below() {
        let mut v = conversation();
        for i in 0..12 {
            v.apply(
                &Notice::Message {
                    peer: pid("p1"),
                    from: "bob".into(),
                    id: 10 + i,
                    ts: T0,
                    text: format!("backlog {i}"),
                    private: false,
                },
                T0,
            );
        }
        v.scroll_by(6);
        v.apply(
            &Notice::Message {
                peer: pid("p1"),
                from: "bob".into(),
                id: 30,
                ts: T0,
                text: "new while away".into(),
                private: false,
            },
            T0,
        );
        insta::assert_snapshot!(screen(&v, &Editor::default(), 60, 10));
    }

    #[test]
    fn narrow_forty_columns() {
        insta::assert_snapshot!(screen(&conversation(), &Editor::default(), 40, 12));
    }

    #[test]
    fn status_bar_in_each_connection_state() {
        let mut lines = Vec::new();
        let mut v = View::new("demo", "alice");
        lines.push(status_line(&v, &dark(), 72));
        v.apply(&joined_with_bob(), T0);
        lines.push(status_line(&v, &dark(), 72));
        let relayed =
            Path { local: "relay".into(), remote: "host".into(), protocol: "udp".into(), rtt_ms: None };
        v.apply(
            &Notice::Connected {
                peer: pid("p1"),
                name: "bob".into(),
                path: Some(relayed),
                plain: false,
                safety: None,
                verified: false,
            },
            T0,
        );
        v.rtt_ms = Some(12.3);
        lines.push(status_line(&v, &dark(), 72));
        v.apply(
            &Notice::Link {
                peer: pid("p1"),
                name: "bob".into(),
                state: LinkState::Disconnected,
                detail: None,
            },
            T0,
        );
        lines.push(status_line(&v, &dark(), 72));
        v.apply(
            &Notice::Link { peer: pid("p1"), name: "bob".into(), state: LinkState::Failed, detail: None },
            T0,
        );
        v.apply(&Notice::RelayLost { reason: "gone".into() }, T0);
        lines.push(status_line(&v, &dark(), 72));
        let text: Vec<String> =
            lines.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect()).collect();
        insta::assert_snapshot!(text.join("\n"));
    }

    #[test]
    fn status_bar_shows_the_call_and_the_incoming_level() {
        use crate::app::CallState;
        let mut lines = Vec::new();
        let mut v = View::new("demo", "alice");
        v.apply(&joined_with_bob(), T0);
        v.apply(
            &Notice::Connected {
                peer: pid("p1"),
                name: "bob".into(),
                path: None,
                plain: false,
                safety: None,
                verified: false,
            },
            T0,
        );
        v.apply(&Notice::Call(CallState::Calling), T0);
        lines.push(status_line(&v, &dark(), 72));
        v.apply(&Notice::Call(CallState::Live { source: "microphone default".into() }), T0);
        v.apply(&Notice::PeerAudio { peer: pid("p1"), name: "bob".into(), receiving: true }, T0);
        v.apply(&Notice::AudioLevel { peer: pid("p1"), dbfs: -21.0 }, T0);
        lines.push(status_line(&v, &dark(), 72));
        v.apply(&Notice::Muted { muted: true }, T0);
        v.apply(&Notice::AudioLevel { peer: pid("p1"), dbfs: -3.0 }, T0);
        lines.push(status_line(&v, &dark(), 72));
        v.apply(&Notice::Call(CallState::Ended { reason: "hung up".into() }), T0);
        v.apply(&Notice::PeerAudio { peer: pid("p1"), name: "bob".into(), receiving: false }, T0);
        lines.push(status_line(&v, &dark(), 72));
        let text: Vec<String> =
            lines.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect()).collect();
        insta::assert_snapshot!(text.join("\n"));
    }

    #[test]
    fn meter_fills_from_minus_60_dbfs_to_full_scale() {
        assert_eq!(meter(f32::NEG_INFINITY), "     ");
        assert_eq!(meter(-30.0), "██▌  ".replace('▌', "▄"));
        assert_eq!(meter(0.0), "█████");
    }

    #[test]
    fn no_wrapped_line_is_wider_than_the_screen() {
        let text = format!("short {} then 한국어가 아주 길게 이어지는 문장 🎉🎉🎉 end", "x".repeat(70));
        let cells: Vec<(char, Style)> = text.chars().map(|c| (c, Style::new())).collect();
        for width in [10, 17, 24, 40, 61] {
            for line in wrap(&cells, width) {
                assert!(line.width() <= width, "{width}: {line:?}");
            }
        }
    }

    #[test]
    fn cursor_sits_after_wide_characters() {
        let mut editor = Editor::default();
        editor.paste("한국어");
        let mut terminal = Terminal::new(TestBackend::new(30, 5)).expect("test terminal");
        terminal.draw(|frame| draw(frame, &View::new("r", "a"), &editor, &look(Theme::Dark))).expect("draw");
        assert_eq!(terminal.get_cursor_position().expect("cursor"), Position::new(2 + 6, 4));
    }

    #[test]
    fn eight_members_fit_the_status_bar_at_80_columns_and_the_panel_lists_them() {
        let mut v = View::new("team", "alice");
        let peers =
            (1..=7).map(|i| PeerInfo { id: pid(&format!("p{i}")), name: format!("member{i}") }).collect();
        v.apply(&Notice::Joined { room: "team".into(), me: pid("me"), peers }, T0);
        for i in 1..=6 {
            let path = Some(Path { rtt_ms: Some(0.3), ..host_path() });
            v.apply(
                &Notice::Connected {
                    peer: pid(&format!("p{i}")),
                    name: format!("member{i}"),
                    path,
                    plain: false,
                    safety: None,
                    verified: false,
                },
                T0,
            );
        }
        v.rtt_ms = Some(0.4);
        let bar: String = status_line(&v, &dark(), 80).spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(bar.chars().count(), 80, "{bar}");
        assert!(bar.contains("│ 7 members: 6 ok, 1 connecting (F2) │ rtt 0.4 ms"), "{bar}");
        v.panel = true;
        insta::assert_snapshot!(screen(&v, &Editor::default(), 80, 18));
    }

    /// The screen with each cell's style: what a snapshot of colours needs.
    fn styled(theme: Theme, view: &View, width: u16, height: u16) -> String {
        format!("{:?}", screen_in(theme, view, &Editor::default(), width, height).buffer())
    }

    /// Bob mentions alice, says a URL, and alice searches for "slides".
    fn searched() -> View {
        let mut v = conversation();
        let said = |id, text: &str| Notice::Message {
            peer: pid("p1"),
            from: "bob".into(),
            id,
            ts: T0 + 240_000,
            text: text.into(),
            private: false,
        };
        v.apply(&said(3, "@alice the slides: https://example.org/q3?v=2"), T0);
        v.apply(&said(4, "Slides are final"), T0);
        v.search("slides");
        v
    }

    #[test]
    fn search_highlights_every_hit_and_the_current_one() {
        let v = searched();
        insta::assert_snapshot!(screen(&v, &Editor::default(), 60, 12));
        insta::assert_snapshot!(styled(Theme::Dark, &v, 60, 8));
    }

    #[test]
    fn the_read_marker_sits_where_you_looked_away() {
        let mut v = conversation();
        v.focus(false);
        v.apply(
            &Notice::Message {
                peer: pid("p1"),
                from: "bob".into(),
                id: 3,
                ts: T0 + 240_000,
                text: "are you there, alice?".into(),
                private: false,
            },
            T0,
        );
        v.focus(true);
        insta::assert_snapshot!(screen(&v, &Editor::default(), 60, 12));
    }

    #[test]
    fn no_colour_uses_emphasis_only() {
        let shown = styled(Theme::None, &searched(), 60, 8);
        for colour in ["fg: Red", "fg: Cyan", "fg: DarkGray", "bg: DarkGray", "bg: Yellow"] {
            assert!(!shown.contains(colour), "{colour} in\n{shown}");
        }
        insta::assert_snapshot!(shown);
    }

    #[test]
    fn the_light_palette_keeps_clear_of_light_colours() {
        let shown = styled(Theme::Light, &searched(), 60, 8);
        for colour in ["fg: Yellow", "fg: LightGreen", "fg: White, bg: DarkGray"] {
            assert!(!shown.contains(colour), "{colour} in\n{shown}");
        }
        insta::assert_snapshot!(shown);
    }

    #[test]
    fn urls_become_osc8_links_with_their_text_unchanged() {
        let mut v = View::new("demo", "alice");
        v.apply(
            &Notice::Message {
                peer: pid("p1"),
                from: "bob".into(),
                id: 1,
                ts: T0,
                text: "notes: https://ex.am/a?b=1, ok".into(),
                private: false,
            },
            T0,
        );
        let look = Look { links: true, ..look(Theme::None) };
        let mut terminal = Terminal::new(TestBackend::new(50, 3)).expect("test terminal");
        terminal.draw(|frame| draw(frame, &v, &Editor::default(), &look)).expect("draw");
        let row: Vec<String> =
            (0..50).map(|x| terminal.backend().buffer()[(x, 0)].symbol().to_owned()).collect();
        insta::assert_debug_snapshot!(row.concat());
    }
}
