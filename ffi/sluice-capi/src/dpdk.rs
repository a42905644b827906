//! `sluice_init_dpdk`: the process-wide instance on one DPDK port (one queue, one core,
//! the TSC clock).
//!
//! Flags, whitespace-separated `--name=value` as for the other instances:
//!
//! - `--port=tap:NAME` (a `net_tap` port; the kernel sees interface NAME),
//!   `--port=virtio:PATH` (`virtio_user` on a vhost-user socket), `--port=vhost:PATH`
//!   (`net_vhost` serving a vhost-user socket at PATH), or a port name EAL
//!   already knows (a PCI address, or a vdev given with `--eal`); default `tap:sl0`;
//! - `--ip=ADDRESS/PREFIX` (default `198.18.0.2/24`), `--gateway=IP`,
//!   `--arp=IP=MAC` (repeatable; static entries, everything else is resolved by ARP);
//! - `--ip6=ADDRESS/PREFIX` (repeatable; IPv6 addresses besides the link-local one, e.g.
//!   `2001:2::2/64`: AF_INET6 sockets reach IPv6 peers through them), `--gateway6=IP`
//!   (the IPv6 router; else the one router advertisements name);
//! - `--eal=ARG` (repeatable, one EAL argument each): added to the defaults, replacing
//!   only those of its kind (memory model, PCI scan, file prefix); the defaults are
//!   `--no-huge -m 512 --no-pci --file-prefix=sluice-PID -l CPU` for `tap:`, CPU being
//!   the first this process may run on;
//! - `--mbufs=N`: mbufs in the queue's pool (default 8191);
//! - `--mem_budget_mb=N`: the most memory the connections' buffers hold together, MiB
//!   (default 1024; `sluice_tcp::budget`): past it buffers stop growing and new
//!   connections are refused (ENOBUFS for `connect`);
//! - every flag of `StackConfig` but the addresses (`--mss`, `--nodelay`, `--rcvbuf`,
//!   `--msl_ms`, `--block_timeout_ms`, ...). The ISN key comes from the OS unless
//!   `--isn_key` is given.
//!
//! EAL can be initialised once per process, so this works once; the EAL and the port live
//! until the process exits.

use sluice_dpdk::{DpdkError, EalBuilder, Port, PortConfig};
use sluice_net::{InterfaceConfig, IsnKey};
use sluice_wire::ipv6::Ipv6Cidr;
use sluice_wire::{EthernetAddress, Ipv4Address, Ipv4Cidr, Ipv6Address};

use crate::config::StackConfig;
use crate::errno::{Errno, EINVAL};
use crate::stack::{Clock, Stack};

/// Why `sluice_init_dpdk` failed: the errno it reports and a message saying how to fix it.
#[derive(Debug)]
pub struct DpdkInitError {
    pub errno: Errno,
    pub msg: String,
}

impl core::fmt::Display for DpdkInitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DpdkInitError {}

fn invalid(msg: impl Into<String>) -> DpdkInitError {
    DpdkInitError {
        errno: EINVAL,
        msg: msg.into(),
    }
}

/// The flags of `sluice_init_dpdk`, parsed.
#[derive(Clone, Debug)]
pub struct DpdkFlags {
    /// The DPDK device name of the port (`net_tap0`, `virtio_user0`, a PCI address).
    pub device: String,
    /// The `--vdev` that creates it, if virtual.
    pub vdev: Option<String>,
    pub eal: Vec<String>,
    pub cidr: Ipv4Cidr,
    pub gateway: Option<Ipv4Address>,
    pub arp: Vec<(Ipv4Address, EthernetAddress)>,
    pub ip6: Vec<Ipv6Cidr>,
    pub gateway6: Option<Ipv6Address>,
    pub mbufs: u32,
    /// `--mem_budget_mb`, in bytes.
    pub mem_budget: usize,
    /// `--isn_key` was given (else the key comes from the OS).
    pub fixed_isn: bool,
    pub stack: StackConfig,
}

fn parse_ip(s: &str) -> Option<Ipv4Address> {
    s.parse::<std::net::Ipv4Addr>()
        .ok()
        .map(|a| Ipv4Address(a.octets()))
}

fn parse_mac(s: &str) -> Option<EthernetAddress> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in m.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(EthernetAddress(m))
}

impl DpdkFlags {
    pub fn parse(flags: &str) -> Result<DpdkFlags, DpdkInitError> {
        let mut port = "tap:sl0".to_string();
        let mut ip = "198.18.0.2/24".to_string();
        let mut gateway = None;
        let mut arp = Vec::new();
        let mut ip6 = Vec::new();
        let mut gateway6 = None;
        let mut eal = Vec::new();
        let mut mbufs = 8191u32;
        let mut mem_budget = 1024usize << 20;
        let mut rest = Vec::new();
        let mut fixed_isn = false;
        for word in flags.split_whitespace() {
            let w = word.trim_start_matches('-');
            let (name, value) = match w.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (w, None),
            };
            let val = || {
                value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| invalid(format!("bad flag {word}: expected --{name}=VALUE")))
            };
            match name {
                "port" => port = val()?.to_string(),
                "ip" => ip = val()?.to_string(),
                "gateway" => {
                    let v = val()?;
                    gateway =
                        Some(parse_ip(v).ok_or_else(|| {
                            invalid(format!("bad --gateway={v}: expected an IPv4 address"))
                        })?);
                }
                "ip6" => {
                    let v = val()?;
                    let c = v
                        .split_once('/')
                        .and_then(|(a, p)| {
                            let a: Ipv6Address = a.parse().ok()?;
                            let p: u8 = p.parse().ok().filter(|p| *p <= 128)?;
                            (a.is_unicast() && !a.is_link_local()).then(|| Ipv6Cidr::new(a, p))
                        })
                        .ok_or_else(|| {
                            invalid(format!(
                                "bad --ip6={v}: expected ADDRESS/PREFIX, e.g. 2001:2::2/64 (a unicast, non-link-local address)"
                            ))
                        })?;
                    ip6.push(c);
                }
                "gateway6" => {
                    let v = val()?;
                    gateway6 = Some(
                        v.parse::<Ipv6Address>()
                            .ok()
                            .filter(|a| a.is_unicast())
                            .ok_or_else(|| {
                                invalid(format!("bad --gateway6={v}: expected a unicast IPv6 address"))
                            })?,
                    );
                }
                "arp" => {
                    let v = val()?;
                    let e = v
                        .split_once('=')
                        .and_then(|(i, m)| Some((parse_ip(i)?, parse_mac(m)?)))
                        .ok_or_else(|| {
                            invalid(format!(
                                "bad --arp={v}: expected IP=MAC, e.g. 198.18.0.1=02:00:00:00:00:01"
                            ))
                        })?;
                    arp.push(e);
                }
                // The value keeps its own leading dashes: `--eal=--no-huge`.
                "eal" => eal.push(word.split_once('=').map_or("", |(_, v)| v).to_string()),
                "mbufs" => {
                    let v = val()?;
                    mbufs = v
                        .parse()
                        .ok()
                        .filter(|n| (512..=1 << 20).contains(n))
                        .ok_or_else(|| invalid(format!("bad --mbufs={v}: expected 512..=1048576")))?;
                }
                "mem_budget_mb" => {
                    let v = val()?;
                    mem_budget = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=1 << 30).contains(n))
                        .map(|n| n << 20)
                        .ok_or_else(|| {
                            invalid(format!("bad --mem_budget_mb={v}: expected 1 or more (MiB)"))
                        })?;
                }
                "local_ip" | "remote_ip" | "prefix_len" | "netmask_ip" | "gateway_ip" => {
                    return Err(invalid(format!(
                        "{word}: not a flag of sluice_init_dpdk; give the address with --ip=ADDRESS/PREFIX \
                         and the router with --gateway=IP"
                    )));
                }
                _ => {
                    fixed_isn |= name == "isn_key";
                    rest.push(word);
                }
            }
        }
        let stack = StackConfig::parse(&rest.join(" ")).map_err(|e| invalid(e.to_string()))?;
        let cidr = ip
            .split_once('/')
            .and_then(|(a, p)| Some(Ipv4Cidr::new(parse_ip(a)?, p.parse().ok().filter(|p| *p <= 32)?)))
            .filter(|c| c.address().is_unicast())
            .ok_or_else(|| {
                invalid(format!(
                    "bad --ip={ip}: expected ADDRESS/PREFIX, e.g. 198.18.0.2/24"
                ))
            })?;
        let (kind, arg) = port.split_once(':').unwrap_or(("", &port));
        let (device, vdev, default_eal): (String, Option<String>, &[&str]) = match kind {
            "tap" if !arg.is_empty() => (
                "net_tap0".into(),
                Some(format!("net_tap0,iface={arg}")),
                &["--no-huge", "-m", "512", "--no-pci"],
            ),
            "vhost" if !arg.is_empty() => (
                "net_vhost0".into(),
                Some(format!(
                    "net_vhost0,iface={arg},queues=1,tso=1,linear-buffer=1,ext-buffer=1"
                )),
                &["--in-memory", "--single-file-segments", "--no-pci"],
            ),
            "virtio" if !arg.is_empty() => (
                "virtio_user0".into(),
                Some(format!("virtio_user0,path={arg},queues=1")),
                &["--in-memory", "--single-file-segments", "--no-pci"],
            ),
            "tap" | "virtio" | "vhost" => {
                return Err(invalid(format!(
                    "bad --port={port}: expected tap:NAME, virtio:PATH, vhost:PATH or a DPDK port name"
                )))
            }
            _ => (port.clone(), None, &["--in-memory"]),
        };
        // The defaults, with the given arguments added (each replacing only the defaults
        // of its own kind, as the engine does).
        let mut defaults: Vec<String> = default_eal.iter().map(|s| s.to_string()).collect();
        defaults.push(format!("--file-prefix=sluice-{}", std::process::id()));
        let names_lcores = sluice_dpdk::names_lcores(&eal);
        eal = sluice_dpdk::merge_eal(&defaults, &eal);
        if !names_lcores {
            // The instance's lcore: the first CPU this process may use (so `taskset` holds).
            let cpu = sluice_dpdk::allowed_cpus().first().copied().unwrap_or(0);
            eal.extend(["-l".to_string(), cpu.to_string()]);
        }
        if let Some(v) = &vdev {
            eal.push(format!("--vdev={v}"));
        }
        Ok(DpdkFlags {
            device,
            vdev,
            eal,
            cidr,
            gateway,
            arp,
            ip6,
            gateway6,
            mbufs,
            mem_budget,
            fixed_isn,
            stack,
        })
    }

    /// The interface's configuration.
    pub fn interface_config(&self, isn_key: IsnKey) -> InterfaceConfig {
        let mut ic = InterfaceConfig::new(self.cidr, isn_key);
        ic.gateway = self.gateway;
        ic.static_arp = self.arp.clone();
        ic.ipv6 = self.ip6.clone();
        ic.gateway6 = self.gateway6;
        ic.mtu = self.stack.mtu;
        ic.tcp = self.stack.tcp;
        ic.mem_budget = self.mem_budget;
        ic
    }
}

/// What to tell the user about a DPDK error.
fn explain(e: DpdkError) -> DpdkInitError {
    let errno = match &e {
        DpdkError::NoSuchPort { .. } | DpdkError::InvalidPort { .. } => Errno(libc::ENODEV),
        DpdkError::NoHugepages { .. } | DpdkError::Mempool { .. } => Errno(libc::ENOMEM),
        _ => EINVAL,
    };
    let mut msg = e.to_string();
    if let DpdkError::EalInit { .. } = &e {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            msg.push_str("; this process is not root: DPDK (and net_tap's /dev/net/tun) needs root or CAP_NET_ADMIN + CAP_SYS_ADMIN");
        }
        msg.push_str(
            "; net_tap needs /dev/net/tun and no existing interface of that name; without hugepages pass \
             --eal=--no-huge --eal=-m --eal=512 (the default for tap: ports)",
        );
    }
    DpdkInitError { errno, msg }
}

/// Initialises EAL and the port, and builds the stack on its queue 0.
pub fn stack(flags: &str) -> Result<Stack, DpdkInitError> {
    let f = DpdkFlags::parse(flags)?;
    let isn_key = if f.fixed_isn {
        IsnKey::fixed(f.stack.isn_key)
    } else {
        IsnKey::from_os().map_err(|e| {
            invalid(format!(
                "no ISN key from the OS ({e:?}): mount /dev, or pass --isn_key=<32 hex digits>"
            ))
        })?
    };
    let eal = EalBuilder::new("sluice")
        .args(f.eal.clone())
        .init()
        .map_err(explain)?;
    let id = Port::id_by_name(&eal, &f.device).map_err(explain)?;
    let pcfg = PortConfig {
        queues: 1,
        mbufs_per_queue: f.mbufs,
        rss: false,
        ..PortConfig::default()
    };
    let port = Port::configure(&eal, id, &pcfg).map_err(explain)?;
    let clock = Clock::Tsc(eal.clock());
    let queue = port.queue(0);
    // EAL and the port serve the process until it exits: EAL cannot be initialised twice,
    // and the queue (in the instance) must never outlive them.
    std::mem::forget(port);
    std::mem::forget(eal);
    let ic = f.interface_config(isn_key);
    Ok(Stack::on_port(f.stack, ic, queue, clock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_suit_net_tap() {
        let f = DpdkFlags::parse("").unwrap();
        assert_eq!(f.device, "net_tap0");
        assert_eq!(f.cidr, Ipv4Cidr::new(Ipv4Address::new(198, 18, 0, 2), 24));
        assert_eq!(&f.eal[..4], ["--no-huge", "-m", "512", "--no-pci"]);
        assert_eq!(f.eal.last().unwrap(), "--vdev=net_tap0,iface=sl0");
        assert!(!f.fixed_isn);
    }

    #[test]
    fn flags_are_parsed() {
        let f = DpdkFlags::parse(
            "--port=tap:xy0 --ip=198.19.1.2/16 --gateway=198.19.0.1 --arp=198.19.0.1=02:00:00:00:00:01 \
             --eal=--no-huge --eal=-m --eal=256 --mss=1000 --nodelay --mbufs=4095",
        )
        .unwrap();
        // Added to the defaults, replacing only the memory ones.
        let prefix = format!("--file-prefix=sluice-{}", std::process::id());
        let cpu = sluice_dpdk::allowed_cpus()
            .first()
            .copied()
            .unwrap_or(0)
            .to_string();
        assert_eq!(
            f.eal,
            [
                "--no-pci",
                &prefix,
                "--no-huge",
                "-m",
                "256",
                "-l",
                &cpu,
                "--vdev=net_tap0,iface=xy0"
            ]
        );
        assert_eq!(f.gateway, Some(Ipv4Address::new(198, 19, 0, 1)));
        assert_eq!(f.arp[0].1, EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            (f.stack.tcp.mss, f.stack.tcp.nodelay, f.mbufs),
            (1000, true, 4095)
        );
        let ic = f.interface_config(IsnKey::fixed([0; 16]));
        assert_eq!(ic.gateway, f.gateway);
        let f = DpdkFlags::parse("--port=0000:03:00.0 --eal=-a --eal=0000:03:00.0").unwrap();
        assert_eq!((f.device.as_str(), f.vdev), ("0000:03:00.0", None));
    }

    #[test]
    fn bad_flags_say_what_is_expected() {
        for bad in [
            "--ip=198.18.0.2",
            "--ip=300.0.0.1/24",
            "--port=tap:",
            "--local_ip=198.18.0.1",
            "--arp=198.18.0.1",
            "--frobnicate",
            "--mbufs=3",
        ] {
            let e = DpdkFlags::parse(bad).unwrap_err();
            assert_eq!(e.errno, EINVAL, "{bad}");
            assert!(!e.msg.is_empty());
        }
    }
}
