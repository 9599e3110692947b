//! Turning the name a sender gave its file into one that is safe to create in the receive
//! folder. The sender controls every byte of it: it must never name a path outside the
//! folder, a device, a hidden file, or print as anything but itself.

use std::path::PathBuf;

use peertalk_signal::proto::is_unsafe_char;

/// The longest name kept, in bytes: file systems allow 255, and the temporary name adds a
/// prefix and a suffix to it.
const MAX_NAME_BYTES: usize = 200;

/// Extensions up to this long are kept when a name is shortened.
const MAX_EXTENSION_BYTES: usize = 16;

/// Names Windows reserves for devices, whatever the extension; refused everywhere so that
/// a file received on Linux can be copied anywhere.
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
    "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// A file name made from `name`: path separators, control and bidirectional characters
/// become `_`; leading dots (`..`, hidden files) and trailing dots and spaces go; a
/// reserved device name gets a `_` in front; an over-long name is shortened, keeping its
/// extension. Never empty, never a path.
#[must_use]
pub fn sanitise(name: &str) -> String {
    let replaced: String =
        name.chars().map(|c| if matches!(c, '/' | '\\') || is_unsafe_char(c) { '_' } else { c }).collect();
    let trimmed = replaced.trim().trim_start_matches('.').trim_end_matches(['.', ' ']);
    let mut name = if trimmed.is_empty() { "file".to_owned() } else { trimmed.to_owned() };
    let stem = name.split('.').next().unwrap_or_default().trim_end();
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        name.insert(0, '_');
    }
    shorten(&name)
}

fn shorten(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_owned();
    }
    let ext = name.rfind('.').map(|i| &name[i..]).filter(|e| e.len() <= MAX_EXTENSION_BYTES).unwrap_or("");
    let mut stem = String::new();
    for c in name.chars() {
        if stem.len() + c.len_utf8() + ext.len() > MAX_NAME_BYTES {
            break;
        }
        stem.push(c);
    }
    stem + ext
}

/// The `n`th alternative to `name` when it is taken: `photo.jpg` becomes `photo-2.jpg`,
/// `archive.tar.gz` `archive-2.tar.gz`.
#[must_use]
pub fn numbered(name: &str, n: u32) -> String {
    match name.find('.') {
        Some(dot) if dot > 0 => format!("{}-{n}{}", &name[..dot], &name[dot..]),
        _ => format!("{name}-{n}"),
    }
}

/// The name of the file a transfer is written to until its hash is checked: hidden, beside
/// the target, and different for every transfer.
#[must_use]
pub fn partial(name: &str, peer: &str, id: u64) -> String {
    let peer: String = peer.chars().filter(char::is_ascii_alphanumeric).take(16).collect();
    format!(".{name}.{peer}-{id}.part")
}

/// Where received files go when `--receive-dir` is not given: the current folder for a
/// script; for the interface, `$XDG_DOWNLOAD_DIR`, else `~/Downloads`.
#[must_use]
pub fn default_receive_dir(interface: bool) -> PathBuf {
    if !interface {
        return PathBuf::from(".");
    }
    std::env::var_os("XDG_DOWNLOAD_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join("Downloads")))
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_plain_names_inside_the_folder() {
        assert_eq!(sanitise("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitise("a/b"), "a_b");
        assert_eq!(sanitise("a\\b"), "a_b");
        assert_eq!(sanitise("\u{1b}]0;x\u{7}.txt"), "_]0;x_.txt");
        assert_eq!(sanitise("evil\u{202E}txt.exe"), "evil_txt.exe");
        assert_eq!(sanitise(".."), "file");
        assert_eq!(sanitise(""), "file");
        assert_eq!(sanitise(" . "), "file");
        assert_eq!(sanitise(".bashrc"), "bashrc");
        assert_eq!(sanitise("notes. "), "notes");
    }

    #[test]
    fn device_names_are_not_created() {
        assert_eq!(sanitise("CON"), "_CON");
        assert_eq!(sanitise("con.txt"), "_con.txt");
        assert_eq!(sanitise("LPT9.tar.gz"), "_LPT9.tar.gz");
        assert_eq!(sanitise("CONSOLE.txt"), "CONSOLE.txt");
    }

    #[test]
    fn long_names_keep_their_extension_and_a_char_boundary() {
        let long = format!("{}.pdf", "é".repeat(300));
        let short = sanitise(&long);
        assert!(short.len() <= MAX_NAME_BYTES, "{}", short.len());
        assert!(short.ends_with("é.pdf"), "{short}");
    }

    #[test]
    fn taken_names_get_a_number_before_the_extensions() {
        assert_eq!(numbered("photo.jpg", 2), "photo-2.jpg");
        assert_eq!(numbered("archive.tar.gz", 3), "archive-3.tar.gz");
        assert_eq!(numbered("README", 2), "README-2");
        assert_eq!(partial("a.txt", "p-12", 4), ".a.txt.p12-4.part");
    }
}
