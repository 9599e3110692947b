//! Larger UDP socket buffers, so that the SCTP receive window can be larger.
//!
//! A peer's throughput is bounded by its SCTP receive window over the round trip: on
//! loopback and LANs the window, not the CPU, is the limit (both sides of a 1 GiB transfer
//! measured about half a core busy). But every packet in the window must fit in the
//! kernel's UDP receive buffer, where each ~1.2 KB datagram costs about twice its size; with
//! Linux's default buffer (208 KiB), a window over 64 KiB overflows it, packets drop, and
//! SCTP waits out 1 s retransmission timers. So peertalk asks for a bigger buffer on its
//! sockets, reads back what the kernel granted (at most `net.core.rmem_max`), and sizes
//! the window to fit that.
//!
//! webrtc-rs binds its sockets itself and hands each to its [`Runtime`] to wrap; this
//! runtime is tokio's, with the buffers set in that one step.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use webrtc::runtime::{AsyncInterval, AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, JoinHandle, Runtime};

/// The buffer asked for. The kernel grants up to `net.core.rmem_max` (208 KiB on a stock
/// Linux, often raised on servers), and counts each packet at about twice its size.
const WANTED_BUFFER: usize = 8 * 1024 * 1024;

/// The smallest and largest SCTP receive windows used.
const MIN_WINDOW: usize = 64 * 1024;
const MAX_WINDOW: usize = 4 * 1024 * 1024;

/// The socket buffer this process gets, and the SCTP receive window that fits in it:
/// probed once, on a throwaway socket.
#[derive(Debug, Clone, Copy)]
pub struct Buffers {
    /// What the kernel granted, as it reports it.
    pub granted: usize,
    pub window: u32,
}

impl Buffers {
    pub fn get() -> Self {
        static PROBED: OnceLock<Buffers> = OnceLock::new();
        *PROBED.get_or_init(|| {
            let granted = std::net::UdpSocket::bind("0.0.0.0:0")
                .and_then(|socket| {
                    let socket = socket2::SockRef::from(&socket);
                    socket.set_recv_buffer_size(WANTED_BUFFER)?;
                    socket.recv_buffer_size()
                })
                .unwrap_or(0);
            // Linux reports twice what it counts against payload (its bookkeeping), and a
            // datagram takes about twice its payload: a quarter of it holds the window.
            let window = (granted / 4).clamp(MIN_WINDOW, MAX_WINDOW);
            Self { granted, window: u32::try_from(window).unwrap_or(u32::MAX) }
        })
    }
}

/// Tokio's runtime, with larger buffers on every UDP socket.
pub struct BufferedRuntime {
    inner: Arc<dyn Runtime>,
    buffers: Buffers,
}

impl BufferedRuntime {
    pub fn new(buffers: Buffers) -> Self {
        Self { inner: Arc::new(webrtc::runtime::TokioRuntime), buffers }
    }
}

impl fmt::Debug for BufferedRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferedRuntime").field("buffers", &self.buffers).finish_non_exhaustive()
    }
}

impl Runtime for BufferedRuntime {
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) -> Box<dyn JoinHandle> {
        self.inner.spawn(future)
    }

    fn spawn_reactor(
        &self,
        reactor_pool_size: usize,
        future: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Box<dyn JoinHandle> {
        self.inner.spawn_reactor(reactor_pool_size, future)
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        // Best effort: a socket that keeps its default buffer still works, at the window
        // the probe chose for the process (the same for every socket).
        let sock = socket2::SockRef::from(&socket);
        let _ = sock.set_recv_buffer_size(WANTED_BUFFER);
        let _ = sock.set_send_buffer_size(WANTED_BUFFER);
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(&self, listener: std::net::TcpListener) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote_addr)
    }

    fn resolve_host<'a>(
        &'a self,
        host: &'a str,
    ) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'a>> {
        self.inner.resolve_host(host)
    }

    fn now(&self) -> std::time::Instant {
        self.inner.now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.sleep(duration)
    }

    fn interval(&self, period: Duration) -> Box<dyn AsyncInterval> {
        self.inner.interval(period)
    }

    fn block_on(&self, future: Pin<Box<dyn Future<Output = ()> + '_>>) {
        self.inner.block_on(future);
    }

    fn yield_now(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        self.inner.yield_now()
    }

    fn name(&self) -> &'static str {
        "tokio (larger UDP buffers)"
    }
}
