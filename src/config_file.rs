//! The client's config file: TOML whose keys are the flags' names (`name = "alice"`,
//! `ice-server = ["stun:…"]`). Its values become the flags' defaults, so the precedence is
//! the relay's: a flag beats its environment variable, which beats the file, which beats the
//! built-in default. Settings are the flags that have an environment variable; one-off
//! actions such as `--send` are not.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};
use peertalk_signal::settings_file;

/// The environment variable that names the config file, like `--config`.
pub const CONFIG_ENV: &str = "PEERTALK_CONFIG";

/// What a secret setting shows as in `peertalk config`.
const MASK: &str = "********";

/// A config file that was read, and the settings it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub keys: BTreeSet<String>,
}

/// The config file to read: `--config` or [`CONFIG_ENV`] (which must exist), else
/// `$XDG_CONFIG_HOME/peertalk/config.toml` (or `~/.config/…`) when there is one.
#[must_use]
pub fn locate(args: &[OsString]) -> Option<PathBuf> {
    settings_file::flag_value(args, "--config")
        .or_else(|| std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()).map(PathBuf::from))
        .or_else(|| default_path().filter(|p| p.is_file()))
}

/// `$XDG_CONFIG_HOME/peertalk/config.toml`, or `~/.config/peertalk/config.toml`.
#[must_use]
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("peertalk").join("config.toml"))
}

/// Whether `arg` is a setting a config file may hold.
fn is_setting(arg: &Arg) -> bool {
    arg.get_long().is_some_and(|long| long != "config") && arg.get_env().is_some()
}

/// Reads `path` and makes each of its settings the default of its flag.
pub fn apply(command: Command, path: &Path) -> Result<(Command, ConfigFile), clap::Error> {
    let hint = "settings are named like the flags (`peertalk config` lists them)";
    let (command, keys) = settings_file::apply(command, path, is_setting, hint)?;
    Ok((command, ConfigFile { path: path.to_owned(), keys }))
}

/// The effective settings as a config file would say them, each with where it came from;
/// secrets are masked. `file` is the config file that was read, if any.
#[must_use]
pub fn describe(command: &Command, matches: &ArgMatches, file: Option<&ConfigFile>) -> String {
    let mut out = String::from(
        "# peertalk's settings. A flag beats its environment variable, which beats the config\n\
         # file, which beats the default.\n",
    );
    match file {
        Some(file) => out.push_str(&format!("# config file: {}\n", file.path.display())),
        None => out.push_str(&format!(
            "# config file: none (looked for {})\n",
            default_path()
                .map_or_else(|| "nothing: $HOME is not set".to_owned(), |p| p.display().to_string())
        )),
    }
    let mut lines = Vec::new();
    for arg in command.get_arguments().filter(|a| is_setting(a)) {
        let (Some(key), Some(env)) = (arg.get_long(), arg.get_env()) else { continue };
        let id = arg.get_id().as_str();
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => format!("--{key}"),
            Some(ValueSource::EnvVariable) => env.to_string_lossy().into_owned(),
            Some(ValueSource::DefaultValue) if file.is_some_and(|f| f.keys.contains(key)) => {
                "config file".to_owned()
            }
            _ => "default".to_owned(),
        };
        let value = if values.is_empty() {
            None
        } else if arg.is_hide_env_values_set() {
            Some(format!("\"{MASK}\""))
        } else {
            Some(toml_value(arg, &values))
        };
        lines.push(match value {
            Some(value) => (format!("{key} = {value}"), source),
            None => (format!("# {key} is not set"), source),
        });
    }
    let width = lines.iter().map(|(setting, _)| setting.chars().count()).max().unwrap_or(0);
    for (setting, source) in lines {
        if setting.starts_with('#') {
            out.push_str(&setting);
        } else {
            out.push_str(&format!("{setting:width$}  # {source}"));
        }
        out.push('\n');
    }
    out
}

/// A flag's values as TOML: a list for repeatable flags, a boolean for switches, a string
/// otherwise (the config file takes strings for numbers too).
fn toml_value(arg: &Arg, values: &[String]) -> String {
    let takes_many =
        arg.get_value_delimiter().is_some() || matches!(arg.get_action(), clap::ArgAction::Append);
    let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue | clap::ArgAction::SetFalse);
    // A JSON string is a valid TOML basic string: the same escapes.
    let quoted = |v: &String| serde_json::Value::String(v.clone()).to_string();
    if takes_many {
        format!("[{}]", values.iter().map(quoted).collect::<Vec<_>>().join(", "))
    } else if switch && let [value] = values {
        value.clone()
    } else {
        values.iter().map(quoted).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;
    use crate::cli::Cli;

    fn parse_with_file(toml: &str, args: &[&str]) -> Result<(Cli, String), String> {
        let dir = std::env::temp_dir().join(format!("peertalk-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let path = dir.join(format!("{}.toml", toml.len()));
        std::fs::write(&path, toml).map_err(|e| e.to_string())?;
        let (command, file) = apply(Cli::command(), &path).map_err(|e| e.to_string())?;
        let mut argv = vec!["peertalk"];
        argv.extend_from_slice(args);
        let matches = command.clone().try_get_matches_from(argv).map_err(|e| e.to_string())?;
        let described = describe(&command, &matches, Some(&file));
        let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        Ok((cli, described))
    }

    #[test]
    fn the_file_gives_defaults_that_flags_override() {
        let toml = "room = \"team\"\nname = \"carol\"\nice-server = [\"stun:127.0.0.1:3478\", \"stun:127.0.0.2:3478\"]\nrelay-only = false\nheadless = true\nmax-file-size = \"1G\"\n";
        let (cli, described) = parse_with_file(toml, &["--name", "dave"]).expect("parsed");
        assert_eq!(cli.room.as_deref(), Some("team"), "a required flag can come from the file");
        assert_eq!(cli.name.as_deref(), Some("dave"), "the flag wins");
        assert_eq!(cli.ice_servers.len(), 2, "a list is a repeated flag");
        assert!(cli.headless && !cli.relay_only);
        assert_eq!(cli.max_file_size, "1G");
        assert!(described.contains("name = \"dave\""), "{described}");
        assert!(described.contains("# --name"), "{described}");
        assert!(
            described.contains("ice-server = [\"stun:127.0.0.1:3478\", \"stun:127.0.0.2:3478\"]"),
            "{described}"
        );
        assert!(described.contains("headless = true"), "{described}");
    }

    #[test]
    fn secrets_are_masked_and_sources_named() {
        let toml = "ice-credential = \"hunter2\"\npassphrase = \"open sesame\"\n";
        let (_, described) = parse_with_file(toml, &["--room", "r"]).expect("parsed");
        assert!(!described.contains("hunter2") && !described.contains("open sesame"), "{described}");
        let line = described.lines().find(|l| l.starts_with("ice-credential")).expect("listed");
        assert!(line.contains(MASK) && line.ends_with("# config file"), "{line}");
        assert!(described.contains("# token is not set"), "{described}");
        assert!(!described.contains("send-file"), "actions are not settings: {described}");
    }

    #[test]
    fn an_unknown_key_names_the_key_and_the_file() {
        let err = parse_with_file("nmae = \"x\"\n", &[]).expect_err("refused");
        assert!(err.contains("\"nmae\"") && err.contains(".toml") && err.contains("not a setting"), "{err}");
        let err = parse_with_file("send = \"hi\"\n", &[]).expect_err("an action is refused");
        assert!(err.contains("\"send\""), "{err}");
        let err = parse_with_file("name = {first = \"x\"}\n", &[]).expect_err("a table is refused");
        assert!(err.contains("a table"), "{err}");
        let err = parse_with_file("name = \n", &[]).expect_err("bad TOML is refused");
        assert!(err.contains("not valid TOML"), "{err}");
    }
}
