//! Audio for call tests and benchmarks: a sine tone as Ogg Opus (through opus-tools'
//! `opusenc`), an Ogg Opus file decoded back to samples (through `opusdec`), and the
//! client's call events.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// A fresh folder for one test's audio files.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peertalk-audio-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

/// Whether `line` reports our call in `state` (`calling`, `live`, `ended`).
pub fn call_state(line: &Value, state: &str) -> bool {
    line["type"] == "call" && line["state"] == state
}

/// Whether `line` reports a peer's audio starting (`true`) or stopping.
pub fn peer_audio(line: &Value, receiving: bool) -> bool {
    line["type"] == "peer-audio" && line["receiving"] == receiving
}

/// Runs one of opus-tools' programs; the error says how to get them.
fn opus_tool(program: &str, args: &[&Path]) -> Result<(), String> {
    let out = std::process::Command::new(program).arg("--quiet").args(args).output().map_err(|e| {
        format!("could not run {program} ({e}); it comes with opus-tools, which scripts/test installs")
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} failed: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// The power of `samples` at `hz`: one DFT bin.
pub fn power_at(samples: &[f32], rate: u32, hz: f64) -> f64 {
    let w = std::f64::consts::TAU * hz / f64::from(rate);
    let (mut re, mut im) = (0.0, 0.0);
    for (i, s) in samples.iter().enumerate() {
        let phase = w * i as f64;
        re += f64::from(*s) * phase.cos();
        im += f64::from(*s) * phase.sin();
    }
    re * re + im * im
}

/// [`power_at`] as a share of the samples' whole power: about 1 for a pure tone at `hz`,
/// 1/3 for one of three equally loud tones, near 0 without it.
pub fn share_at(samples: &[f32], rate: u32, hz: f64) -> f64 {
    let energy: f64 = samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
    power_at(samples, rate, hz) / (energy * samples.len() as f64 / 2.0).max(f64::EPSILON)
}

/// A sine tone of `secs` at `hz` as Ogg Opus in `dir`: written as 48 kHz mono WAV, then
/// encoded by `opusenc`.
pub fn tone(dir: &Path, secs: f64, hz: f64) -> Result<PathBuf, String> {
    const RATE: f64 = 48_000.0;
    let samples: Vec<i16> = (0..(secs * RATE) as usize)
        .map(|i| ((i as f64 / RATE * hz * std::f64::consts::TAU).sin() * 0.5 * 32767.0) as i16)
        .collect();
    let wav = dir.join(format!("tone-{hz}.wav"));
    std::fs::write(&wav, wav_bytes(&samples, 48_000)).map_err(|e| format!("write {}: {e}", wav.display()))?;
    let opus = dir.join(format!("tone-{hz}-{secs}s.opus"));
    opus_tool("opusenc", &[&wav, &opus])?;
    Ok(opus)
}

fn wav_bytes(samples: &[i16], rate: u32) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).expect("small");
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    out
}

/// Decodes an Ogg Opus file with `opusdec` and returns its first channel and sample rate.
pub fn decode(opus: &Path) -> Result<(Vec<f32>, u32), String> {
    let wav = opus.with_extension("decoded.wav");
    opus_tool("opusdec", &[opus, &wav])?;
    let bytes = std::fs::read(&wav).map_err(|e| format!("read {}: {e}", wav.display()))?;
    let (mut channels, mut rate, mut pos) = (1usize, 48_000u32, 12usize);
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().expect("4 bytes")) as usize;
        let body = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            channels = usize::from(u16::from_le_bytes([body[2], body[3]]));
            rate = u32::from_le_bytes(body[4..8].try_into().expect("4 bytes"));
        } else if id == b"data" {
            let samples = body
                .chunks_exact(2 * channels)
                .map(|frame| f32::from(i16::from_le_bytes([frame[0], frame[1]])) / 32768.0)
                .collect();
            return Ok((samples, rate));
        }
        pos += 8 + len + (len & 1);
    }
    Err(format!("{} has no data chunk", wav.display()))
}
