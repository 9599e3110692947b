//! Known peers, like SSH's `known_hosts`: the certificate fingerprint verified for each
//! name, one `NAME FINGERPRINT` line each, in the state folder beside the identity.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// The known peers, by lower-case name. A file that is missing knows nobody; lines that do
/// not parse are skipped (and reported), so one bad line costs only itself.
pub fn load(path: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let Ok(text) = std::fs::read_to_string(path) else { return (BTreeMap::new(), Vec::new()) };
    let mut known = BTreeMap::new();
    let mut skipped = Vec::new();
    for (n, line) in text.lines().enumerate() {
        match line.split_once(' ') {
            Some((name, fingerprint)) if !name.is_empty() && is_fingerprint(fingerprint) => {
                known.insert(name.to_lowercase(), fingerprint.to_owned());
            }
            _ if line.trim().is_empty() => {}
            _ => skipped.push(format!(
                "line {} of {} is not NAME FINGERPRINT; it was skipped",
                n + 1,
                path.display()
            )),
        }
    }
    (known, skipped)
}

/// Remembers `fingerprint` for `name`, replacing what was there, and writes the file whole
/// (under another name first, then renamed, so it is never half written).
pub fn remember(path: &Path, name: &str, fingerprint: &str) -> io::Result<()> {
    let (mut known, _) = load(path);
    known.insert(name.to_lowercase(), fingerprint.to_owned());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text: String = known.iter().map(|(name, fp)| format!("{name} {fp}\n")).collect();
    let partial = path.with_extension(format!("new-{}", std::process::id()));
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, path)
}

/// `AB:CD:…`: 32 pairs of hex digits.
fn is_fingerprint(text: &str) -> bool {
    let pairs: Vec<&str> = text.split(':').collect();
    pairs.len() == 32 && pairs.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_peers_are_read_back_by_name_and_bad_lines_are_skipped() {
        let dir = std::env::temp_dir().join(format!("peertalk-known-{}", std::process::id()));
        let path = dir.join("known_peers");
        let fp = ["AB"; 32].join(":");
        remember(&path, "Bob", &fp).expect("write");
        remember(&path, "carol", &["01"; 32].join(":")).expect("write");
        remember(&path, "bob", &["CD"; 32].join(":")).expect("replace");
        let mut text = std::fs::read_to_string(&path).expect("read");
        text.push_str("garbage line\n");
        std::fs::write(&path, text).expect("write");
        let (known, skipped) = load(&path);
        assert_eq!(known.get("bob").map(String::as_str), Some(["CD"; 32].join(":").as_str()));
        assert_eq!(known.len(), 2);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
