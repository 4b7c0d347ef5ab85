//! The netns backend: every node in its own network namespace.
//!
//! For a run tagged `abc123` with `n` nodes:
//!
//! - namespaces `fl-abc123-n1` .. `fl-abc123-nN`, each with `lo` up and one
//!   veth end `fl-abc123-pK` holding `10.A.B.(9+K)/24`, and no other route:
//!   no default route, so nodes reach nothing but each other and the bridge;
//! - host ends `fl-abc123-hK` enslaved to the bridge `fl-abc123-br` in the
//!   root namespace, which holds `10.A.B.1/24` so the harness's clients reach
//!   the nodes directly;
//! - the /24 is chosen so that it overlaps no route or address on the host;
//! - in each namespace an nftables table `inet faultline` with an `input`
//!   chain; a partition fills node K's chain with a rule dropping packets
//!   from the addresses node K holds a grudge against, heal flushes it. Its
//!   `output` chain drops anything bound for outside the subnet (belt and
//!   braces: there is no route there anyway).
//!
//! Every port of a node is reachable at its one address, so targets with
//! several ports (etcd: client and peer) work unchanged, and so do targets
//! that tell every member the same URL for a node.
//!
//! # Limits
//!
//! - Needs root, `ip` (iproute2) and `nft`; [`check_support`] says which is
//!   missing.
//! - Dropped packets are lost silently, as in a real partition: open TCP
//!   connections hang until the target's own timeouts notice.
//! - Client traffic from the root namespace is never partitioned.
//! - A process still running in a namespace keeps it alive after
//!   [`Network::teardown`]; stop the nodes first.
//! - A host that filters bridged traffic (`br_netfilter` with a FORWARD
//!   policy of drop, as Docker sets up) blocks traffic between nodes.
//! - Creating 3 nodes takes about 170 ms, 5 nodes about 220 ms; a partition
//!   or heal about 40-80 ms (one `nft` run per node).

use crate::grudge::Grudge;
use crate::net::{prefixed, Network};
use crate::registry::Registry;
use crate::{cmd, Error, Result};
use nix::fcntl::{Flock, FlockArg};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::sync::Mutex;

/// Nodes per run: addresses .10 to .254 of the /24.
pub const MAX_NODES: usize = 245;

/// Namespaces, veths and a bridge; see the module docs.
pub struct NetnsNet {
    registry: Registry,
    n: usize,
    subnet: [u8; 3],
    bridge: String,
    namespaces: Vec<String>,
    veths: Vec<String>,
    torn_down: Mutex<bool>,
}

/// `Ok` when this host can run the netns backend, else what is missing.
pub fn check_support() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::Unsupported(
            "the netns network needs root; running as a normal user".into(),
        ));
    }
    if !cmd::available("ip", "-V") {
        return Err(Error::Unsupported(
            "the netns network needs `ip` (iproute2); not found on PATH".into(),
        ));
    }
    if !cmd::available("nft", "--version") {
        return Err(Error::Unsupported(
            "the netns network needs `nft` (nftables); not found on PATH".into(),
        ));
    }
    Ok(())
}

impl NetnsNet {
    /// Creates the namespaces, veths and bridge for `n` nodes, named after
    /// the registry's tag and recorded in it before they are created. On
    /// error, whatever was created is removed again.
    pub fn create(registry: &Registry, n: usize) -> Result<NetnsNet> {
        check_support()?;
        if n == 0 || n > MAX_NODES {
            return Err(Error::Invalid(format!(
                "netns network for {n} nodes; expected 1 to {MAX_NODES}"
            )));
        }
        let tag = registry.tag();
        // Held until the bridge holds its address, so that concurrent runs
        // never pick the same subnet.
        let _lock = subnet_lock()?;
        let net = NetnsNet {
            registry: registry.clone(),
            n,
            subnet: free_subnet(&tag)?,
            bridge: format!("fl-{tag}-br"),
            namespaces: (1..=n).map(|k| format!("fl-{tag}-n{k}")).collect(),
            veths: (1..=n).map(|k| format!("fl-{tag}-h{k}")).collect(),
            torn_down: Mutex::new(false),
        };
        if let Err(err) = net.build(&tag) {
            let _ = net.teardown();
            return Err(err);
        }
        tracing::info!(
            nodes = n,
            bridge = %net.bridge,
            subnet = %net.address(0).to_string().rsplit_once('.').map_or("", |p| p.0),
            "netns network created"
        );
        Ok(net)
    }

    /// The namespace of `node`.
    pub fn namespace(&self, node: usize) -> &str {
        &self.namespaces[node]
    }

    /// The bridge's address in the root namespace (the `.1` of the subnet).
    pub fn bridge_host(&self) -> IpAddr {
        let [a, b, c] = self.subnet;
        IpAddr::V4(Ipv4Addr::new(a, b, c, 1))
    }

    fn address(&self, node: usize) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, 10 + node as u8)
    }

    fn build(&self, tag: &str) -> Result<()> {
        let bridge = self.bridge.as_str();
        self.registry.add_link(bridge)?;
        cmd::run("ip", &["link", "add", bridge, "type", "bridge"])?;
        let bridge_cidr = format!("{}/24", self.bridge_host());
        cmd::run("ip", &["addr", "add", &bridge_cidr, "dev", bridge])?;
        cmd::run("ip", &["link", "set", bridge, "up"])?;

        for node in 0..self.n {
            let ns = self.namespaces[node].as_str();
            let host = self.veths[node].as_str();
            let inner = format!("fl-{tag}-p{}", node + 1);
            let cidr = format!("{}/24", self.address(node));
            self.registry.add_namespace(ns)?;
            cmd::run("ip", &["netns", "add", ns])?;
            self.registry.add_link(host)?;
            let veth = ["link", "add", host, "type", "veth", "peer", "name", &inner];
            cmd::run("ip", &[&veth[..], &["netns", ns]].concat())?;
            cmd::run("ip", &["link", "set", host, "master", bridge, "up"])?;
            cmd::run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
            cmd::run("ip", &["-n", ns, "addr", "add", &cidr, "dev", &inner])?;
            cmd::run("ip", &["-n", ns, "link", "set", &inner, "up"])?;
            nft(ns, &self.table())?;
        }
        Ok(())
    }
}

impl NetnsNet {
    /// The namespace's nftables table: an empty `input` chain for partitions,
    /// and an `output` chain that lets nothing leave for an address outside
    /// the run's subnet, whatever routes a node might add.
    fn table(&self) -> String {
        let [a, b, c] = self.subnet;
        format!(
            "table inet faultline {{
  chain input {{
    type filter hook input priority 0; policy accept;
  }}
  chain output {{
    type filter hook output priority 0; policy accept;
    oifname != \"lo\" ip daddr != {a}.{b}.{c}.0/24 drop
    oifname != \"lo\" meta nfproto ipv6 drop
  }}
}}
"
        )
    }
}

fn nft(ns: &str, script: &str) -> Result<String> {
    cmd::run_with_input("ip", &["netns", "exec", ns, "nft", "-f", "-"], Some(script))
}

impl Network for NetnsNet {
    fn kind(&self) -> &'static str {
        "netns"
    }

    fn node_host(&self, node: usize) -> IpAddr {
        IpAddr::V4(self.address(node))
    }

    fn peer_addr(&self, _from: usize, to: usize, port: u16) -> SocketAddr {
        SocketAddr::new(self.node_host(to), port)
    }

    fn client_addr(&self, node: usize, port: u16) -> SocketAddr {
        SocketAddr::new(self.node_host(node), port)
    }

    /// `ip netns exec fl-TAG-nK PROGRAM ARGS...`
    fn wrap(&self, node: usize, cmd: Command) -> Command {
        prefixed(&["ip", "netns", "exec", &self.namespaces[node]], &cmd)
    }

    fn partition(&self, grudge: &Grudge) -> Result<()> {
        grudge.expect_nodes(self.n)?;
        for node in 0..self.n {
            let mut script = "flush chain inet faultline input\n".to_string();
            let sources: Vec<String> = grudge
                .drops(node)
                .map(|j| self.address(j).to_string())
                .collect();
            if !sources.is_empty() {
                script += &format!(
                    "add rule inet faultline input ip saddr {{ {} }} drop\n",
                    sources.join(", ")
                );
            }
            nft(&self.namespaces[node], &script)?;
        }
        tracing::info!(grudge = %grudge.describe(), "netns partition");
        Ok(())
    }

    fn heal(&self) -> Result<()> {
        for ns in &self.namespaces {
            nft(ns, "flush chain inet faultline input\n")?;
        }
        tracing::info!("netns heal");
        Ok(())
    }

    /// Deletes veths, namespaces (with their nftables tables) and the bridge,
    /// forgetting each in the registry. Keeps going past errors and returns
    /// the first.
    fn teardown(&self) -> Result<()> {
        let mut done = self.torn_down.lock().unwrap_or_else(|p| p.into_inner());
        if *done {
            return Ok(());
        }
        let mut first_error = None;
        let mut note = |result: Result<()>| {
            if let Err(err) = result {
                first_error.get_or_insert(err);
            }
        };
        let existing_links = crate::registry::link_names_now();
        let existing_ns = crate::registry::namespace_names_now();
        for host in &self.veths {
            if existing_links.contains(host) {
                note(cmd::run("ip", &["link", "del", host]).map(drop));
            }
            note(self.registry.remove_link(host));
        }
        for ns in &self.namespaces {
            if existing_ns.contains(ns) {
                note(cmd::run("ip", &["netns", "del", ns]).map(drop));
            }
            note(self.registry.remove_namespace(ns));
        }
        if existing_links.contains(&self.bridge) {
            note(cmd::run("ip", &["link", "del", &self.bridge]).map(drop));
        }
        note(self.registry.remove_link(&self.bridge));
        *done = true;
        tracing::info!(bridge = %self.bridge, "netns network removed");
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for NetnsNet {
    fn drop(&mut self) {
        if let Err(err) = self.teardown() {
            tracing::warn!(%err, "netns teardown failed");
        }
    }
}

/// An exclusive lock on `<state dir>/subnet.lock`, released on drop.
fn subnet_lock() -> Result<Flock<std::fs::File>> {
    let dir = crate::registry::state_dir();
    crate::registry::prepare_state_dir(&dir)?;
    let path = dir.join("subnet.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| {
        Error::io(format!("locking {}", path.display()), errno.into())
    })
}

/// A /24 in 10.0.0.0/8 that overlaps no route or address on this host,
/// starting the search at a place derived from the tag so that concurrent
/// runs rarely race for the same one.
fn free_subnet(tag: &str) -> Result<[u8; 3]> {
    let mut taken = Vec::new();
    for args in [
        &["-4", "route", "show", "table", "all"][..],
        &["-4", "addr", "show"][..],
    ] {
        let out = cmd::run("ip", args)?;
        taken.extend(out.split_whitespace().filter_map(parse_prefix));
    }
    let start = u32::from_str_radix(tag, 16).unwrap_or(0);
    for step in 0..4096u32 {
        let k = (start + step * 7919) % 4096;
        let subnet = [10, 200 + (k / 256) as u8 % 50, (k % 256) as u8];
        let ours = (
            u32::from(Ipv4Addr::new(subnet[0], subnet[1], subnet[2], 0)),
            24,
        );
        if !taken.iter().any(|&theirs| overlaps(ours, theirs)) {
            return Ok(subnet);
        }
    }
    Err(Error::Unsupported(
        "found no unused /24 in 10.200.0.0 - 10.249.255.255 for the netns network".into(),
    ))
}

/// `a.b.c.d/len` or `a.b.c.d` as (address, prefix length).
fn parse_prefix(word: &str) -> Option<(u32, u8)> {
    let (addr, len) = word.split_once('/').unwrap_or((word, "32"));
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|&l| l <= 32)?;
    Some((u32::from(addr), len))
}

fn overlaps((a, alen): (u32, u8), (b, blen): (u32, u8)) -> bool {
    let len = alen.min(blen);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a & mask == b & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_overlap_when_one_contains_the_other() {
        let p = |s| parse_prefix(s).unwrap();
        assert!(overlaps(p("10.200.3.0/24"), p("10.0.0.0/8")));
        assert!(overlaps(p("10.200.3.0/24"), p("10.200.3.7")));
        assert!(!overlaps(p("10.200.3.0/24"), p("10.200.4.0/24")));
        assert!(!overlaps(p("10.200.3.0/24"), p("192.0.2.0/24")));
        assert!(parse_prefix("default").is_none());
    }
}
