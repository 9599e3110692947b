//! The receiving side of a transfer: show the offer, and once accepted write the file to
//! a hidden partial file, hashing as it goes; keep it under a free name only when the
//! size and the hash match what was offered. Whatever else happens, the partial file goes.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use tokio::sync::mpsc;

use super::names::{numbered, partial, sanitise};
use super::wire::{Control, hex, is_sha256_hex};
use super::{
    End, FileInfo, Meter, PROGRESS_EVERY, Reporter, Step, TaskCommand, fail, next_channel, on_command,
};
use crate::peer::{FileChannel, FileMessage};

/// Chunks queued for the writer thread: with 64 KiB chunks, 4 MiB. On two cores the
/// writer can wait several milliseconds for one; with 1 MiB the receiver then stopped
/// reading the channel, its SCTP receive buffer filled, rtc-sctp dropped DATA beyond it,
/// and the transfer stalled for a retransmission timeout (1 GiB: 1 run in 2 stalled, up to
/// 4 s lost; with 4 MiB, 0 in 5).
const WRITE_QUEUE: usize = 64;

/// Alternatives tried for a name that is taken.
const NAME_ALTERNATIVES: u32 = 10_000;

/// A transfer from its offer to its end.
struct Receiving {
    dir: PathBuf,
    report: Reporter,
    /// The offer, once made: a resumed channel must offer the same file.
    info: Option<FileInfo>,
    /// The name it is kept under, sanitised.
    name: String,
    accepted: bool,
    writer: Option<Writer>,
    /// Bytes handed to the writer.
    received: u64,
}

pub(super) async fn run(
    dir: PathBuf,
    mut channel: FileChannel,
    mut commands: mpsc::UnboundedReceiver<TaskCommand>,
    report: Reporter,
) {
    let mut transfer = Receiving {
        dir,
        report: report.clone(),
        info: None,
        name: String::new(),
        accepted: false,
        writer: None,
        received: 0,
    };
    let end = loop {
        match transfer.serve(&channel, &mut commands).await {
            Step::End(end) => break end,
            Step::Switch(next) => {
                channel.close().await;
                channel = next;
            }
            Step::Lost if transfer.info.is_none() => {
                // It closed before it offered anything: there is nothing to resume.
                channel.close().await;
                return report
                    .finished(End::Failed { reason: "the channel closed before the offer".to_owned() })
                    .await;
            }
            Step::Lost => match next_channel(&mut commands).await {
                Ok(next) => channel = next,
                Err(end) => break end,
            },
        }
    };
    channel.flush(super::FLUSH_LIMIT).await;
    channel.close().await;
    if let Some(writer) = transfer.writer.take() {
        writer.discard().await;
    }
    report.finished(end).await;
}

impl Receiving {
    async fn serve(
        &mut self,
        channel: &FileChannel,
        commands: &mut mpsc::UnboundedReceiver<TaskCommand>,
    ) -> Step {
        let resumed = self.info.is_some();
        // The offer comes first on every channel.
        let offer = loop {
            tokio::select! {
                command = commands.recv() => if let Some(step) = on_command(command, channel).await {
                    return step;
                },
                message = channel.recv() => match message {
                    None => return Step::Lost,
                    Some(FileMessage::Open) => {}
                    Some(FileMessage::Text(text)) => match Control::parse(&text) {
                        Ok(Control::Offer { name, size, sha256, mime }) => break FileInfo { name, size, sha256, mime },
                        Ok(Control::Cancel { reason }) => return Step::End(End::Cancelled { reason, by_us: false }),
                        Ok(_) | Err(_) => return fail(channel, "the sender did not start with an offer".to_owned()).await,
                    },
                    Some(FileMessage::Binary(_)) => return fail(channel, "the sender sent data before its offer".to_owned()).await,
                },
            }
        };
        match &self.info {
            None if !is_sha256_hex(&offer.sha256) => {
                return fail(channel, format!("the offer's SHA-256 {:?} is not 64 hex digits", offer.sha256))
                    .await;
            }
            None => {
                self.name = sanitise(&offer.name);
                self.info = Some(offer.clone());
                self.report.offered(offer).await;
            }
            Some(info) if *info != offer => {
                return fail(channel, "the sender offered another file when the transfer resumed".to_owned())
                    .await;
            }
            Some(_) => {}
        }
        while !self.accepted {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(TaskCommand::Accept) => self.accepted = true,
                    Some(TaskCommand::Decline(reason)) => {
                        let _ = channel.send_text(&Control::Decline { reason: reason.clone() }.to_json()).await;
                        return Step::End(End::Declined { reason, by_us: true });
                    }
                    other => if let Some(step) = on_command(other, channel).await {
                        return step;
                    },
                },
                message = channel.recv() => if let Some(step) = on_sender(message) {
                    return step;
                },
            }
        }
        let Some(info) = self.info.clone() else { return Step::Lost };
        if self.writer.is_none() {
            let path = self.dir.join(partial(&self.name, &self.report.key.peer.0, self.report.key.id));
            // The interface's default folder (~/Downloads) may not exist yet.
            match std::fs::create_dir_all(&self.dir).and_then(|()| Writer::create(path)) {
                Ok(writer) => self.writer = Some(writer),
                Err(e) => {
                    let reason =
                        format!("the receiver could not create a file in {} ({e})", self.dir.display());
                    return fail(channel, reason).await;
                }
            }
        }
        if channel.send_text(&Control::Accept { offset: self.received }.to_json()).await.is_err() {
            return Step::Lost;
        }
        if resumed {
            self.report.resumed(self.received).await;
        }
        let mut meter = Meter::new(self.received);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            tokio::select! {
                biased;
                command = commands.recv() => if let Some(step) = on_command(command, channel).await {
                    return step;
                },
                message = channel.recv() => match message {
                    Some(FileMessage::Binary(chunk)) => {
                        let len = chunk.len() as u64;
                        if self.received + len > info.size {
                            let reason = format!("the sender sent more than the {} bytes it announced", info.size);
                            return fail(channel, reason).await;
                        }
                        let Some(writer) = &mut self.writer else { return Step::Lost };
                        if let Err(e) = writer.write(chunk).await {
                            return fail(channel, e).await;
                        }
                        self.received += len;
                    }
                    Some(FileMessage::Text(text)) if Control::parse(&text).ok() == Some(Control::End) => {
                        return self.finish(channel, &info).await;
                    }
                    other => if let Some(step) = on_sender(other) {
                        return step;
                    },
                },
                _ = tick.tick() => if let Some(rate) = meter.due(self.received) {
                    self.report.progress(self.received, rate).await;
                },
            }
        }
    }

    /// All bytes are in: check them, keep the file, and say so.
    async fn finish(&mut self, channel: &FileChannel, info: &FileInfo) -> Step {
        if self.received != info.size {
            let reason =
                format!("the sender ended after {} of the {} bytes it announced", self.received, info.size);
            return fail(channel, reason).await;
        }
        let Some(writer) = self.writer.take() else { return Step::Lost };
        let part = writer.part.clone();
        let sha256 = match writer.finish().await {
            Ok(sha256) => sha256,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return fail(channel, e).await;
            }
        };
        if sha256 != info.sha256 {
            let _ = std::fs::remove_file(&part);
            let reason = format!(
                "the file's SHA-256 is {sha256}, not the {} the sender announced; it was not kept",
                info.sha256
            );
            return fail(channel, reason).await;
        }
        let kept = {
            let (dir, name) = (self.dir.clone(), self.name.clone());
            tokio::task::spawn_blocking(move || keep(&part, &dir, &name))
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)))
        };
        match kept {
            Ok(path) => {
                let _ = channel.send_text(&Control::Done { sha256 }.to_json()).await;
                self.report.progress(info.size, 0.0).await;
                Step::End(End::Done { path: Some(path), sent: info.size })
            }
            Err(e) => fail(channel, format!("the receiver could not keep the file ({e})")).await,
        }
    }
}

/// A message from the sender other than data or the end; `Some` if it ends the channel.
fn on_sender(message: Option<FileMessage>) -> Option<Step> {
    match message {
        None => Some(Step::Lost),
        Some(FileMessage::Text(text)) => match Control::parse(&text) {
            Ok(Control::Cancel { reason }) => Some(Step::End(End::Cancelled { reason, by_us: false })),
            Ok(Control::Failed { reason }) => Some(Step::End(End::Failed { reason })),
            _ => None,
        },
        Some(_) => None,
    }
}

/// Renames the checked partial file to `name` in `dir`, or the first free numbered
/// alternative: a hard link fails rather than replace a file that exists, so nothing is
/// ever overwritten, even by a file created meanwhile.
fn keep(part: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    for n in 1..=NAME_ALTERNATIVES {
        let candidate = if n == 1 { name.to_owned() } else { numbered(name, n) };
        let target = dir.join(candidate);
        match std::fs::hard_link(part, &target) {
            Ok(()) => {
                std::fs::remove_file(part)?;
                return Ok(target);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            // A file system without hard links: a rename, after looking.
            Err(_) if !target.exists() => {
                std::fs::rename(part, &target)?;
                return Ok(target);
            }
            Err(_) => {}
        }
    }
    Err(io::Error::other(format!("{NAME_ALTERNATIVES} files named like {name} exist already")))
}

/// Writes and hashes on a thread of its own, so the disk never stalls the connection.
struct Writer {
    part: PathBuf,
    chunks: Option<mpsc::Sender<BytesMut>>,
    thread: Option<std::thread::JoinHandle<io::Result<String>>>,
}

impl Writer {
    fn create(part: PathBuf) -> io::Result<Self> {
        let file = File::options().write(true).create_new(true).open(&part)?;
        let (tx, mut rx) = mpsc::channel::<BytesMut>(WRITE_QUEUE);
        let thread = std::thread::spawn(move || {
            let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
            let mut out = BufWriter::with_capacity(super::CHUNK * 4, file);
            while let Some(chunk) = rx.blocking_recv() {
                hash.update(&chunk);
                out.write_all(&chunk)?;
            }
            let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
            file.sync_all()?;
            Ok(hex(hash.finish().as_ref()))
        });
        Ok(Self { part, chunks: Some(tx), thread: Some(thread) })
    }

    async fn write(&mut self, chunk: BytesMut) -> Result<(), String> {
        if let Some(chunks) = &self.chunks
            && chunks.send(chunk).await.is_ok()
        {
            return Ok(());
        }
        // The thread stopped: a write failed, and joining it says which.
        self.chunks = None;
        match self.join().await {
            Err(e) => Err(e),
            Ok(_) => Err("the receiver's writer stopped".to_owned()),
        }
    }

    /// Writes out the rest and syncs; the SHA-256 of everything written.
    async fn finish(mut self) -> Result<String, String> {
        self.chunks = None;
        self.join().await
    }

    /// Stops writing and removes the partial file.
    async fn discard(mut self) {
        self.chunks = None;
        let _ = self.join().await;
        let _ = std::fs::remove_file(&self.part);
    }

    async fn join(&mut self) -> Result<String, String> {
        let Some(thread) = self.thread.take() else { return Err("the receiver's writer stopped".to_owned()) };
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(result)) => result.map_err(|e| write_error(&e)),
            _ => Err("the receiver's writer failed".to_owned()),
        }
    }
}

/// The sentence for a failed write, told to both sides.
fn write_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::StorageFull => "the receiver's disk is full; the partial file was removed".to_owned(),
        io::ErrorKind::QuotaExceeded => {
            "the receiver is over its disk quota; the partial file was removed".to_owned()
        }
        _ => format!("the receiver could not write the file ({e}); the partial file was removed"),
    }
}
