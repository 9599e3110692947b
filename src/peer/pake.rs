//! Passphrase rooms: before a peer's chat channel is used, both sides prove they know the
//! room's passphrase with SPAKE2 (symmetric, as magic-wormhole does), and each binds its
//! certificate fingerprint to the agreed key. A relay that does not know the passphrase
//! cannot take part; one that swaps certificates in the descriptions is caught, because
//! the fingerprint the peer vouched for is not the one in the description we got.

use std::fmt;

use peertalk_signal::hex::{decode as unhex, encode as hex};
use peertalk_signal::proto::PakeMessage;
use spake2::{Ed25519Group, Identity, Password, Spake2};

/// What a mismatch says: to a person, and as the connection's failure.
pub const MISMATCH: &str = "the passphrase does not match, or someone is intercepting";

/// A room's passphrase, never printed.
#[derive(Clone)]
pub struct Passphrase {
    pub passphrase: String,
    pub room: String,
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passphrase").field("room", &self.room).finish_non_exhaustive()
    }
}

/// One peer's exchange: it lasts as long as the peer, across replaced connections.
pub struct Pake {
    spake: Option<Spake2<Ed25519Group>>,
    key: Option<Vec<u8>>,
    /// The local fingerprint a confirmation was sent for.
    confirmed: Option<String>,
    /// Confirmations the peer sent (one per certificate it used).
    remote: Vec<Vec<u8>>,
}

/// Where the check stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Waiting,
    Trusted,
    Mismatch,
}

impl Pake {
    /// Starts the exchange; the message goes to the peer.
    pub fn start(secret: &Passphrase) -> (Self, PakeMessage) {
        let identity = Identity::new(format!("peertalk room {}", secret.room).as_bytes());
        let (spake, message) =
            Spake2::<Ed25519Group>::start_symmetric(&Password::new(secret.passphrase.as_bytes()), &identity);
        let pake = Self { spake: Some(spake), key: None, confirmed: None, remote: Vec::new() };
        (pake, PakeMessage::Spake2(hex(&message)))
    }

    /// Takes a message from the peer.
    pub fn receive(&mut self, message: PakeMessage) -> Result<(), String> {
        match message {
            PakeMessage::Spake2(text) => {
                let spake = self.spake.take().ok_or("the peer started the passphrase exchange twice")?;
                let bytes = unhex(&text).ok_or("the peer's passphrase exchange is not hex")?;
                self.key = Some(
                    spake
                        .finish(&bytes)
                        .map_err(|e| format!("the peer's passphrase exchange failed ({e:?})"))?,
                );
            }
            PakeMessage::Confirm(text) => {
                self.remote.push(unhex(&text).ok_or("the peer's confirmation is not hex")?);
            }
        }
        Ok(())
    }

    /// Our confirmation for `local` (our certificate's fingerprint), once the key is agreed
    /// and if not sent for it already.
    pub fn confirm(&mut self, local: &str) -> Option<PakeMessage> {
        if self.confirmed.as_deref() == Some(local) {
            return None;
        }
        let mac = self.mac(local)?;
        self.confirmed = Some(local.to_owned());
        Some(PakeMessage::Confirm(hex(&mac)))
    }

    /// Whether the peer vouched for `remote`, the fingerprint in its description.
    pub fn check(&self, remote: Option<&str>) -> Check {
        let (Some(remote), Some(key)) = (remote, self.key()) else { return Check::Waiting };
        let signed = signed(remote);
        if self.remote.iter().any(|m| ring::hmac::verify(&key, signed.as_bytes(), m).is_ok()) {
            Check::Trusted
        } else if self.remote.is_empty() {
            Check::Waiting
        } else {
            Check::Mismatch
        }
    }

    fn key(&self) -> Option<ring::hmac::Key> {
        Some(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.key.as_ref()?))
    }

    fn mac(&self, fingerprint: &str) -> Option<Vec<u8>> {
        Some(ring::hmac::sign(&self.key()?, signed(fingerprint).as_bytes()).as_ref().to_vec())
    }
}

/// What a confirmation signs: the certificate fingerprint it vouches for.
fn signed(fingerprint: &str) -> String {
    format!("peertalk passphrase confirm v1\0{fingerprint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(passphrase: &str) -> Passphrase {
        Passphrase { passphrase: passphrase.into(), room: "demo".into() }
    }

    /// Two sides with these passphrases exchange everything; what does `a` conclude about
    /// `b`'s certificate `b_fp`, when the description it got names `seen`?
    fn exchange(a_pass: &str, b_pass: &str, b_fp: &str, seen: &str) -> Check {
        let (mut a, a_msg) = Pake::start(&secret(a_pass));
        let (mut b, b_msg) = Pake::start(&secret(b_pass));
        a.receive(b_msg).expect("spake2");
        b.receive(a_msg).expect("spake2");
        assert_eq!(a.check(Some(seen)), Check::Waiting, "nothing confirmed yet");
        let confirm = b.confirm(b_fp).expect("a key");
        assert_eq!(b.confirm(b_fp), None, "once per certificate");
        a.receive(confirm).expect("confirm");
        a.check(Some(seen))
    }

    #[test]
    fn the_same_passphrase_trusts_the_certificate_the_peer_vouched_for() {
        assert_eq!(exchange("hunter2", "hunter2", "AA:BB", "AA:BB"), Check::Trusted);
    }

    #[test]
    fn another_passphrase_or_a_swapped_certificate_is_a_mismatch() {
        assert_eq!(exchange("hunter2", "hunter3", "AA:BB", "AA:BB"), Check::Mismatch);
        assert_eq!(
            exchange("hunter2", "hunter2", "AA:BB", "CC:DD"),
            Check::Mismatch,
            "a relay's own certificate"
        );
    }

    #[test]
    fn the_passphrase_is_never_printed() {
        assert!(!format!("{:?}", secret("hunter2")).contains("hunter2"));
    }
}
