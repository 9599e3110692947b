//! A DataChannel that carries one file transfer. The transfer code (`crate::transfer`)
//! speaks its protocol through this handle and never sees a webrtc type.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use webrtc::data_channel::{DataChannel, DataChannelEvent};

/// How often [`FileChannel::flush`] looks at the send buffer.
const FLUSH_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Labels of transfer channels start with this; the rest is the sender's transfer number.
pub const FILE_LABEL_PREFIX: &str = "file:";

/// The label of the channel for the sender's transfer `id`.
#[must_use]
pub fn file_label(id: u64) -> String {
    format!("{FILE_LABEL_PREFIX}{id}")
}

/// The sender's transfer number in a transfer channel's label.
#[must_use]
pub fn file_id(label: &str) -> Option<u64> {
    label.strip_prefix(FILE_LABEL_PREFIX)?.parse().ok()
}

/// What arrives on a transfer channel.
#[derive(Debug, PartialEq, Eq)]
pub enum FileMessage {
    /// The channel opened: both sides may send.
    Open,
    /// A control message (JSON).
    Text(String),
    /// File data.
    Binary(BytesMut),
}

/// One transfer channel. Clones share it.
#[derive(Clone)]
pub struct FileChannel {
    channel: Arc<dyn DataChannel>,
    /// The sender's transfer number, from the label.
    pub id: u64,
    /// We opened it: we are the sender.
    pub ours: bool,
}

impl fmt::Debug for FileChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileChannel").field("id", &self.id).field("ours", &self.ours).finish_non_exhaustive()
    }
}

impl PartialEq for FileChannel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.channel, &other.channel)
    }
}

impl FileChannel {
    pub(super) fn new(channel: Arc<dyn DataChannel>, id: u64, ours: bool) -> Self {
        Self { channel, id, ours }
    }

    /// The next message; `None` once the channel has closed.
    pub async fn recv(&self) -> Option<FileMessage> {
        loop {
            match self.channel.poll().await? {
                DataChannelEvent::OnOpen => return Some(FileMessage::Open),
                DataChannelEvent::OnMessage(msg) if msg.is_string => {
                    return Some(FileMessage::Text(String::from_utf8_lossy(&msg.data).into_owned()));
                }
                DataChannelEvent::OnMessage(msg) => return Some(FileMessage::Binary(msg.data)),
                DataChannelEvent::OnClose => return None,
                _ => {}
            }
        }
    }

    /// Sends a control message.
    pub async fn send_text(&self, text: &str) -> Result<(), String> {
        self.channel.send_text(text).await.map_err(|e| format!("the transfer channel closed ({e})"))
    }

    /// Completes once the channel's send buffer has room. Cancel-safe, unlike a send.
    pub async fn writable(&self) -> Result<(), String> {
        self.channel.writable().await.map_err(|e| format!("the transfer channel closed ({e})"))
    }

    /// Sends file data; waits while the channel's send buffer is full, which bounds the
    /// memory a transfer holds.
    pub async fn send_binary(&self, data: BytesMut) -> Result<(), String> {
        self.channel.send(data).await.map_err(|e| format!("the transfer channel closed ({e})"))
    }

    /// Bytes sent that the peer's SCTP stack has not acknowledged yet.
    pub async fn unacknowledged(&self) -> usize {
        self.channel.outstanding_bytes().await.unwrap_or(0)
    }

    /// Waits, at most `limit`, until the peer's SCTP stack has acknowledged everything
    /// sent: a last control message (done, declined, cancelled) must reach it before the
    /// channel closes, or before the process exits.
    pub async fn flush(&self, limit: std::time::Duration) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && self.channel.outstanding_bytes().await.unwrap_or(0) > 0 {
            tokio::time::sleep(FLUSH_POLL).await;
        }
    }

    pub async fn close(&self) {
        let _ = self.channel.close().await;
    }
}
