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
    Call,
    Hangup,
    Mute,
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
    Spec { name: "quit", args: "", help: "close the connections and leave", parse: |_| Ok(Command::Quit) },
];

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
        "  keys: PageUp/PageDown scroll, Up/Down history, Alt-Enter new line, F2 members, Ctrl-C quit"
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
