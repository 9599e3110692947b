//! Tab completion of the path in `/send [NAME] PATH`, from what is on disk.

use std::path::{MAIN_SEPARATOR, Path};

/// The `/send` line with its last word completed as far as the files allow: the whole name
/// when one matches (a folder gets a trailing `/`), the longest common start when several
/// do. `None` when it is not a `/send` line or nothing matches.
#[must_use]
pub fn send_line(line: &str) -> Option<String> {
    let args = line.strip_prefix("/send ")?;
    let start = args.rfind(' ').map_or(0, |i| i + 1);
    let word = &args[start..];
    let done = complete(word, |dir| {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path().is_dir()))
                    .collect()
            })
            .unwrap_or_default()
    })?;
    Some(format!("/send {}{done}", &args[..start]))
}

/// Completes `word` against the entries `list` gives for a folder (name, is a folder).
fn complete(word: &str, list: impl Fn(&Path) -> Vec<(String, bool)>) -> Option<String> {
    let (dir, prefix) = match word.rfind(MAIN_SEPARATOR) {
        Some(i) => (&word[..=i], &word[i + 1..]),
        None => ("", word),
    };
    let expanded = crate::command::expand_home(if dir.is_empty() { "." } else { dir });
    let mut matches: Vec<(String, bool)> = list(&expanded)
        .into_iter()
        // Hidden files only when asked for with a leading dot.
        .filter(|(name, _)| name.starts_with(prefix) && (prefix.starts_with('.') || !name.starts_with('.')))
        .collect();
    matches.sort();
    let (first, first_is_dir) = matches.first()?.clone();
    if matches.len() == 1 {
        let slash = if first_is_dir { MAIN_SEPARATOR.to_string() } else { String::new() };
        return Some(format!("{dir}{first}{slash}"));
    }
    let common = matches.iter().fold(first, |common, (name, _)| {
        common.chars().zip(name.chars()).take_while(|(a, b)| a == b).map(|(a, _)| a).collect()
    });
    (common.len() > prefix.len()).then(|| format!("{dir}{common}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<(String, bool)> {
        match dir.to_str() {
            Some(".") => {
                vec![("notes.txt".into(), false), ("notebook".into(), true), (".hidden".into(), false)]
            }
            Some("docs/") => vec![("report.pdf".into(), false)],
            _ => Vec::new(),
        }
    }

    #[test]
    fn a_unique_match_completes_and_a_folder_gets_a_slash() {
        assert_eq!(complete("notes", listing), Some("notes.txt".into()));
        assert_eq!(complete("noteb", listing), Some("notebook/".into()));
        assert_eq!(complete("docs/r", listing), Some("docs/report.pdf".into()));
    }

    #[test]
    fn several_matches_complete_their_common_start_and_hidden_files_need_a_dot() {
        assert_eq!(complete("n", listing), Some("note".into()));
        assert_eq!(complete("note", listing), None);
        assert_eq!(complete("", listing), Some("note".into()));
        assert_eq!(complete(".h", listing), Some(".hidden".into()));
        assert_eq!(complete("x", listing), None);
    }

    #[test]
    fn only_send_lines_are_completed() {
        assert_eq!(send_line("hello"), None);
    }
}
