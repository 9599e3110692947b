//! File transfers: one DataChannel per file and receiver, so chat never waits behind a
//! file. The app decides (what to offer to whom, what to accept); this module does the
//! I/O: hashing, reading, writing, and the channel protocol of [`wire`].
//!
//! Each transfer is a task that outlives its channel: when the connection to the peer is
//! replaced mid-transfer, the sender opens a new channel, and the receiver answers with the
//! offset it has reached, so the transfer goes on from there and the hash still covers the
//! whole file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peertalk_signal::proto::PeerId;
use tokio::sync::mpsc;

use self::wire::Control;
use crate::peer::FileChannel;

pub mod names;
mod receive;
mod send;
pub mod wire;

pub use send::{Prepared, check, prepare};

/// Bytes of file data per DataChannel message. 64 KiB is the largest message every WebRTC
/// stack takes (and what the chat allows).
pub const CHUNK: usize = 64 * 1024;

/// How often a transfer reports its progress: ten times a second at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// How long a transfer whose channel closed waits for a new one (the connection being
/// replaced) before it fails. The peer module gives up on a broken connection after 30 s.
const RESUME_LIMIT: Duration = Duration::from_secs(45);

/// How long a transfer's last message may take to be acknowledged by the peer's SCTP
/// stack before its channel closes: as long as the chat's own flush on closing.
const FLUSH_LIMIT: Duration = crate::peer::CLOSE_FLUSH;

/// A file as offered: what the receiver is told before it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The name as the sender gave it (the receiver stores it sanitised).
    pub name: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the whole file.
    pub sha256: String,
    pub mime: Option<String>,
}

/// One transfer of one file between us and one peer: the sender's number for it, and
/// which way it goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransferKey {
    pub peer: PeerId,
    pub id: u64,
    /// We send the file.
    pub outgoing: bool,
}

/// How a transfer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The receiver checked the hash and kept the file: at `path` (on the receiving side).
    /// `sent` counts the bytes the sender put on the wire, re-sent ones included.
    Done { path: Option<PathBuf>, sent: u64 },
    /// The receiver said no. `by_us`: we did.
    Declined { reason: String, by_us: bool },
    /// A user stopped it. `by_us`: ours did.
    Cancelled { reason: String, by_us: bool },
    /// It could not go on.
    Failed { reason: String },
}

/// What transfers report to the session.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferEvent {
    /// A file to send was read through and hashed, or could not be.
    Prepared {
        id: u64,
        result: Result<Prepared, String>,
    },
    /// A peer offers us a file; the app accepts or declines it.
    Offered {
        key: TransferKey,
        info: FileInfo,
    },
    /// `bytes` of the file are through (written by the receiver, acknowledged by its SCTP
    /// stack for the sender), at `rate` bytes a second lately.
    Progress {
        key: TransferKey,
        bytes: u64,
        rate: f64,
    },
    /// It goes on, on a new channel, from byte `offset`.
    Resumed {
        key: TransferKey,
        offset: u64,
    },
    Finished {
        key: TransferKey,
        end: End,
    },
}

/// What the app asks of transfers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferCommand {
    /// Read and hash a file to send as transfer `id`.
    Prepare {
        id: u64,
        path: PathBuf,
    },
    /// Every member transfer `id` went to is done with it.
    Release {
        id: u64,
    },
    Accept {
        key: TransferKey,
    },
    Decline {
        key: TransferKey,
        reason: String,
    },
    /// Stop a transfer either way; `reason` is said to the peer.
    Cancel {
        key: TransferKey,
        reason: String,
    },
    /// The peer is gone for good: a transfer waiting for a new channel ends.
    Abandon {
        key: TransferKey,
        reason: String,
    },
}

/// What a transfer task is told.
#[derive(Debug)]
enum TaskCommand {
    /// A new channel for this transfer: the old one is gone.
    Attach(FileChannel),
    Accept,
    Decline(String),
    Cancel(String),
    Abandon(String),
}

/// The transfers of a session: their tasks, and the files prepared for sending.
pub struct Transfers {
    receive_dir: PathBuf,
    events: mpsc::Sender<TransferEvent>,
    tasks: HashMap<TransferKey, mpsc::UnboundedSender<TaskCommand>>,
    prepared: HashMap<u64, Arc<send::Prepared>>,
}

impl Transfers {
    #[must_use]
    pub fn new(receive_dir: PathBuf, events: mpsc::Sender<TransferEvent>) -> Self {
        Self { receive_dir, events, tasks: HashMap::new(), prepared: HashMap::new() }
    }

    pub fn command(&mut self, command: TransferCommand) {
        match command {
            TransferCommand::Prepare { id, path } => {
                let events = self.events.clone();
                tokio::spawn(async move {
                    let result = tokio::task::spawn_blocking(move || prepare(&path))
                        .await
                        .unwrap_or_else(|e| Err(format!("hashing the file failed ({e})")));
                    let _ = events.send(TransferEvent::Prepared { id, result }).await;
                });
            }
            TransferCommand::Release { id } => {
                self.prepared.remove(&id);
            }
            TransferCommand::Accept { key } => self.tell(&key, TaskCommand::Accept),
            TransferCommand::Decline { key, reason } => self.tell(&key, TaskCommand::Decline(reason)),
            TransferCommand::Cancel { key, reason } => self.tell(&key, TaskCommand::Cancel(reason)),
            TransferCommand::Abandon { key, reason } => self.tell(&key, TaskCommand::Abandon(reason)),
        }
    }

    /// Notes what a transfer reported: a file prepared for sending is kept for the
    /// channels that will send it; a transfer that ended has no task any more.
    pub fn observe(&mut self, event: &TransferEvent) {
        match event {
            TransferEvent::Prepared { id, result: Ok(file) } => {
                self.prepared.insert(*id, Arc::new(file.clone()));
            }
            TransferEvent::Finished { key, .. } => {
                self.tasks.remove(key);
            }
            _ => {}
        }
    }

    /// A transfer channel opened, by us or by the peer: it goes to the transfer's task, or
    /// starts one.
    pub fn attach(&mut self, peer: PeerId, channel: FileChannel) {
        let key = TransferKey { peer, id: channel.id, outgoing: channel.ours };
        if let Some(task) = self.tasks.get(&key)
            && task.send(TaskCommand::Attach(channel.clone())).is_ok()
        {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let report = Reporter { key: key.clone(), events: self.events.clone() };
        if channel.ours {
            let Some(file) = self.prepared.get(&key.id).cloned() else {
                // Released meanwhile (cancelled): nothing to send on it.
                tokio::spawn(async move { channel.close().await });
                return;
            };
            tokio::spawn(send::run(file, channel, rx, report));
        } else {
            let dir = self.receive_dir.clone();
            tokio::spawn(receive::run(dir, channel, rx, report));
        }
        self.tasks.insert(key, tx);
    }

    fn tell(&self, key: &TransferKey, command: TaskCommand) {
        if let Some(task) = self.tasks.get(key) {
            let _ = task.send(command);
        }
    }
}

/// Reports a task's events, tagged with its transfer.
#[derive(Clone)]
struct Reporter {
    key: TransferKey,
    events: mpsc::Sender<TransferEvent>,
}

impl Reporter {
    async fn offered(&self, info: FileInfo) {
        let _ = self.events.send(TransferEvent::Offered { key: self.key.clone(), info }).await;
    }

    async fn progress(&self, bytes: u64, rate: f64) {
        let _ = self.events.send(TransferEvent::Progress { key: self.key.clone(), bytes, rate }).await;
    }

    async fn resumed(&self, offset: u64) {
        let _ = self.events.send(TransferEvent::Resumed { key: self.key.clone(), offset }).await;
    }

    async fn finished(&self, end: End) {
        let _ = self.events.send(TransferEvent::Finished { key: self.key.clone(), end }).await;
    }
}

/// Paces progress reports and measures the rate between them.
struct Meter {
    last: Instant,
    last_bytes: u64,
    rate: f64,
}

impl Meter {
    fn new(bytes: u64) -> Self {
        Self { last: Instant::now(), last_bytes: bytes, rate: 0.0 }
    }

    /// The rate to report, if a report is due.
    fn due(&mut self, bytes: u64) -> Option<f64> {
        let elapsed = self.last.elapsed();
        if elapsed < PROGRESS_EVERY {
            return None;
        }
        let now = bytes.saturating_sub(self.last_bytes) as f64 / elapsed.as_secs_f64();
        // Smoothed over about half a second, so the time left does not jump about.
        self.rate = if self.rate == 0.0 { now } else { 0.7 * self.rate + 0.3 * now };
        self.last = Instant::now();
        self.last_bytes = bytes;
        Some(self.rate)
    }
}

/// What serving one channel came to.
enum Step {
    End(End),
    /// The channel closed mid-transfer.
    Lost,
    /// A new channel replaced it.
    Switch(FileChannel),
}

/// A command while a channel is served; `Some` if it ends that.
async fn on_command(command: Option<TaskCommand>, channel: &FileChannel) -> Option<Step> {
    match command {
        Some(TaskCommand::Attach(next)) => Some(Step::Switch(next)),
        Some(TaskCommand::Cancel(reason)) => {
            let _ = channel.send_text(&Control::Cancel { reason: reason.clone() }.to_json()).await;
            Some(Step::End(End::Cancelled { reason, by_us: true }))
        }
        Some(TaskCommand::Abandon(reason)) => Some(Step::End(End::Failed { reason })),
        None => Some(Step::End(End::Failed { reason: "the session ended".to_owned() })),
        Some(TaskCommand::Accept | TaskCommand::Decline(_)) => None,
    }
}

/// Tells the peer the transfer failed, and why; ends it here too.
async fn fail(channel: &FileChannel, reason: String) -> Step {
    let _ = channel.send_text(&Control::Failed { reason: reason.clone() }.to_json()).await;
    Step::End(End::Failed { reason })
}

/// What a task does when its channel closed mid-transfer: waits for a new one, for a
/// command that ends it, or for [`RESUME_LIMIT`].
async fn next_channel(commands: &mut mpsc::UnboundedReceiver<TaskCommand>) -> Result<FileChannel, End> {
    let deadline = tokio::time::sleep(RESUME_LIMIT);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(TaskCommand::Attach(channel)) => return Ok(channel),
                Some(TaskCommand::Cancel(reason)) => return Err(End::Cancelled { reason, by_us: true }),
                Some(TaskCommand::Abandon(reason)) | Some(TaskCommand::Decline(reason)) => {
                    return Err(End::Failed { reason });
                }
                Some(TaskCommand::Accept) => {}
                None => return Err(End::Failed { reason: "the session ended".to_owned() }),
            },
            () = &mut deadline => {
                return Err(End::Failed {
                    reason: format!("the connection did not come back within {} s", RESUME_LIMIT.as_secs()),
                });
            }
        }
    }
}
