//! A room of eight headless clients on this machine: how long the full mesh takes to
//! open, how long one message takes to reach every other member, and what the idle room
//! costs.
//!
//! Run with `scripts/bench`. Prints figures; asserts nothing.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Client, Relay, cpu_ticks, percentiles, spread};

const MEMBERS: usize = 8;
const MESH_RUNS: usize = 5;
const FAN_OUT_MESSAGES: usize = 300;
const IDLE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() {
    let relay = Relay::start().await;
    println!("peertalk group benchmark: {MEMBERS} headless clients in one room, relay on loopback\n");

    // The first seven wait in the room; the clock runs from starting the eighth until
    // every one of the 28 connections is open on both sides.
    let mut samples = Vec::new();
    for run in 0..MESH_RUNS {
        let room = format!("mesh-{run}");
        let mut room_members = Vec::new();
        for i in 1..MEMBERS {
            let mut member = Client::start(Some(&relay.url), &room, &format!("m{i}"), &[]);
            member.expect_type("joined").await;
            room_members.push(member);
        }
        for member in &mut room_members {
            member.expect_count("connected", MEMBERS - 2).await;
        }
        let started = Instant::now();
        room_members.push(Client::start(Some(&relay.url), &room, &format!("m{MEMBERS}"), &[]));
        for member in &mut room_members {
            member.expect_count("connected", MEMBERS - 1).await;
        }
        samples.push(started.elapsed());
        if run + 1 < MESH_RUNS {
            finish(room_members).await;
        } else {
            fan_out_and_idle(room_members).await;
        }
    }
    println!(
        "Full mesh of {MEMBERS} ({} connections), from starting the last member until all are open: {}",
        MEMBERS * (MEMBERS - 1) / 2,
        spread(&mut samples)
    );
}

/// One message at a time from one member: from writing the line until it prints
/// `settled` (all seven acknowledged). Then the whole room left alone.
async fn fan_out_and_idle(mut members: Vec<Client>) {
    let sender = &mut members[0];
    let mut rtt = Vec::with_capacity(FAN_OUT_MESSAGES);
    for i in 1..=FAN_OUT_MESSAGES + common::WARM_UP {
        let sent = Instant::now();
        sender.say(&format!("to everyone {i}")).await;
        sender.expect(|l| l["type"] == "settled" && l["id"] == i, "settled").await;
        if i > common::WARM_UP {
            rtt.push(sent.elapsed());
        }
        sender.seen.clear();
    }
    rtt.sort();
    println!(
        "Fan-out, one message to {} members (stdin line -> every acknowledgement), {FAN_OUT_MESSAGES} messages: {}",
        MEMBERS - 1,
        percentiles(&rtt)
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let pids: Vec<u32> = members.iter().map(Client::pid).collect();
    let before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    let started = Instant::now();
    tokio::time::sleep(IDLE).await;
    let used = pids.iter().map(|p| cpu_ticks(*p)).sum::<u64>() - before;
    let percent = used as f64 / 100.0 / started.elapsed().as_secs_f64() * 100.0;
    println!(
        "Idle room of {MEMBERS}, {} s untouched: {percent:.2}% of one core for all {MEMBERS} together ({used} ticks of 10 ms)",
        IDLE.as_secs()
    );
    finish(members).await;
}

async fn finish(members: Vec<Client>) {
    for member in &members {
        common::signal(member.pid(), "TERM");
    }
    futures_util::future::join_all(members.into_iter().map(Client::exited)).await;
}
