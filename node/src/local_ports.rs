//! Choosing loopback ports for processes started later (the demo, labs and
//! end-to-end tests write them into configs before the nodes start).

use rand::RngExt;
use std::collections::HashSet;
use std::sync::Mutex;

/// Ports this process has handed out already: they are not held, so without
/// this two calls before the children start could return the same port.
static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A free TCP port on loopback for a process started later.
///
/// The port is chosen at random *below* the kernel's ephemeral range
/// (`net.ipv4.ip_local_port_range`) and checked by binding it: a port the
/// kernel handed out with `bind(:0)` is released again before the child
/// binds it, and in the meantime any outgoing connection on the machine
/// (a database client, another test's HTTP client) may be given it as its
/// source port — the child then fails with "address in use". Ports outside
/// the ephemeral range are never handed out that way. No port is returned
/// twice by one process.
pub fn free_port() -> anyhow::Result<u16> {
    let (low, _) = ephemeral_range();
    let top = low.clamp(2048, 65535);
    let bottom = top.saturating_sub(12_000).max(1024);
    let mut rng = rand::rng();
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..500 {
        let port: u16 = rng.random_range(bottom..top);
        if !given.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return Ok(port);
        }
    }
    anyhow::bail!("no free loopback port between {bottom} and {top} after 500 tries")
}

/// The kernel's ephemeral port range; Linux's default where it cannot be read.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_outside_the_ephemeral_range_and_never_repeat() {
        let (low, high) = ephemeral_range();
        let ports: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        for p in ports {
            assert!(!(low..=high).contains(&p), "{p} is in {low}-{high}");
            std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
        }
    }
}
