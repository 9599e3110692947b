//! The sending side of a transfer: check and hash the file, then offer it on each channel
//! opened for it and send it from the offset the receiver asks for.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::sync::mpsc;

use super::wire::{Control, hex};
use super::{
    CHUNK, End, FileInfo, Meter, PROGRESS_EVERY, Reporter, Step, TaskCommand, fail, next_channel, on_command,
};
use crate::peer::{FileChannel, FileMessage};

/// Chunks read ahead of the channel: the reader thread stays this far in front.
const READ_AHEAD: usize = 8;

/// A file ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub path: PathBuf,
    pub info: FileInfo,
}

/// Checks that `path` is a file we can read, before anything is sent.
pub fn check(path: &Path) -> Result<File, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!("{shown} does not exist"),
        io::ErrorKind::PermissionDenied => format!("{shown} cannot be read (permission denied)"),
        _ => format!("{shown} cannot be read ({e})"),
    })?;
    if meta.is_dir() {
        return Err(format!(
            "{shown} is a folder; peertalk sends single files, so pack it first (e.g. tar czf folder.tar.gz {shown})"
        ));
    }
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file (a device, socket or pipe cannot be sent)"));
    }
    File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => format!("{shown} cannot be read (permission denied)"),
        _ => format!("{shown} cannot be read ({e})"),
    })
}

/// Checks the file and reads it through once for its SHA-256. Blocking.
pub fn prepare(path: &Path) -> Result<Prepared, String> {
    let mut file = check(path)?;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| format!("{} could not be read ({e})", path.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    let name = path.file_name().map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
    let info = FileInfo { name, size, sha256: hex(hash.finish().as_ref()), mime: None };
    Ok(Prepared { path: path.to_owned(), info })
}

/// Sends the file on `channel`, and on the channels that replace it, until it is done.
pub(super) async fn run(
    file: Arc<Prepared>,
    mut channel: FileChannel,
    mut commands: mpsc::UnboundedReceiver<TaskCommand>,
    report: Reporter,
) {
    let mut sent = 0u64;
    let mut resumed = false;
    let end = loop {
        match serve(&file, &channel, &mut commands, &report, &mut sent, resumed).await {
            Step::End(end) => break end,
            Step::Switch(next) => {
                channel.close().await;
                channel = next;
            }
            Step::Lost => match next_channel(&mut commands).await {
                Ok(next) => channel = next,
                Err(end) => break end,
            },
        }
        resumed = true;
    };
    channel.flush(super::FLUSH_LIMIT).await;
    channel.close().await;
    report.finished(end).await;
}

async fn serve(
    file: &Prepared,
    channel: &FileChannel,
    commands: &mut mpsc::UnboundedReceiver<TaskCommand>,
    report: &Reporter,
    sent: &mut u64,
    resumed: bool,
) -> Step {
    let info = &file.info;
    // Offer, once the channel is open, and wait for the answer.
    let offset = loop {
        tokio::select! {
            command = commands.recv() => if let Some(step) = on_command(command, channel).await {
                return step;
            },
            message = channel.recv() => match message {
                None => return Step::Lost,
                Some(FileMessage::Open) => {
                    let offer = Control::Offer {
                        name: info.name.clone(),
                        size: info.size,
                        sha256: info.sha256.clone(),
                        mime: info.mime.clone(),
                    };
                    if channel.send_text(&offer.to_json()).await.is_err() {
                        return Step::Lost;
                    }
                }
                Some(FileMessage::Text(text)) => match Control::parse(&text) {
                    Ok(Control::Accept { offset }) if offset <= info.size => break offset,
                    Ok(Control::Accept { offset }) => {
                        let reason = format!("the receiver asked for byte {offset} of a {}-byte file", info.size);
                        return fail(channel, reason).await;
                    }
                    Ok(other) => if let Some(step) = on_reply(other) {
                        return step;
                    },
                    Err(e) => return fail(channel, format!("the receiver sent a message this version cannot read ({e})")).await,
                },
                Some(FileMessage::Binary(_)) => {}
            },
        }
    };
    if resumed {
        report.resumed(offset).await;
    }
    let mut reader = match Reader::start(&file.path, offset) {
        Ok(reader) => reader,
        Err(e) => {
            return fail(channel, format!("the sender could not read {} any more ({e})", info.name)).await;
        }
    };
    let mut pending: Option<BytesMut> = None;
    let mut handed = offset;
    let mut read_all = false;
    let mut meter = Meter::new(offset);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            biased;
            command = commands.recv() => if let Some(step) = on_command(command, channel).await {
                return step;
            },
            message = channel.recv() => match message {
                None => return Step::Lost,
                Some(FileMessage::Text(text)) => match Control::parse(&text) {
                    Ok(Control::Done { sha256 }) if read_all && pending.is_none() && sha256 == info.sha256 => {
                        report.progress(info.size, meter.rate).await;
                        return Step::End(End::Done { path: None, sent: *sent });
                    }
                    Ok(Control::Done { sha256 }) => {
                        return fail(channel, format!("the receiver reported the file done with SHA-256 {sha256} before it was all sent")).await;
                    }
                    Ok(other) => if let Some(step) = on_reply(other) {
                        return step;
                    },
                    Err(e) => return fail(channel, format!("the receiver sent a message this version cannot read ({e})")).await,
                },
                Some(_) => {}
            },
            writable = channel.writable(), if pending.is_some() => {
                let Some(chunk) = pending.take() else { continue };
                let len = chunk.len() as u64;
                if writable.is_err() || channel.send_binary(chunk).await.is_err() {
                    return Step::Lost;
                }
                handed += len;
                *sent += len;
            }
            chunk = reader.chunks.recv(), if pending.is_none() && !read_all => match chunk {
                Some(Ok(chunk)) => pending = Some(chunk),
                Some(Err(e)) => {
                    return fail(channel, format!("the sender could not read {} any more ({e})", info.name)).await;
                }
                None => {
                    read_all = true;
                    if handed != info.size {
                        let reason = format!("{} changed size while it was being sent", info.name);
                        return fail(channel, reason).await;
                    }
                    if channel.send_text(&Control::End.to_json()).await.is_err() {
                        return Step::Lost;
                    }
                }
            },
            _ = tick.tick() => {
                let through = handed.saturating_sub(channel.unacknowledged().await as u64);
                if let Some(rate) = meter.due(through) {
                    report.progress(through, rate).await;
                }
            }
        }
    }
}

/// What the receiver said that ends the transfer, if it did.
fn on_reply(reply: Control) -> Option<Step> {
    match reply {
        Control::Decline { reason } => Some(Step::End(End::Declined { reason, by_us: false })),
        Control::Cancel { reason } => Some(Step::End(End::Cancelled { reason, by_us: false })),
        Control::Failed { reason } => Some(Step::End(End::Failed { reason })),
        _ => None,
    }
}

/// Reads the file on a thread of its own, a few chunks ahead of the channel.
struct Reader {
    chunks: mpsc::Receiver<io::Result<BytesMut>>,
}

impl Reader {
    fn start(path: &Path, offset: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let (tx, chunks) = mpsc::channel(READ_AHEAD);
        std::thread::spawn(move || {
            loop {
                let mut chunk = BytesMut::zeroed(CHUNK);
                let mut filled = 0;
                // A short read is not the end: fill the chunk unless the file ends.
                while filled < CHUNK {
                    match file.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.blocking_send(Err(e));
                            return;
                        }
                    }
                }
                if filled == 0 {
                    return;
                }
                chunk.truncate(filled);
                if tx.blocking_send(Ok(chunk)).is_err() {
                    return;
                }
            }
        });
        Ok(Self { chunks })
    }
}
