//! Why the client stopped, and the process exit code that says so.
//!
//! The codes are part of the command-line interface: scripts branch on them, `--help` and
//! the README list them, and they never change meaning.

use std::fmt;
use std::process::ExitCode;

/// Every way a run can end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything asked for was done.
    Done,
    /// Something unexpected inside the client.
    Internal(String),
    /// The command line was wrong.
    Usage(String),
    /// No relay answered at the address.
    RelayUnreachable(String),
    /// The relay answered but refused us, or spoke something we do not understand.
    RelayRefused(String),
    /// Nobody else joined the room in time.
    NoPeer(String),
    /// A peer was there but no working connection to it could be made.
    ConnectionFailed(String),
    /// A peer left (or its connection closed) before it acknowledged our messages.
    PeerLeft(String),
    /// Connected, but what was expected did not happen before the timeout.
    TimedOut(String),
    /// A message could not be sent as typed (too long for a DataChannel message).
    InputRejected(String),
    /// The TURN server refused our credentials (or to relay for us).
    TurnRefused(String),
    /// The TURN server did not answer.
    TurnUnreachable(String),
    /// A receiver declined a file we offered (or a file expected was declined here).
    FileDeclined(String),
    /// A file transfer was cancelled, by either side.
    FileCancelled(String),
    /// A file transfer failed: unreadable, a disk full, a hash that did not match, a
    /// member gone mid-transfer.
    FileFailed(String),
    /// Our identity file could not be read or made.
    Identity(String),
    /// A known peer came with another certificate, and `--strict-identity` refused it.
    IdentityChanged(String),
    /// In a passphrase room, a peer did not prove the passphrase.
    Passphrase(String),
    /// `peertalk doctor` found something a chat would hit.
    DoctorFailed(String),
    /// Ctrl-C or SIGTERM; connections were closed cleanly first.
    Interrupted(String),
}

impl Outcome {
    /// The process exit code.
    #[must_use]
    pub fn code(&self) -> u8 {
        match self {
            Self::Done => 0,
            Self::Internal(_) => 1,
            Self::Usage(_) => 2,
            Self::RelayUnreachable(_) => 3,
            Self::RelayRefused(_) => 4,
            Self::NoPeer(_) => 5,
            Self::ConnectionFailed(_) => 6,
            Self::PeerLeft(_) => 7,
            Self::TimedOut(_) => 8,
            Self::InputRejected(_) => 9,
            Self::TurnRefused(_) => 10,
            Self::TurnUnreachable(_) => 11,
            Self::FileDeclined(_) => 12,
            Self::FileCancelled(_) => 13,
            Self::FileFailed(_) => 14,
            Self::Identity(_) => 15,
            Self::IdentityChanged(_) => 16,
            Self::Passphrase(_) => 17,
            Self::DoctorFailed(_) => 18,
            Self::Interrupted(_) => 130,
        }
    }

    /// The sentence to print on stderr, if any.
    #[must_use]
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Done => None,
            Self::Internal(m)
            | Self::Usage(m)
            | Self::RelayUnreachable(m)
            | Self::RelayRefused(m)
            | Self::NoPeer(m)
            | Self::ConnectionFailed(m)
            | Self::PeerLeft(m)
            | Self::TimedOut(m)
            | Self::InputRejected(m)
            | Self::TurnRefused(m)
            | Self::TurnUnreachable(m)
            | Self::FileDeclined(m)
            | Self::FileCancelled(m)
            | Self::FileFailed(m)
            | Self::Identity(m)
            | Self::IdentityChanged(m)
            | Self::Passphrase(m)
            | Self::DoctorFailed(m)
            | Self::Interrupted(m) => Some(m),
        }
    }

    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message().unwrap_or("done"))
    }
}

/// The table printed by `--help` and copied into the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  done: every member acknowledged every message sent and every expected one arrived
  1  internal error
  2  bad command line
  3  relay unreachable (nothing answered at the --signal address)
  4  relay refused the join (bad room or name, protocol version) or broke the protocol
  5  no peer joined the room before --timeout
  6  a peer joined but no connection to it could be opened (ICE/DTLS failed)
  7  a member left before acknowledging messages sent to it (reported once every
     other member has acknowledged them, naming who missed which)
  8  timed out waiting for acknowledgements or for --expect messages
  9  a message was too long to send (the limit is 65,536 bytes once encoded)
 10  a TURN server refused the --ice-username/--ice-credential (with --relay-only)
 11  a TURN server did not answer (with --relay-only)
 12  a file was declined: by its receiver, or by the receiver's --max-file-size, or because
     a receiving script runs without --accept-files
 13  a file transfer was cancelled (/cancel, on either side)
 14  a file transfer failed: the file could not be read, the receiver's disk filled up, the
     hash did not match, or a member went away mid-transfer
 15  the identity file (--identity) could not be read or made
 16  a member you verified came with another certificate, and --strict-identity refused it
 17  a member of a --passphrase room did not prove the passphrase (a wrong one, or someone
     intercepting); nothing was sent to it
 18  peertalk doctor: a check that a chat needs failed (its lines say what to do)
130  interrupted by Ctrl-C or SIGTERM (connections are closed cleanly first)

In a room of several: a message goes to every member present when it is sent (those
still connecting get it once connected); a script is done when each of them has
acknowledged it or gone away. Members who join later do not get earlier messages.
Files (--send-file) go the same way; the sender is done once every receiver has checked
the file's SHA-256.";
