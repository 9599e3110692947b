//! Standard input and output for headless mode.
//!
//! When stdin is a pipe, which is how scripts and tests run us, it is read on the
//! runtime's own thread, through a description of the pipe opened afresh from
//! `/proc/self/fd/0` in non-blocking mode: the descriptor we inherited stays blocking, so
//! nothing else that holds it sees a change. A line then wakes the runtime directly rather
//! than a reader thread that wakes the runtime, which took about 50 µs off a chat round
//! trip on loopback. Anything else (a terminal, a file, `/dev/null`) cannot be waited on
//! by the runtime and is read on a thread of its own.
//!
//! Stdout is always written on a thread of its own: writing a pipe directly from the
//! runtime measured no faster per line, and would put a bulk transfer's writes, and its
//! waits for a slow reader, on the thread that runs the connection.

use std::io::{self, BufRead as _, Write as _};

#[cfg(unix)]
use tokio::io::{AsyncBufReadExt as _, BufReader};
#[cfg(unix)]
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use crate::session::UserInput;

/// Buffer size for reading stdin and writing stdout.
pub(super) const IO_BUFFER: usize = 256 * 1024;

/// Where input lines come from.
pub(super) enum Input {
    /// `--send` lines, or stdin read on a thread; the small channel is the back-pressure.
    Lines(mpsc::Receiver<UserInput>),
    /// Stdin when it is a pipe, read on the runtime; `line` holds the line being read.
    #[cfg(unix)]
    Pipe { reader: BufReader<pipe::Receiver>, line: Vec<u8>, decoder: Decoder, done: bool },
}

impl Input {
    /// Standard input, line by line. With `commands`, lines starting with `/` are commands.
    pub(super) fn stdin(commands: bool) -> Self {
        let decoder = Decoder { commands, line_no: 0 };
        #[cfg(unix)]
        if let Ok(pipe) = pipe::OpenOptions::new().open_receiver("/proc/self/fd/0") {
            let reader = BufReader::with_capacity(IO_BUFFER, pipe);
            return Self::Pipe { reader, line: Vec::new(), decoder, done: false };
        }
        Self::Lines(read_on_thread(decoder))
    }

    /// Feeds fixed lines, then ends.
    pub(super) fn fixed(lines: Vec<String>) -> Self {
        let (tx, rx) = mpsc::channel(lines.len().max(1));
        for line in lines {
            let _ = tx.try_send(UserInput::Line(line));
        }
        Self::Lines(rx)
    }

    /// The next input; `Closed` at the end. Cancel-safe: a partly read line stays in
    /// `line` for the next call.
    pub(super) async fn next(&mut self) -> UserInput {
        match self {
            Self::Lines(rx) => rx.recv().await.unwrap_or(UserInput::Closed),
            #[cfg(unix)]
            Self::Pipe { reader, line, decoder, done } => loop {
                if *done {
                    return UserInput::Closed;
                }
                match reader.read_until(b'\n', line).await {
                    // At the end, `line` may still hold a last line without a newline, or
                    // one a cancelled call had begun.
                    Ok(read) => {
                        *done = read == 0;
                        if !line.is_empty()
                            && let Some(input) = decoder.decode(line)
                        {
                            return input;
                        }
                    }
                    Err(e) => {
                        *done = true;
                        return UserInput::Invalid(format!("could not read standard input: {e}"));
                    }
                }
            },
        }
    }
}

/// Numbers stdin's lines and turns each into input.
pub(super) struct Decoder {
    commands: bool,
    line_no: u64,
}

impl Decoder {
    /// Takes one line (its line ending may still be on) out of `line`, leaving it empty;
    /// `None` for a blank line.
    fn decode(&mut self, line: &mut Vec<u8>) -> Option<UserInput> {
        self.line_no += 1;
        let line_no = self.line_no;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        if line.is_empty() {
            return None;
        }
        Some(match String::from_utf8(std::mem::take(line)) {
            Ok(text) if self.commands => super::command_input(text, line_no),
            Ok(text) => UserInput::Line(text),
            Err(e) => {
                *line = e.into_bytes();
                line.clear();
                UserInput::Invalid(format!(
                    "line {line_no} of standard input is not UTF-8 text; it was not sent"
                ))
            }
        })
    }
}

/// Reads stdin on a thread of its own: one blocking reader with a large buffer.
fn read_on_thread(mut decoder: Decoder) -> mpsc::Receiver<UserInput> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let mut reader = io::BufReader::with_capacity(IO_BUFFER, io::stdin().lock());
        let mut line = Vec::new();
        loop {
            let input = match reader.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => match decoder.decode(&mut line) {
                    Some(input) => input,
                    None => continue,
                },
                Err(e) => {
                    let _ =
                        tx.blocking_send(UserInput::Invalid(format!("could not read standard input: {e}")));
                    return;
                }
            };
            if tx.blocking_send(input).is_err() {
                return;
            }
        }
    });
    rx
}

/// Writes stdout on a thread of its own, so that a slow reader of our output blocks that
/// thread (and, through the bounded channel, the session) rather than the runtime.
pub(super) struct StdoutWriter {
    chunks: Option<mpsc::Sender<Vec<u8>>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl StdoutWriter {
    pub(super) fn spawn() -> Self {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let thread = std::thread::spawn(move || {
            let mut out = io::stdout().lock();
            while let Some(chunk) = rx.blocking_recv() {
                out.write_all(&chunk)?;
                out.flush()?;
            }
            Ok(())
        });
        Self { chunks: Some(tx), thread: Some(thread) }
    }

    pub(super) async fn write(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        let Some(chunks) = &self.chunks else { return Err(io::ErrorKind::BrokenPipe.into()) };
        if chunks.send(chunk).await.is_ok() {
            return Ok(());
        }
        // The thread stopped: it failed to write, and joining it says why.
        self.close().await
    }

    /// Writes out everything sent so far and stops the thread.
    pub(super) async fn close(&mut self) -> io::Result<()> {
        self.chunks = None;
        let Some(thread) = self.thread.take() else { return Ok(()) };
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(io::Error::other)?
            .map_err(|_| io::Error::other("the stdout writer panicked"))?
    }
}

#[cfg(test)]
mod tests {
    use super::Decoder;
    use crate::session::UserInput;

    fn decode_all(lines: &[&[u8]]) -> Vec<String> {
        let mut decoder = Decoder { commands: false, line_no: 0 };
        lines
            .iter()
            .filter_map(|line| decoder.decode(&mut line.to_vec()))
            .map(|input| match input {
                UserInput::Line(text) => format!("line {text}"),
                UserInput::Invalid(why) => format!("invalid {why}"),
                _ => "other".to_owned(),
            })
            .collect()
    }

    #[test]
    fn blank_lines_are_skipped_but_counted_and_a_bad_line_is_named_by_number() {
        let decoded = decode_all(&[b"one\r\n", b"\n", b"\xff\xfe\n", b"two"]);
        assert_eq!(
            decoded,
            ["line one", "invalid line 3 of standard input is not UTF-8 text; it was not sent", "line two"]
        );
    }
}
