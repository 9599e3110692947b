//! Resume tokens: how a client that lost its connection comes back as the same peer.
//!
//! A token is 128 random bits; the peer id is a hash of it. The relay keeps no table of
//! tokens, so a restarted relay honours the tokens of the one before it, and only the
//! holder of a token can claim its id (finding another token with the same id means
//! inverting SHA-256 on 64 bits).

use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

use crate::hex::encode as hex;
use crate::proto::PeerId;

const TOKEN_BYTES: usize = 16;
/// Bytes of the hash that make the id: 64 bits, 16 hex digits.
const ID_BYTES: usize = 8;

/// A resume token, as the relay issues it and a client returns it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Token([u8; TOKEN_BYTES]);

impl Token {
    /// A fresh token for a new connection.
    pub fn issue() -> Self {
        Self(random_bytes())
    }

    /// Reads a token a client sent back: 32 lowercase or uppercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != TOKEN_BYTES * 2 {
            return None;
        }
        let mut bytes = [0; TOKEN_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(bytes))
    }

    /// The peer id this token stands for.
    pub fn peer_id(&self) -> PeerId {
        let hash = digest(&SHA256, &self.0);
        PeerId(format!("p{}", hex(&hash.as_ref()[..ID_BYTES])))
    }

    pub fn to_hex(self) -> String {
        hex(&self.0)
    }
}

/// `N` bytes from the system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    // The system's random source failing is a broken machine, not a client's doing;
    // zeroes would hand every client the same id, so stop rather than go on.
    SystemRandom::new().fill(&mut bytes).expect("the system random number generator works");
    bytes
}

impl std::fmt::Debug for Token {
    // A token is a credential: logs name the id it stands for, never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({})", self.peer_id())
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn a_token_round_trips_and_always_names_the_same_id() {
        let token = Token::issue();
        let back = Token::parse(&token.to_hex()).expect("parses");
        assert_eq!(back, token);
        assert_eq!(back.peer_id(), token.peer_id());
        assert_eq!(Token::parse(&token.to_hex().to_uppercase()), Some(token));
        assert_eq!(token.peer_id().0.len(), 17);
    }

    #[test]
    fn different_tokens_name_different_ids() {
        assert_ne!(Token::issue().peer_id(), Token::issue().peer_id());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in
            ["", "abc", &"g".repeat(32), &"0".repeat(31), &"0".repeat(33), &format!("é{}", "0".repeat(30))]
        {
            assert_eq!(Token::parse(bad), None, "{bad:?}");
        }
    }
}
