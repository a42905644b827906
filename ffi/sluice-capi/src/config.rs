//! The options of a stack instance, parsed from a flags string such as packetdrill's
//! `--so_flags` (`--local_ip=198.18.0.1 --remote_ip=198.18.0.2 --mss=1000`).

use core::time::Duration;

use sluice_net::{InterfaceConfig, IsnKey};
use sluice_tcp::{CongestionKind, TcpConfig};
use sluice_wire::ipv6::Ipv6Cidr;
use sluice_wire::{Ipv4Address, Ipv4Cidr, Ipv6Address};

use crate::device::PEER_MAC;

/// Everything `sluice_init_*` and `packetdrill_interface_init` can be told.
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// The stack's address (`--local_ip`).
    pub local_ip: Ipv4Address,
    /// The peer's address (`--remote_ip`); it gets a static ARP entry.
    pub remote_ip: Ipv4Address,
    /// The stack's IPv6 address (`--local_ip` given an IPv6 address: packetdrill's ipv6
    /// mode), on a /64; the IPv4 ones stay as they are.
    pub local_ip6: Option<Ipv6Address>,
    /// The peer's IPv6 address (`--remote_ip` given an IPv6 address); it gets a static
    /// neighbour entry and is the IPv6 router.
    pub remote_ip6: Option<Ipv6Address>,
    /// The on-link prefix length (`--prefix_len`, or `--netmask_ip`).
    pub prefix_len: u8,
    /// Off-link destinations go here (`--gateway_ip`; default: the remote address).
    pub gateway_ip: Option<Ipv4Address>,
    /// Largest IP packet (`--mtu`).
    pub mtu: usize,
    /// The ISN key (`--isn_key=<32 hex digits>`; default all zero, for reproducible runs).
    pub isn_key: [u8; 16],
    /// Configuration of every new TCP connection.
    pub tcp: TcpConfig,
    /// How long (wall-clock) a blocking call waits at most before failing with EAGAIN
    /// (`--block_timeout_ms`); a socket's SO_RCVTIMEO / SO_SNDTIMEO applies first. Unset, a
    /// call blocks as POSIX says (for as long as it takes) on a real clock, and at most
    /// 10 s on the virtual clock (where nothing else may ever move time).
    pub block_limit: Option<Duration>,
    /// How long a blocking call on a real clock polls the stack itself before it sleeps
    /// until the stack changes (`--spin_us`, default 50).
    pub spin: Duration,
    /// `netdev_receive`: how far virtual time may jump ahead waiting for the stack to send
    /// (`--max_wait_ms`).
    pub max_wait: Duration,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            local_ip: Ipv4Address::new(198, 18, 0, 1),
            remote_ip: Ipv4Address::new(198, 18, 0, 2),
            local_ip6: None,
            remote_ip6: None,
            prefix_len: 15,
            gateway_ip: None,
            mtu: 1500,
            isn_key: [0; 16],
            tcp: TcpConfig::default(),
            block_limit: None,
            spin: Duration::from_micros(50),
            max_wait: Duration::from_secs(300),
        }
    }
}

/// A flag that could not be understood: its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagError(pub String);

impl core::fmt::Display for FlagError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "bad flag: {}", self.0)
    }
}

fn ip(v: &str) -> Option<Ipv4Address> {
    let a: std::net::Ipv4Addr = v.parse().ok()?;
    Some(Ipv4Address(a.octets()))
}

fn boolean(v: Option<&str>) -> Option<bool> {
    match v {
        None | Some("1") | Some("true") | Some("on") | Some("yes") => Some(true),
        Some("0") | Some("false") | Some("off") | Some("no") => Some(false),
        _ => None,
    }
}

/// A unicast IPv6 address.
fn ip6(v: &str) -> Option<Ipv6Address> {
    v.parse::<Ipv6Address>().ok().filter(|a| a.is_unicast())
}

fn millis(v: &str) -> Option<Duration> {
    v.parse::<u64>().ok().map(Duration::from_millis)
}

impl StackConfig {
    /// Parses whitespace-separated `--name=value` flags (a leading `--` is optional;
    /// `--name value` is not supported). Unknown names are errors.
    pub fn parse(flags: &str) -> Result<StackConfig, FlagError> {
        let mut c = StackConfig::default();
        for word in flags.split_whitespace() {
            let w = word.trim_start_matches('-');
            let (name, value) = match w.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (w, None),
            };
            let bad = || FlagError(word.to_string());
            let val = || value.ok_or_else(bad);
            match name {
                "local_ip" if val()?.contains(':') => c.local_ip6 = Some(ip6(val()?).ok_or_else(bad)?),
                "remote_ip" if val()?.contains(':') => c.remote_ip6 = Some(ip6(val()?).ok_or_else(bad)?),
                "local_ip" => c.local_ip = ip(val()?).ok_or_else(bad)?,
                "remote_ip" => c.remote_ip = ip(val()?).ok_or_else(bad)?,
                "gateway_ip" => c.gateway_ip = Some(ip(val()?).ok_or_else(bad)?),
                "prefix_len" => {
                    c.prefix_len = val()?.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
                }
                "netmask_ip" => {
                    let m = ip(val()?).ok_or_else(bad)?.to_u32();
                    if m.leading_ones() + m.trailing_zeros() != 32 {
                        return Err(bad());
                    }
                    c.prefix_len = m.leading_ones() as u8;
                }
                "mtu" => {
                    c.mtu = val()?
                        .parse()
                        .ok()
                        .filter(|m| (68..=9000).contains(m))
                        .ok_or_else(bad)?
                }
                "mss" => c.tcp.mss = val()?.parse().ok().ok_or_else(bad)?,
                "rcvbuf" => c.tcp.recv_buffer = val()?.parse().ok().ok_or_else(bad)?,
                "sndbuf" => c.tcp.send_buffer = val()?.parse().ok().ok_or_else(bad)?,
                "nodelay" => c.tcp.nodelay = boolean(value).ok_or_else(bad)?,
                "timestamps" => c.tcp.timestamps = boolean(value).ok_or_else(bad)?,
                "sack" => c.tcp.sack = boolean(value).ok_or_else(bad)?,
                "wscale" => c.tcp.window_scaling = boolean(value).ok_or_else(bad)?,
                "rack" => c.tcp.rack_tlp = boolean(value).ok_or_else(bad)?,
                "delayed_ack_ms" => {
                    let d = millis(val()?).ok_or_else(bad)?;
                    c.tcp.delayed_ack = (!d.is_zero()).then_some(d);
                }
                "rto_initial_ms" => c.tcp.rto_initial = millis(val()?).ok_or_else(bad)?,
                "rto_min_ms" => c.tcp.rto_min = millis(val()?).ok_or_else(bad)?,
                "rto_max_ms" => c.tcp.rto_max = millis(val()?).ok_or_else(bad)?,
                "msl_ms" => c.tcp.msl = millis(val()?).ok_or_else(bad)?,
                "congestion" => {
                    c.tcp.congestion = match val()? {
                        "cubic" => CongestionKind::Cubic,
                        "newreno" | "reno" => CongestionKind::NewReno,
                        "none" => CongestionKind::Unlimited,
                        _ => return Err(bad()),
                    }
                }
                "isn_key" => {
                    let v = val()?;
                    if v.len() != 32 {
                        return Err(bad());
                    }
                    for (i, b) in c.isn_key.iter_mut().enumerate() {
                        *b = u8::from_str_radix(&v[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
                    }
                }
                "block_timeout_ms" => c.block_limit = Some(millis(val()?).ok_or_else(bad)?),
                "spin_us" => {
                    c.spin = val()?
                        .parse::<u64>()
                        .ok()
                        .filter(|us| *us <= 1_000_000)
                        .map(Duration::from_micros)
                        .ok_or_else(bad)?
                }
                "max_wait_ms" => c.max_wait = millis(val()?).ok_or_else(bad)?,
                _ => return Err(bad()),
            }
        }
        if c.local_ip == c.remote_ip || !c.local_ip.is_unicast() || !c.remote_ip.is_unicast() {
            return Err(FlagError(
                "local_ip and remote_ip must be distinct unicast addresses".into(),
            ));
        }
        if c.local_ip6.is_some() && c.local_ip6 == c.remote_ip6 {
            return Err(FlagError("local_ip and remote_ip must be distinct".into()));
        }
        Ok(c)
    }

    /// The `Interface` configuration: our address, a static ARP entry for the peer, the
    /// peer as the gateway for everything off-link.
    pub fn interface_config(&self) -> InterfaceConfig {
        let mut ic = InterfaceConfig::new(
            Ipv4Cidr::new(self.local_ip, self.prefix_len),
            IsnKey::fixed(self.isn_key),
        );
        ic.static_arp = vec![(self.remote_ip, PEER_MAC)];
        if let Some(gw) = self.gateway_ip {
            if gw != self.remote_ip {
                ic.static_arp.push((gw, PEER_MAC));
            }
        }
        ic.gateway = Some(self.gateway_ip.unwrap_or(self.remote_ip));
        if let Some(a) = self.local_ip6 {
            ic.ipv6 = vec![Ipv6Cidr::new(a, 64)];
            // The peer is a script: it expects no duplicate address detection.
            ic.dad = false;
        }
        if let Some(r) = self.remote_ip6 {
            ic.static_nd = vec![(r, PEER_MAC)];
            ic.gateway6 = Some(r);
        }
        ic.mtu = self.mtu;
        ic.tcp = self.tcp;
        ic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packetdrill_style_flags() {
        let c = StackConfig::parse(
            "--local_ip=198.18.5.1 --remote_ip=198.19.0.7 --netmask_ip=255.254.0.0 --mss=1000 \
             --timestamps=0 --sack=off --nodelay --delayed_ack_ms=0 --isn_key=000102030405060708090a0b0c0d0e0f",
        )
        .unwrap();
        assert_eq!(c.local_ip, Ipv4Address::new(198, 18, 5, 1));
        assert_eq!(c.remote_ip, Ipv4Address::new(198, 19, 0, 7));
        assert_eq!(c.prefix_len, 15);
        assert_eq!(c.tcp.mss, 1000);
        assert!(!c.tcp.timestamps && !c.tcp.sack && c.tcp.nodelay);
        assert_eq!(c.tcp.delayed_ack, None);
        assert_eq!(c.isn_key[15], 15);
        let ic = c.interface_config();
        assert_eq!(ic.gateway, Some(c.remote_ip));
        assert_eq!(ic.static_arp, vec![(c.remote_ip, PEER_MAC)]);
    }

    #[test]
    fn bad_flags_are_reported() {
        assert!(StackConfig::parse("").is_ok());
        assert_eq!(
            StackConfig::parse("--local_ip=300.1.1.1").unwrap_err().0,
            "--local_ip=300.1.1.1"
        );
        assert!(StackConfig::parse("--frobnicate=1").is_err());
        assert!(StackConfig::parse("--netmask_ip=255.0.255.0").is_err());
        assert!(StackConfig::parse("--local_ip=198.18.0.2").is_err());
    }
}
