//! Settings files for both binaries: TOML whose keys are the flags' names
//! (`max-peers-per-room = 8`, `ice-server = ["stun:…"]`). Each value becomes its flag's
//! default, so a flag beats its environment variable, which beats the file, which beats
//! the built-in default.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Arg, Command};

/// The value of `flag` (`--config PATH` or `--config=PATH`) in raw arguments, found before
/// the full parse because the file it names shapes that parse.
#[must_use]
pub fn flag_value(args: &[OsString], flag: &str) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == flag {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.to_str().and_then(|a| a.strip_prefix(flag)).and_then(|a| a.strip_prefix('='))
        {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// Reads `path` and makes each of its settings the default of its flag; `is_setting` says
/// which flags a file may set, `hint` ends the sentence for a key that is not one. Returns
/// the keys the file set.
pub fn apply(
    mut command: Command,
    path: &Path,
    is_setting: impl Fn(&Arg) -> bool,
    hint: &str,
) -> Result<(Command, BTreeSet<String>), clap::Error> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| {
        command.error(clap::error::ErrorKind::Io, format!("could not read the config file {shown}: {e}"))
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        command.error(
            clap::error::ErrorKind::InvalidValue,
            format!("the config file {shown} is not valid TOML: {e}"),
        )
    })?;
    let mut keys = BTreeSet::new();
    for (key, value) in table {
        let id = command
            .get_arguments()
            .find(|a| is_setting(a) && a.get_long() == Some(key.as_str()))
            .map(|a| a.get_id().clone());
        let Some(id) = id else {
            return Err(command.error(
                clap::error::ErrorKind::UnknownArgument,
                format!("the config file {shown} sets {key:?}, which is not a setting; {hint}"),
            ));
        };
        let Some(text) = setting_text(&value) else {
            return Err(command.error(
                clap::error::ErrorKind::InvalidValue,
                format!(
                    "the config file {shown} sets {key:?} to a table or a date; give text, a number, true/false or a list"
                ),
            ));
        };
        // A setting the file gives is no longer missing, even a required one.
        command = command.mut_arg(id, |arg| arg.default_value(text).required(false));
        keys.insert(key);
    }
    Ok((command, keys))
}

/// A TOML value as the text its flag would take; lists join with commas, as the
/// environment variables' do.
fn setting_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => {
            items.iter().map(setting_text).collect::<Option<Vec<_>>>().map(|v| v.join(","))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_flag_is_found_in_either_form_and_not_after_a_double_dash() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            flag_value(&args(&["x", "--config", "a.toml"]), "--config"),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            flag_value(&args(&["x", "doctor", "--config=b.toml"]), "--config"),
            Some(PathBuf::from("b.toml"))
        );
        assert_eq!(flag_value(&args(&["x", "--configure"]), "--config"), None);
        assert_eq!(flag_value(&args(&["x", "--", "--config", "c"]), "--config"), None);
    }
}
