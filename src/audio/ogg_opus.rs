//! Ogg Opus files (RFC 7845): the packets of one, with their durations, for `--audio-in`;
//! received packets written into one, for `--audio-out`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use ogg::{PacketReader, PacketWriteEndInfo, PacketWriter};

use super::{OpusFrame, SAMPLE_RATE};

/// What went wrong with an audio file; each says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("could not open {path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path} is not an Ogg Opus file ({why}); make one with e.g. `opusenc in.wav {name}`", name = path.display())]
    NotOpus { path: PathBuf, why: String },
    #[error("could not write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Reads every audio packet of an Ogg Opus file. Small files only: a call's worth of
/// Opus is a few kilobytes a second.
pub fn read_frames(path: &Path) -> Result<Vec<OpusFrame>, FileError> {
    read(path, usize::MAX)
}

/// Checks that a file is Ogg Opus with audio in it, reading only as far as its first
/// audio packet.
pub fn check(path: &Path) -> Result<(), FileError> {
    read(path, 1).map(drop)
}

/// The file's audio packets, up to `limit` of them.
fn read(path: &Path, limit: usize) -> Result<Vec<OpusFrame>, FileError> {
    let file = File::open(path).map_err(|source| FileError::Open { path: path.to_owned(), source })?;
    let not_opus = |why: String| FileError::NotOpus { path: path.to_owned(), why };
    let mut reader = PacketReader::new(BufReader::new(file));
    let mut next = || reader.read_packet().map_err(|e| not_opus(e.to_string()));
    let head = next()?.ok_or_else(|| not_opus("it is empty".to_owned()))?;
    if !head.data.starts_with(b"OpusHead") {
        return Err(not_opus("its first packet is not an OpusHead".to_owned()));
    }
    let tags = next()?.ok_or_else(|| not_opus("it ends after the header".to_owned()))?;
    if !tags.data.starts_with(b"OpusTags") {
        return Err(not_opus("its second packet is not OpusTags".to_owned()));
    }
    let mut frames = Vec::new();
    while frames.len() < limit
        && let Some(packet) = next()?
    {
        if packet.stream_serial() != head.stream_serial() {
            continue;
        }
        // A packet whose length cannot be read is not audio we can pace; skip it.
        if let Some(samples) = packet_samples(&packet.data) {
            frames.push(OpusFrame { data: Bytes::from(packet.data), samples });
        }
    }
    if frames.is_empty() {
        return Err(not_opus("it holds no audio packets".to_owned()));
    }
    Ok(frames)
}

/// How many 48 kHz samples an Opus packet holds, from its TOC byte (RFC 6716 §3.1).
#[must_use]
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let per_frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let samples = per_frame * frames;
    (1..=5760).contains(&samples).then_some(samples)
}

/// Pages end after this many packets (one second of 20 ms packets): a recording cut
/// short loses at most that much.
const PACKETS_PER_PAGE: u32 = 50;

/// Writes received Opus packets into an Ogg Opus file, placed by their RTP timestamps.
pub struct Recorder {
    path: PathBuf,
    writer: PacketWriter<'static, BufWriter<File>>,
    serial: u32,
    /// The first packet's RTP timestamp: position 0 of the recording.
    origin: Option<u32>,
    /// The last packet, held back so that it can be marked the end of the stream.
    held: Option<(Vec<u8>, u64)>,
    on_page: u32,
    pub packets: u64,
}

impl Recorder {
    pub fn create(path: &Path) -> Result<Self, FileError> {
        let file = File::create(path).map_err(|source| FileError::Open { path: path.to_owned(), source })?;
        Ok(Self {
            path: path.to_owned(),
            writer: PacketWriter::new(BufWriter::new(file)),
            serial: 0x7065_6572, // "peer"
            origin: None,
            held: None,
            on_page: 0,
            packets: 0,
        })
    }

    /// Adds one packet; `rtp_timestamp` counts 48 kHz samples on the sender's clock.
    pub fn add(&mut self, packet: &[u8], rtp_timestamp: u32) -> Result<(), FileError> {
        let Some(samples) = packet_samples(packet) else { return Ok(()) };
        let origin = match self.origin {
            Some(origin) => origin,
            None => {
                self.write_headers(packet)?;
                *self.origin.insert(rtp_timestamp)
            }
        };
        let end = u64::from(rtp_timestamp.wrapping_sub(origin)) + u64::from(samples);
        if let Some((data, granule)) = self.held.take() {
            self.on_page += 1;
            let end_page = self.on_page.is_multiple_of(PACKETS_PER_PAGE);
            let info = if end_page { PacketWriteEndInfo::EndPage } else { PacketWriteEndInfo::NormalPacket };
            self.write(data, info, granule)?;
        }
        self.held = Some((packet.to_vec(), end));
        self.packets += 1;
        Ok(())
    }

    /// Ends the stream and flushes the file. A recording that got no packet is left
    /// empty, which says just that.
    pub fn finish(mut self) -> Result<(), FileError> {
        if let Some((data, granule)) = self.held.take() {
            self.write(data, PacketWriteEndInfo::EndStream, granule)?;
        }
        let path = self.path.clone();
        self.writer.inner_mut().flush().map_err(|source| FileError::Write { path, source })
    }

    fn write_headers(&mut self, first: &[u8]) -> Result<(), FileError> {
        // The TOC's stereo flag: the channel count the sender encoded.
        let channels: u8 = if first[0] & 0x04 != 0 { 2 } else { 1 };
        let mut head = b"OpusHead".to_vec();
        head.push(1);
        head.push(channels);
        head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip: we start mid-stream
        head.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
        head.extend_from_slice(&0i16.to_le_bytes());
        head.push(0);
        self.write(head, PacketWriteEndInfo::EndPage, 0)?;
        let vendor = concat!("peertalk ", env!("CARGO_PKG_VERSION"));
        let mut tags = b"OpusTags".to_vec();
        tags.extend_from_slice(&u32::try_from(vendor.len()).unwrap_or(0).to_le_bytes());
        tags.extend_from_slice(vendor.as_bytes());
        tags.extend_from_slice(&0u32.to_le_bytes());
        self.write(tags, PacketWriteEndInfo::EndPage, 0)
    }

    fn write(&mut self, data: Vec<u8>, info: PacketWriteEndInfo, granule: u64) -> Result<(), FileError> {
        self.writer
            .write_packet(data, self.serial, info, granule)
            .map_err(|source| FileError::Write { path: self.path.clone(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_durations_come_from_the_toc() {
        assert_eq!(packet_samples(&[0xf8, 0xff, 0xfe]), Some(960), "CELT 20 ms, one frame");
        assert_eq!(packet_samples(&[0x08]), Some(960), "SILK 20 ms");
        assert_eq!(packet_samples(&[0xf9, 0]), Some(1920), "two frames");
        assert_eq!(packet_samples(&[0xfb, 0x03]), Some(2880), "three frames, code 3");
        assert_eq!(packet_samples(&[0xfb, 0x3f]), None, "63 frames is over 120 ms");
        assert_eq!(packet_samples(&[]), None);
    }

    #[test]
    fn a_recording_reads_back_with_its_packets_and_durations() {
        let dir = std::env::temp_dir().join(format!("peertalk-ogg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("rec.opus");
        let mut rec = Recorder::create(&path).expect("create");
        for i in 0..120u32 {
            rec.add(&[0xf8, 0xff, 0xfe], 1000 + i * 960).expect("add");
        }
        rec.finish().expect("finish");
        let frames = read_frames(&path).expect("reads back");
        assert_eq!(frames.len(), 120);
        assert!(frames.iter().all(|f| f.samples == 960 && f.data.as_ref() == [0xf8, 0xff, 0xfe]));
        check(&path).expect("a recording passes the check");
        let err = read_frames(&dir.join("missing.opus")).expect_err("missing");
        assert!(err.to_string().contains("could not open"), "{err}");
        std::fs::write(dir.join("text.opus"), b"hello").expect("write");
        let err = read_frames(&dir.join("text.opus")).expect_err("not ogg");
        assert!(err.to_string().contains("is not an Ogg Opus file"), "{err}");
        assert!(check(&dir.join("text.opus")).is_err(), "the check refuses it too");
        std::fs::remove_dir_all(dir).expect("clean up");
    }
}
