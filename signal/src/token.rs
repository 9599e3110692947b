//! Join tokens: per-room permission to join, until a time, signed with a key that only the
//! relay and whoever mints tokens for it hold. An operator hands a token for one room to
//! the people of that room, without sharing anything that opens the others.
//!
//! A token is `pt1.EXPIRES.ROOM.MAC`: the expiry in Unix seconds, the room's bytes in hex,
//! and an HMAC-SHA256 over both (hex). The relay keeps no list of tokens.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;

use crate::hex::{decode as unhex, encode as hex};

/// The shortest key accepted, in bytes.
const MIN_KEY_BYTES: usize = 16;
const PREFIX: &str = "pt1";

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Well made and genuine, but its time is over.
    Expired,
    /// Malformed, for another room, or not signed with this relay's key.
    Invalid(String),
}

/// The key tokens are signed with.
pub struct TokenKey(hmac::Key);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// The key in `path`: its bytes, a trailing newline left out.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("could not read the token key {}: {e}", path.display()))?;
        let key = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the token key {} holds {} bytes; give at least {MIN_KEY_BYTES} random ones (e.g. head -c 32 /dev/urandom > {})",
                path.display(),
                key.len(),
                path.display()
            ));
        }
        Ok(Self::new(key))
    }

    #[must_use]
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// A token for `room`, valid until `expires` (Unix seconds).
    #[must_use]
    pub fn mint(&self, room: &str, expires: u64) -> String {
        let room_hex = hex(room.as_bytes());
        let mac = hmac::sign(&self.0, signed(expires, &room_hex).as_bytes());
        format!("{PREFIX}.{expires}.{room_hex}.{}", hex(mac.as_ref()))
    }

    /// Whether `token` admits a join to `room` at `now` (Unix seconds).
    pub fn check(&self, token: &str, room: &str, now: u64) -> Result<(), TokenRefusal> {
        let invalid = |why: &str| Err(TokenRefusal::Invalid(why.to_owned()));
        let parts: Vec<&str> = token.split('.').collect();
        let [PREFIX, expires, room_hex, mac] = parts[..] else {
            return invalid("it is not a peertalk join token");
        };
        let (Ok(expires), Some(mac)) = (expires.parse::<u64>(), unhex(mac)) else {
            return invalid("it is not a peertalk join token");
        };
        if hmac::verify(&self.0, signed(expires, room_hex).as_bytes(), &mac).is_err() {
            return invalid("it was not issued with this relay's key, or it was altered");
        }
        let for_room = unhex(room_hex).and_then(|b| String::from_utf8(b).ok()).unwrap_or_default();
        if for_room != room {
            return Err(TokenRefusal::Invalid(format!("it is for room {for_room:?}, not {room:?}")));
        }
        if now >= expires {
            return Err(TokenRefusal::Expired);
        }
        Ok(())
    }
}

fn signed(expires: u64, room_hex: &str) -> String {
    format!("peertalk join token v1\0{expires}\0{room_hex}")
}

/// The wall clock in Unix seconds.
#[must_use]
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A duration such as `90s`, `30m`, `1h` or `7d`, in seconds.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let scale = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} is not a duration; give one such as 90s, 30m, 1h or 7d")),
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a duration; give one such as 90s, 30m, 1h or 7d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn key() -> TokenKey {
        TokenKey::new(b"a key of thirty-two bytes, or so")
    }

    #[test]
    fn a_token_admits_its_room_until_it_expires() {
        let token = key().mint("team", NOW + 60);
        assert_eq!(key().check(&token, "team", NOW), Ok(()));
        assert_eq!(key().check(&token, "team", NOW + 60), Err(TokenRefusal::Expired));
        assert!(
            matches!(key().check(&token, "other", NOW), Err(TokenRefusal::Invalid(why)) if why.contains("\"team\""))
        );
    }

    #[test]
    fn tampered_tokens_and_other_keys_are_refused() {
        let token = key().mint("team", NOW + 60);
        let later = token.replacen(&(NOW + 60).to_string(), &(NOW + 6000).to_string(), 1);
        let other_key = TokenKey::new(b"another key of thirty-two bytes!").mint("team", NOW + 60);
        for bad in [later.as_str(), other_key.as_str(), "pt1.x.y.z", "", "pt1.1.74.zz"] {
            assert!(matches!(key().check(bad, "team", NOW), Err(TokenRefusal::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert_eq!(parse_ttl("1h"), Ok(3600));
        assert_eq!(parse_ttl("7d"), Ok(604_800));
        assert!(parse_ttl("0h").is_err());
        assert!(parse_ttl("soon").is_err());
    }
}
