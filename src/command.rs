//! Slash commands, typed in the interface or (with `--commands`) piped by a script: one
//! table, so `/help` and the parser can never disagree.

/// What a command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Nick(String),
    /// A message for one member only.
    Msg {
        to: String,
        text: String,
    },
    Peers,
    Members,
    /// Who has our message (this id, or the last one).
    Info(Option<u64>),
    Clear,
    /// `/search TEXT` finds TEXT in the scrollback; `/search` alone ends the search.
    Search(String),
    Call,
    Hangup,
    Mute,
    /// `/send [NAME] PATH`, as typed: which part is a name depends on what exists (see
    /// [`send_target`]).
    Send(String),
    /// `/accept [N]` (true) or `/decline [N]`.
    Answer {
        file: Option<u64>,
        accept: bool,
    },
    /// `/cancel [N]`.
    Cancel(Option<u64>),
    /// `/verify NAME` shows the safety words; `/verify NAME yes` marks the member verified.
    Verify {
        name: String,
        confirm: bool,
    },
    Quit,
    /// Not a command we know, or used wrongly: show this sentence and the help.
    Unknown(String),
}

struct Spec {
    name: &'static str,
    args: &'static str,
    help: &'static str,
    parse: fn(&str) -> Result<Command, String>,
}

const COMMANDS: &[Spec] = &[
    Spec { name: "help", args: "", help: "show this list", parse: |_| Ok(Command::Help) },
    Spec {
        name: "nick",
        args: "NAME",
        help: "change your display name",
        parse: |args| match args.trim() {
            "" => Err("/nick needs a name, e.g. /nick alice".to_owned()),
            name => Ok(Command::Nick(name.to_owned())),
        },
    },
    Spec {
        name: "msg",
        args: "NAME TEXT",
        help: "send a private message to one member",
        parse: |args| match args.trim_start().split_once(char::is_whitespace) {
            Some((to, text)) if !text.trim().is_empty() => {
                Ok(Command::Msg { to: to.to_owned(), text: text.trim_start().to_owned() })
            }
            _ => Err("/msg needs a name and a message, e.g. /msg bob see you at three".to_owned()),
        },
    },
    Spec {
        name: "peers",
        args: "",
        help: "list the peers and their connections",
        parse: |_| Ok(Command::Peers),
    },
    Spec {
        name: "members",
        args: "",
        help: "show or hide the members panel (also F2)",
        parse: |_| Ok(Command::Members),
    },
    Spec {
        name: "info",
        args: "[ID]",
        help: "who has your last message (or message ID)",
        parse: |args| match args.trim() {
            "" => Ok(Command::Info(None)),
            id => id
                .trim_start_matches('#')
                .parse()
                .map(|id| Command::Info(Some(id)))
                .map_err(|_| format!("/info takes a message number, e.g. /info 3, not {id:?}")),
        },
    },
    Spec { name: "clear", args: "", help: "clear the conversation on screen", parse: |_| Ok(Command::Clear) },
    Spec {
        name: "search",
        args: "[TEXT]",
        help: "find TEXT in the conversation (also Ctrl-R; again for older, Ctrl-S newer, Esc ends)",
        parse: |args| Ok(Command::Search(args.trim().to_owned())),
    },
    Spec {
        name: "call",
        args: "",
        help: "send your audio to the peers (the microphone, or --audio-in)",
        parse: |_| Ok(Command::Call),
    },
    Spec { name: "hangup", args: "", help: "stop sending your audio", parse: |_| Ok(Command::Hangup) },
    Spec {
        name: "mute",
        args: "",
        help: "mute or unmute your audio in a call",
        parse: |_| Ok(Command::Mute),
    },
    Spec {
        name: "send",
        args: "[NAME] PATH",
        help: "send a file to everyone, or to one member (Tab completes the path)",
        parse: |args| match args.trim() {
            "" => Err("/send needs a file, e.g. /send notes.txt or /send bob notes.txt".to_owned()),
            args => Ok(Command::Send(args.to_owned())),
        },
    },
    Spec {
        name: "accept",
        args: "[N]",
        help: "take file offer N (or the oldest waiting; also Alt-Y)",
        parse: |args| file_number("accept", args).map(|file| Command::Answer { file, accept: true }),
    },
    Spec {
        name: "decline",
        args: "[N]",
        help: "turn down file offer N (or the oldest waiting; also Alt-N)",
        parse: |args| file_number("decline", args).map(|file| Command::Answer { file, accept: false }),
    },
    Spec {
        name: "cancel",
        args: "[N]",
        help: "stop file transfer N (or all of them), either way",
        parse: |args| file_number("cancel", args).map(Command::Cancel),
    },
    Spec {
        name: "verify",
        args: "NAME [yes]",
        help: "safety words with a member; with yes, mark it verified",
        parse: |args| match args.split_whitespace().collect::<Vec<_>>()[..] {
            [name] => Ok(Command::Verify { name: name.to_owned(), confirm: false }),
            [name, "yes"] => Ok(Command::Verify { name: name.to_owned(), confirm: true }),
            _ => {
                Err("/verify needs a name, e.g. /verify bob; /verify bob yes once the words match".to_owned())
            }
        },
    },
    Spec { name: "quit", args: "", help: "close the connections and leave", parse: |_| Ok(Command::Quit) },
];

/// An optional transfer number, `3` or `#3`.
fn file_number(command: &str, args: &str) -> Result<Option<u64>, String> {
    match args.trim() {
        "" => Ok(None),
        n => n
            .trim_start_matches('#')
            .parse()
            .map(Some)
            .map_err(|_| format!("/{command} takes a transfer number, e.g. /{command} 2, not {n:?}")),
    }
}

/// Who `/send ARGS` is for and what it sends: the whole of `ARGS` when that names a file
/// (spaces and all), else a member's name and then the path. A leading `~/` is the home
/// folder.
#[must_use]
pub fn send_target(
    args: &str,
    exists: impl Fn(&std::path::Path) -> bool,
) -> (Option<String>, std::path::PathBuf) {
    let whole = expand_home(args);
    if exists(&whole) {
        return (None, whole);
    }
    match args.split_once(char::is_whitespace) {
        Some((name, path)) if !path.trim().is_empty() => (Some(name.to_owned()), expand_home(path.trim())),
        _ => (None, whole),
    }
}

/// `~/x` as a path in the home folder; anything else as it is.
#[must_use]
pub fn expand_home(path: &str) -> std::path::PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => std::path::PathBuf::from(home).join(rest),
        _ => std::path::PathBuf::from(path),
    }
}

/// Parses a line that starts with `/`; `None` if it is a message (`//text` sends `/text`).
#[must_use]
pub fn parse(line: &str) -> Option<Command> {
    let rest = line.strip_prefix('/')?;
    if rest.starts_with('/') {
        return None;
    }
    let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    Some(match COMMANDS.iter().find(|c| c.name == name) {
        Some(spec) => (spec.parse)(args).unwrap_or_else(Command::Unknown),
        None => Command::Unknown(format!("there is no command /{name}")),
    })
}

/// The help text, one line per command.
#[must_use]
pub fn help() -> Vec<String> {
    let mut lines = vec!["commands (start a message with // to send a leading /):".to_owned()];
    lines.extend(COMMANDS.iter().map(|c| {
        let usage =
            if c.args.is_empty() { format!("/{}", c.name) } else { format!("/{} {}", c.name, c.args) };
        format!("  {usage:<12} {}", c.help)
    }));
    lines.push(
        "  keys: PageUp/PageDown scroll, Up/Down history, Alt-Enter new line, Tab completes a path, F2 members, Ctrl-C quit"
            .to_owned(),
    );
    lines
}

/// Strips the escape from a `//text` message.
#[must_use]
pub fn unescape(line: &str) -> &str {
    if line.starts_with("//") { &line[1..] } else { line }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_from_the_table() {
        assert_eq!(parse("/help"), Some(Command::Help));
        assert_eq!(parse("/nick  bob "), Some(Command::Nick("bob".into())));
        assert_eq!(parse("/quit"), Some(Command::Quit));
        assert_eq!(parse("/info"), Some(Command::Info(None)));
        assert_eq!(parse("/info 3"), Some(Command::Info(Some(3))));
        assert_eq!(
            parse("/msg bob  see you"),
            Some(Command::Msg { to: "bob".into(), text: "see you".into() })
        );
        assert!(
            matches!(parse("/msg bob"), Some(Command::Unknown(m)) if m.contains("needs a name and a message"))
        );
        assert_eq!(parse("/call"), Some(Command::Call));
        assert_eq!(parse("/hangup"), Some(Command::Hangup));
        assert_eq!(parse("/mute"), Some(Command::Mute));
        assert!(matches!(parse("/nick"), Some(Command::Unknown(m)) if m.contains("needs a name")));
        assert!(matches!(parse("/dance"), Some(Command::Unknown(m)) if m.contains("/dance")));
        assert_eq!(parse("/send bob a b.txt"), Some(Command::Send("bob a b.txt".into())));
        assert!(matches!(parse("/send"), Some(Command::Unknown(m)) if m.contains("needs a file")));
        assert_eq!(parse("/accept"), Some(Command::Answer { file: None, accept: true }));
        assert_eq!(parse("/decline #2"), Some(Command::Answer { file: Some(2), accept: false }));
        assert_eq!(parse("/cancel 3"), Some(Command::Cancel(Some(3))));
        assert_eq!(parse("/verify bob"), Some(Command::Verify { name: "bob".into(), confirm: false }));
        assert_eq!(parse("/verify bob yes"), Some(Command::Verify { name: "bob".into(), confirm: true }));
        assert!(matches!(parse("/verify"), Some(Command::Unknown(m)) if m.contains("needs a name")));
        assert!(matches!(parse("/cancel x"), Some(Command::Unknown(m)) if m.contains("transfer number")));
    }

    #[test]
    fn send_takes_a_name_only_when_the_whole_is_not_a_file() {
        let exists = |p: &std::path::Path| p == std::path::Path::new("my notes.txt");
        assert_eq!(send_target("my notes.txt", exists), (None, "my notes.txt".into()));
        assert_eq!(send_target("bob my notes.txt", exists), (Some("bob".into()), "my notes.txt".into()));
        assert_eq!(send_target("report.pdf", exists), (None, "report.pdf".into()));
    }

    #[test]
    fn plain_text_and_escaped_slashes_are_messages() {
        assert_eq!(parse("hello"), None);
        assert_eq!(parse("//etc/passwd is a path"), None);
        assert_eq!(unescape("//etc"), "/etc");
    }

    #[test]
    fn help_lists_every_command() {
        let help = help().join("\n");
        for c in COMMANDS {
            assert!(help.contains(&format!("/{}", c.name)));
        }
    }
}
