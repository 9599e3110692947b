//! Load generator for `peertalk-signal`, run by `scripts/bench-relay` against a relay on
//! loopback, or several sharing a Redis (`--addr` and `--relay-pid` take comma-separated
//! lists; connection i goes to relay i mod n, so with three relays both members of every
//! room are on different relays). Prints figures; asserts nothing.
//!
//! One process may hold fewer descriptors than the connections wanted, so a second one can
//! help: `--hold` opens and joins its connections, prints `holding N`, and keeps them until
//! its stdin closes; the measuring one is told how many it holds (`--also-held N`) and the
//! relays' memory before either started (`--rss-before KIB`).
//!
//! 1. Opens `--connections` WebSockets in rooms of two and holds them, then reads the
//!    relay's resident memory from /proc to report the cost of an idle connection.
//! 2. Has `--pairs` of them trade ~300-byte signal messages as fast as they can (forwarded
//!    messages per second), then at a fixed pace (`--paced-rate` a second, overall) to
//!    measure latency from send to receipt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{WebSocketStream, client_async};

type Ws = WebSocketStream<TcpStream>;

struct Args {
    addrs: Vec<String>,
    relay_pids: Vec<u32>,
    connections: usize,
    pairs: usize,
    seconds: f64,
    paced_rate: f64,
    hold: bool,
    room_prefix: String,
    also_held: usize,
    rss_before: Option<u64>,
}

fn args() -> Args {
    let mut a = Args {
        addrs: vec!["127.0.0.1:8787".into()],
        relay_pids: Vec::new(),
        connections: 10_000,
        pairs: 500,
        seconds: 5.0,
        paced_rate: 20_000.0,
        hold: false,
        room_prefix: "load".into(),
        also_held: 0,
        rss_before: None,
    };
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = argv.iter().position(|a| a == "--hold") {
        argv.remove(at);
        a.hold = true;
    }
    for pair in argv.chunks(2) {
        let (flag, value) = (pair[0].as_str(), pair.get(1).map(String::as_str).unwrap_or_default());
        match flag {
            "--addr" => a.addrs = value.split(',').map(str::to_owned).collect(),
            "--relay-pid" => {
                a.relay_pids = value.split(',').map(|p| p.parse().expect("--relay-pid N[,N...]")).collect();
            }
            "--connections" => a.connections = value.parse().expect("--connections N"),
            "--pairs" => a.pairs = value.parse().expect("--pairs N"),
            "--seconds" => a.seconds = value.parse().expect("--seconds S"),
            "--paced-rate" => a.paced_rate = value.parse().expect("--paced-rate R"),
            "--room-prefix" => a.room_prefix = value.into(),
            "--also-held" => a.also_held = value.parse().expect("--also-held N"),
            "--rss-before" => a.rss_before = Some(value.parse().expect("--rss-before KIB")),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

#[tokio::main]
async fn main() {
    let args = args();
    let rss_before = args.rss_before.unwrap_or_else(|| rss_kib(&args.relay_pids));
    let started = Instant::now();
    let mut conns = Vec::with_capacity(args.connections);
    let mut failed = 0usize;
    for i in 0..args.connections {
        // Spread source addresses over 127.0.0.0/8 so ephemeral ports never run short.
        let source = format!("127.0.{}.{}:0", 1 + (i / 250) % 250, 1 + i % 250);
        match connect(&args.addrs[i % args.addrs.len()], &source).await {
            Ok(ws) => conns.push(ws),
            Err(e) => {
                failed += 1;
                if failed == 1 {
                    eprintln!("connection {i} failed: {e}");
                }
            }
        }
    }
    let opened = started.elapsed();
    // Join in rooms of two: 0 and 1 in room 0, 2 and 3 in room 1, ...
    let mut ids = Vec::with_capacity(conns.len());
    for (i, ws) in conns.iter_mut().enumerate() {
        let join = json!({"type": "join", "room": format!("{}-{}", args.room_prefix, i / 2), "name": format!("n{i}"), "version": 1});
        ws.send(Message::Text(join.to_string().into())).await.expect("join");
        let welcome = next_json(ws).await;
        ids.push(welcome["id"].as_str().unwrap_or_default().to_owned());
    }
    // The first of each pair hears its partner join.
    for pair in conns.chunks_mut(2) {
        if pair.len() == 2 {
            next_json(&mut pair[0]).await;
        }
    }
    if args.hold {
        println!("holding {}", conns.len());
        let mut line = String::new();
        let _ = tokio::io::AsyncBufReadExt::read_line(
            &mut tokio::io::BufReader::new(tokio::io::stdin()),
            &mut line,
        )
        .await;
        return;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = rss_kib(&args.relay_pids);
    let mine = conns.len();
    let held = mine + args.also_held;
    let relays = match args.addrs.len() {
        1 => "one relay".to_owned(),
        n => format!("{n} relays sharing Redis, every room spread over two"),
    };
    println!("{relays}:");
    println!(
        "Idle connections: {held} of {} held ({failed} failed), opened in {:.1} s; relay RSS {:.1} MiB -> {:.1} MiB, {:.2} KiB per connection",
        args.connections + args.also_held,
        opened.as_secs_f64(),
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before)) as f64 / held.max(1) as f64,
    );

    // Keep the pairs that will trade messages; the rest stay connected and idle.
    let active = args.pairs.min(mine / 2);
    let mut pairs = Vec::with_capacity(active);
    let mut ids = ids.into_iter();
    let mut conns = conns.into_iter();
    for _ in 0..active {
        let (a, b) = (conns.next().expect("a"), conns.next().expect("b"));
        let (ida, idb) = (ids.next().expect("id"), ids.next().expect("id"));
        pairs.push((a, b, ida, idb));
    }
    let idle: Vec<Ws> = conns.collect();

    let (rate, _) = exchange(&mut pairs, Duration::from_secs_f64(args.seconds), None).await;
    println!(
        "Forwarding, {active} pairs, one message in flight per pair, {:.0} s: {rate:.0} messages/s forwarded",
        args.seconds
    );
    let rate = pipelined(&mut pairs, Duration::from_secs_f64(args.seconds)).await;
    println!(
        "Forwarding, {active} pairs, {WINDOW} messages in flight per direction, {:.0} s: {rate:.0} messages/s forwarded",
        args.seconds
    );
    let (paced, latencies) =
        exchange(&mut pairs, Duration::from_secs_f64(args.seconds), Some(args.paced_rate)).await;
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    if latencies.is_empty() {
        println!("Paced: no message arrived");
    } else {
        println!(
            "Forwarding, paced at {:.0}/s ({paced:.0}/s achieved): latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            args.paced_rate,
            pct(0.5) * 1e3,
            pct(0.99) * 1e3,
            latencies[latencies.len() - 1] * 1e3,
        );
    }
    drop(idle);
}

async fn connect(addr: &str, source: &str) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket.bind(source.parse().map_err(|e| format!("{e}"))?).map_err(|e| e.to_string())?;
    let stream =
        socket.connect(addr.parse().map_err(|e| format!("{e}"))?).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (ws, _) = client_async(format!("ws://{addr}/"), stream).await.map_err(|e| e.to_string())?;
    Ok(ws)
}

async fn next_json(ws: &mut Ws) -> serde_json::Value {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).expect("relay JSON"),
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
}

/// Every pair sends, for `length`, from its first socket to its second and back, each
/// message stamped with its send time; returns forwarded messages per second and, in
/// seconds, the latency of each message received.
async fn exchange(
    pairs: &mut Vec<(Ws, Ws, String, String)>,
    length: Duration,
    pace: Option<f64>,
) -> (f64, Vec<f64>) {
    let origin = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(pairs.len()));
    // Each tick of a pair sends two messages, one each way.
    let per_pair_interval = pace.map(|rate| Duration::from_secs_f64(2.0 * pairs.len() as f64 / rate));
    let mut tasks = Vec::new();
    let count = pairs.len() as u32;
    for (n, (mut a, mut b, ida, idb)) in pairs.drain(..).enumerate() {
        let (received, barrier) = (received.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let end = Instant::now() + length;
            let padding = "x".repeat(200);
            let mut latencies = Vec::new();
            // Spread the pairs over the interval: started together they would send in
            // bursts, and the figure would measure the burst, not the relay.
            let mut tick = per_pair_interval.map(|every| {
                let offset = every * u32::try_from(n).unwrap_or(0) / count.max(1);
                tokio::time::interval_at(tokio::time::Instant::now() + offset, every)
            });
            while Instant::now() < end {
                if let Some(tick) = &mut tick {
                    tick.tick().await;
                }
                for forward in [true, false] {
                    let (from, to, to_id) =
                        if forward { (&mut a, &mut b, &idb) } else { (&mut b, &mut a, &ida) };
                    latencies.extend(hop(from, to, to_id, origin, &padding).await);
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
            (a, b, ida, idb, latencies)
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let (a, b, ida, idb, latencies) = task.await.expect("pair task");
        all.extend(latencies);
        pairs.push((a, b, ida, idb));
    }
    all.sort_by(f64::total_cmp);
    let rate = received.load(Ordering::Relaxed) as f64 / length.as_secs_f64();
    (rate, all)
}

/// Messages each direction of a pair may have in flight in the pipelined phase. Bounded:
/// the relay drops a client whose outbox overflows, as it should a slow consumer.
const WINDOW: usize = 32;

/// Every pair sends both ways without waiting for each message, up to [`WINDOW`] in
/// flight per direction; returns forwarded messages per second.
async fn pipelined(pairs: &mut Vec<(Ws, Ws, String, String)>, length: Duration) -> f64 {
    let received = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(pairs.len() * 2));
    let mut tasks = Vec::new();
    for (a, b, ida, idb) in pairs.drain(..) {
        let (a_tx, a_rx) = a.split();
        let (b_tx, b_rx) = b.split();
        let ab = Arc::new(tokio::sync::Semaphore::new(WINDOW));
        let ba = Arc::new(tokio::sync::Semaphore::new(WINDOW));
        let send_ab = tokio::spawn(flood(a_tx, idb.clone(), ab.clone(), barrier.clone(), length));
        let send_ba = tokio::spawn(flood(b_tx, ida.clone(), ba.clone(), barrier.clone(), length));
        let recv_b = tokio::spawn(drain(b_rx, ab, received.clone(), length));
        let recv_a = tokio::spawn(drain(a_rx, ba, received.clone(), length));
        tasks.push((send_ab, send_ba, recv_a, recv_b, ida, idb));
    }
    for (send_ab, send_ba, recv_a, recv_b, ida, idb) in tasks {
        let (a_tx, b_tx) = (send_ab.await.expect("sender"), send_ba.await.expect("sender"));
        let (a_rx, b_rx) = (recv_a.await.expect("receiver"), recv_b.await.expect("receiver"));
        let a = a_tx.reunite(a_rx).expect("same socket");
        let b = b_tx.reunite(b_rx).expect("same socket");
        pairs.push((a, b, ida, idb));
    }
    received.load(Ordering::Relaxed) as f64 / length.as_secs_f64()
}

type Sink = futures_util::stream::SplitSink<Ws, Message>;
type Source = futures_util::stream::SplitStream<Ws>;

async fn flood(
    mut tx: Sink,
    to: String,
    window: Arc<tokio::sync::Semaphore>,
    start: Arc<Barrier>,
    length: Duration,
) -> Sink {
    let msg = format!(
        r#"{{"type":"signal","to":"{to}","signal":{{"candidate":{{"candidate":"candidate:0 1 udp 1 127.0.0.1 9 typ host {}"}}}}}}"#,
        "x".repeat(200)
    );
    start.wait().await;
    let end = Instant::now() + length;
    while Instant::now() < end {
        let Ok(permit) = window.acquire().await else { break };
        permit.forget();
        // Everything the window allows goes out in one write, as a busy client's would.
        let mut batch = 1;
        while let Ok(permit) = window.try_acquire() {
            permit.forget();
            batch += 1;
        }
        for _ in 0..batch {
            if tx.feed(Message::Text(msg.clone().into())).await.is_err() {
                return tx;
            }
        }
        if tx.flush().await.is_err() {
            break;
        }
    }
    tx
}

async fn drain(
    mut rx: Source,
    window: Arc<tokio::sync::Semaphore>,
    received: Arc<AtomicU64>,
    length: Duration,
) -> Source {
    let end = Instant::now() + length + Duration::from_millis(500);
    // Count until the senders stop, then keep reading (uncounted) for half a second, so
    // the next phase starts with nothing left in flight.
    while let Ok(Some(Ok(_))) = tokio::time::timeout_at(end.into(), rx.next()).await {
        window.add_permits(1);
        if Instant::now() < end - Duration::from_millis(500) {
            received.fetch_add(1, Ordering::Relaxed);
        }
    }
    rx
}

/// Sends one stamped signal from `from` to `to` through the relay; returns its latency.
/// Written and read as plain strings, so the generator spends its CPU on the relay's
/// traffic rather than on building JSON trees.
async fn hop(from: &mut Ws, to: &mut Ws, to_id: &str, origin: Instant, padding: &str) -> Option<f64> {
    let sent = origin.elapsed().as_secs_f64();
    let msg = format!(
        r#"{{"type":"signal","to":"{to_id}","signal":{{"candidate":{{"candidate":"candidate:{sent} 1 udp 1 127.0.0.1 9 typ host {padding}"}}}}}}"#
    );
    from.send(Message::Text(msg.into())).await.expect("send");
    let got = loop {
        match to.next().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    };
    let stamp = got.split("candidate:").nth(1)?.split(' ').next()?;
    Some(origin.elapsed().as_secs_f64() - stamp.parse::<f64>().ok()?)
}

/// The relays' resident memory, together.
fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter().map(|pid| rss_one(*pid)).sum()
}

fn rss_one(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
