//! Linux network namespaces: two joined by a veth pair (two hosts on one machine, whose
//! link the test can cut or make lossy), or one with only loopback. Needs root (or
//! CAP_NET_ADMIN) and iproute2.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Namespaces `a` (10.77.N.1) and `b` (10.77.N.2) on one link; deleted when dropped.
pub struct Link {
    pub a: String,
    pub b: String,
    pub a_ip: String,
    pub b_ip: String,
}

impl Link {
    /// Makes the pair, or says why it cannot (then the caller skips, saying so).
    pub fn create() -> Result<Self, String> {
        static MADE: AtomicU32 = AtomicU32::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}-{n}", std::process::id());
        let subnet = (std::process::id() + n) % 250 + 1;
        let link = Self {
            a: format!("pt-a-{tag}"),
            b: format!("pt-b-{tag}"),
            a_ip: format!("10.77.{subnet}.1"),
            b_ip: format!("10.77.{subnet}.2"),
        };
        ip(&["netns", "add", &link.a])?;
        ip(&["netns", "add", &link.b])?;
        // Interface names are at most 15 bytes.
        let (va, vb) = (format!("va{}", tag.replace('-', "")), format!("vb{}", tag.replace('-', "")));
        let (va, vb) = (&va[..va.len().min(15)], &vb[..vb.len().min(15)]);
        ip(&["link", "add", va, "netns", &link.a, "type", "veth", "peer", "name", vb, "netns", &link.b])?;
        for (ns, dev, addr) in [(&link.a, va, &link.a_ip), (&link.b, vb, &link.b_ip)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(link)
    }

    fn device(&self, ns: &str) -> String {
        let out = Command::new("ip").args(["-n", ns, "-o", "link", "show", "type", "veth"]).output();
        let out = out.expect("run ip");
        let text = String::from_utf8_lossy(&out.stdout);
        let name = text.split(": ").nth(1).expect("a veth in the namespace");
        name.split('@').next().expect("device name").to_owned()
    }

    /// Takes the link down on `a`'s side; both ends lose carrier.
    pub fn down(&self) {
        ip(&["-n", &self.a, "link", "set", &self.device(&self.a), "down"]).expect("link down");
    }

    pub fn up(&self) {
        ip(&["-n", &self.a, "link", "set", &self.device(&self.a), "up"]).expect("link up");
    }

    /// Makes each direction of the link drop `loss_percent` of packets and delay the
    /// rest by `delay_ms`, with `tc netem`. A kernel built without netem gets the loss from
    /// nftables instead, on UDP only and with no delay, which the test output says.
    pub fn impair(&self, loss_percent: u32, delay_ms: u32) -> Result<(), String> {
        let (loss, delay) = (format!("{loss_percent}%"), format!("{delay_ms}ms"));
        let mut netem = Ok(());
        for ns in [&self.a, &self.b] {
            let dev = self.device(ns);
            let args = [
                "-n",
                ns.as_str(),
                "qdisc",
                "add",
                "dev",
                dev.as_str(),
                "root",
                "netem",
                "loss",
                &loss,
                "delay",
                &delay,
            ];
            netem = run("tc", &args);
            if netem.is_err() {
                break;
            }
        }
        let Err(why) = netem else { return Ok(()) };
        super::note(&format!(
            "NOTE: no netem here ({why}); dropping {loss} of UDP with nftables instead, without the {delay} delay"
        ));
        // Dropped on the way in, so that the sender sees nothing, as on a wire (dropping on
        // the way out fails the sender's write instead). Only UDP, the peers' own path: the
        // relay's TCP connection would otherwise, now and then, take longer than the
        // client's 10 s bound on joining.
        for ns in [&self.a, &self.b] {
            let dev = self.device(ns);
            let rules = format!(
                "add table inet impair\n\
                 add chain inet impair in {{ type filter hook input priority 0; }}\n\
                 add rule inet impair in iifname \"{dev}\" meta l4proto udp numgen random mod 100 < {loss_percent} drop\n"
            );
            nft(ns, &rules).map_err(|e| format!("neither netem nor nftables can impair the link: {e}"))?;
        }
        Ok(())
    }

    /// Drops every UDP packet in and out of `a`, which cuts the peers' path (ICE, DTLS,
    /// SCTP, RTP) while the relay's WebSocket (TCP) keeps working.
    pub fn block_udp(&self) -> Result<(), String> {
        nft(
            &self.a,
            "add table inet cut\n\
             add chain inet cut in { type filter hook input priority 0; }\n\
             add chain inet cut out { type filter hook output priority 0; }\n\
             add rule inet cut in meta l4proto udp drop\n\
             add rule inet cut out meta l4proto udp drop\n",
        )
    }

    pub fn unblock_udp(&self) {
        nft(&self.a, "delete table inet cut\n").expect("remove the UDP block");
    }
}

/// A network namespace with only `lo`, up: one host that can reach nothing but itself.
/// Deleted when dropped.
pub struct Loopback {
    pub name: String,
}

impl Loopback {
    pub fn create() -> Result<Self, String> {
        static MADE: AtomicU32 = AtomicU32::new(0);
        let name = format!("pt-lo-{}-{}", std::process::id(), MADE.fetch_add(1, Ordering::Relaxed));
        ip(&["netns", "add", &name])?;
        let ns = Self { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Applies nftables `rules` (one command per line) inside namespace `ns`.
fn nft(ns: &str, rules: &str) -> Result<(), String> {
    run("ip", &["netns", "exec", ns, "nft", rules])
}

impl Drop for Link {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("could not run {program} (install iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}
