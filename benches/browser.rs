//! Browser figures beside the terminal ones: real Chromium running the relay's web client,
//! and a headless terminal client, in a network namespace that has only loopback.
//!
//! Run with `scripts/bench`. Prints figures; asserts nothing. Needs Chromium
//! (`apt-get install chromium`) and root for the namespace; says so and skips without.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::browser::{Browser, js, prepare};
use common::{Client, Relay, WARM_UP, percentiles, round_trips, spread};

const OPEN_RUNS: usize = 5;
const RTT_MESSAGES: usize = 500;

/// Resolves, as soon as it is true, when the page's member `name` is connected.
fn connected_in_page(name: &str) -> String {
    format!(
        "new Promise(done => {{
            const here = () => document.querySelector('[data-testid=member][data-name={}][data-state=connected]');
            const look = () => here() ? done(true) : setTimeout(look, 1);
            look();
        }})",
        js(name)
    )
}

#[tokio::main]
async fn main() {
    let Some(ns) = prepare("the browser benchmark") else {
        println!("browser figures: skipped (no chromium, or no network namespace)");
        return;
    };
    println!("peertalk browser benchmark: Chromium's web client and a headless terminal client\n");
    let relay = Relay::start_in(&ns.name, &["--listen", "127.0.0.1:0"]).await;
    let mut browser = Browser::launch(&ns.name).await;

    // As the terminal figure: the page waits in the room, and the clock runs from starting
    // the terminal client (which offers) until the channel is open on both sides.
    let mut samples = Vec::new();
    for run in 0..OPEN_RUNS {
        let room = format!("open-{run}");
        let page = browser.open(&format!("http://{}/?room={room}&name=ann", relay.addr)).await;
        browser.relay_state(&page, "ok").await;
        let started = Instant::now();
        let mut bob = Client::start_in(&ns.name, &relay.url, &room, "bob", &[]);
        let page_open = async {
            browser.eval(&page, &connected_in_page("bob")).await;
            started.elapsed()
        };
        let (_, in_page) = tokio::join!(bob.connected(), page_open);
        samples.push(started.elapsed().max(in_page));
        bob.close_input();
        bob.finish().await;
        browser.close(page).await;
    }
    println!(
        "DataChannel open, browser and terminal, terminal process start to open on both sides: {}",
        spread(&mut samples)
    );

    let page = browser.open(&format!("http://{}/?room=rtt&name=ann", relay.addr)).await;
    browser.relay_state(&page, "ok").await;
    let mut bob = Client::start_in(&ns.name, &relay.url, "rtt", "bob", &[]);
    bob.connected().await;
    browser.eval(&page, &connected_in_page("bob")).await;
    let rtt = round_trips(&mut bob, RTT_MESSAGES).await;
    println!(
        "Chat round trip, terminal to browser (stdin line -> the page's acknowledgement), {RTT_MESSAGES} messages after {WARM_UP} warm-up: {}",
        percentiles(&rtt)
    );
    bob.close_input();
    bob.finish().await;
}
