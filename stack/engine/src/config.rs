//! One configuration for a Sluice process: EAL arguments, the port, cores, IPv4 address,
//! gateway, static ARP entries, buffer sizes, congestion control and the idle strategy.
//! Loadable from a TOML file (`--config FILE`) with command-line flags on top; the
//! defaults work on `net_tap`.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_dev::Impairments;
use sluice_net::{InterfaceConfig, IsnKey, TcpConfig};
use sluice_tcp::CongestionKind;
use sluice_wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

use crate::IdleStrategy;

/// Where the packets come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// `tap:NAME`: a `net_tap` port; the kernel sees interface NAME.
    Tap(String),
    /// `vhost:PATH`: a `net_vhost` port serving the vhost-user socket PATH.
    Vhost(String),
    /// `virtio:PATH`: a `virtio_user` port connecting to the vhost-user socket PATH.
    Virtio(String),
    /// Any other name: a port EAL already knows (a PCI address, or a vdev given in `eal`).
    Name(String),
}

impl std::str::FromStr for PortSpec {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let (kind, arg) = s.split_once(':').unwrap_or(("", s));
        let nonempty = |a: &str| {
            if a.is_empty() {
                Err(ConfigError::Invalid {
                    field: "port",
                    value: s.into(),
                    hint: "tap:NAME, vhost:PATH, virtio:PATH or a port name",
                })
            } else {
                Ok(a.to_owned())
            }
        };
        match kind {
            // Linux names an interface in at most 15 bytes (IFNAMSIZ - 1); a longer name
            // made net_tap fail with "no DPDK port named net_tap0".
            "tap" if arg.len() > 15 => Err(ConfigError::Invalid {
                field: "port",
                value: s.into(),
                hint: "tap:NAME with NAME at most 15 characters (a Linux interface name)",
            }),
            "tap" => Ok(PortSpec::Tap(nonempty(arg)?)),
            // net_vhost creates the socket: its directory must exist (else EAL said only
            // "rte_eth_dev_configure failed: Operation not permitted").
            "vhost"
                if std::path::Path::new(arg)
                    .parent()
                    .is_some_and(|d| !d.as_os_str().is_empty() && !d.is_dir()) =>
            {
                Err(ConfigError::Invalid {
                    field: "port",
                    value: s.into(),
                    hint: "vhost:PATH in an existing directory (net_vhost creates the socket there)",
                })
            }
            "vhost" => Ok(PortSpec::Vhost(nonempty(arg)?)),
            "virtio" => Ok(PortSpec::Virtio(nonempty(arg)?)),
            _ => Ok(PortSpec::Name(nonempty(s)?)),
        }
    }
}

impl PortSpec {
    /// The `--vdev` argument that creates the port, if it is a virtual one.
    pub fn vdev(&self, queues: u16) -> Option<String> {
        match self {
            PortSpec::Tap(n) => Some(format!("net_tap0,iface={n}")),
            // tso=1 offers the guest TSO (it may send us 64 KiB frames); linear-buffer and
            // ext-buffer receive each such frame in one contiguous buffer, not a chain.
            PortSpec::Vhost(p) => Some(format!(
                "net_vhost0,iface={p},queues={queues},tso=1,linear-buffer=1,ext-buffer=1"
            )),
            PortSpec::Virtio(p) => Some(format!("virtio_user0,path={p},queues={queues}")),
            PortSpec::Name(_) => None,
        }
    }
    /// The DPDK device name of the port.
    pub fn device_name(&self) -> &str {
        match self {
            PortSpec::Tap(_) => "net_tap0",
            PortSpec::Vhost(_) => "net_vhost0",
            PortSpec::Virtio(_) => "virtio_user0",
            PortSpec::Name(n) => n,
        }
    }
    /// Default EAL memory arguments for this kind of port.
    fn default_eal(&self) -> &'static [&'static str] {
        match self {
            PortSpec::Tap(_) => &["--no-huge", "-m", "512", "--no-pci"],
            PortSpec::Vhost(_) | PortSpec::Virtio(_) => {
                &["--in-memory", "--single-file-segments", "--no-pci"]
            }
            PortSpec::Name(_) => &["--in-memory"],
        }
    }
}

pub use sluice_dpdk::merge_eal;

/// EAL's log level (1 emergency ... 8 debug) for the most verbose level tracing has on:
/// error 4, warn 5, info 6 (notice), debug 7, trace 8; 5 when nothing is set up.
pub fn eal_log_level() -> u8 {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF => 4,
        LevelFilter::ERROR => 4,
        LevelFilter::WARN => 5,
        LevelFilter::INFO => 6,
        LevelFilter::DEBUG => 7,
        _ => 8,
    }
}

/// A configuration error: which field, what value, and what would be right.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting has a value it does not accept.
    #[error("invalid {field} {value:?}: expected {hint}")]
    Invalid {
        /// The setting: its TOML key (the `--flag` of the same name).
        field: &'static str,
        /// The value given.
        value: String,
        /// What would be accepted.
        hint: &'static str,
    },
    /// `cores` is more than the CPUs this process may run on (its affinity, e.g. from
    /// `taskset`), and the EAL arguments do not name the lcores themselves.
    #[error("--cores {cores}: this process may run on {available} CPU(s) ({list}); one engine core needs a CPU of its own, so use --cores {available} or fewer (or give EAL the lcores yourself with --eal=-l --eal=LIST)")]
    TooManyCores {
        /// The cores asked for.
        cores: u16,
        /// How many CPUs the process may run on.
        available: usize,
        /// Those CPUs, as a list like `0,2,5`.
        list: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read config file {path}: {err}")]
    Read {
        /// The file.
        path: String,
        /// Why not.
        err: std::io::Error,
    },
    /// The configuration is not valid TOML, has an unknown key, or a value of the wrong
    /// type.
    #[error("config file {path}: {err}")]
    Parse {
        /// The file; empty for text given to `Config::from_toml`.
        path: String,
        /// The TOML parser's message.
        err: String,
    },
}

/// The whole configuration. Field names are the TOML keys and the `--flags`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Raw EAL arguments; when empty, defaults that suit the port kind are used.
    pub eal: Vec<String>,
    /// `tap:NAME`, `vhost:PATH`, `virtio:PATH`, or a port name (default `tap:sl0`).
    pub port: String,
    /// Cores, one queue pair each (default 1, at most 128).
    pub cores: u16,
    /// Our address and prefix length (default `198.18.0.2/24`).
    pub ip: String,
    /// The gateway for destinations off our subnet: an address on it. None (the default):
    /// only the subnet is reachable.
    pub gateway: Option<String>,
    /// Static ARP entries, `IP=MAC`.
    pub arp: Vec<String>,
    /// IPv6 addresses with their prefix length, e.g. `2001:2::2/64`, besides the
    /// link-local one made from the MAC. TCP, UDP, ping and neighbour discovery run over
    /// them as over `ip`; a listener takes clients of both families.
    pub ip6: Vec<String>,
    /// The IPv6 router for destinations outside the `ip6` prefixes (None: those only).
    pub gateway6: Option<String>,
    /// The port's MTU, bytes (default 1500, at least 576). TCP segments carry at most
    /// 40 bytes less.
    pub mtu: u16,
    /// Per-connection receive buffer, bytes (default 256 KiB, at least 1024).
    pub recv_buffer: usize,
    /// Per-connection send buffer, bytes (default 256 KiB, at least 1024).
    pub send_buffer: usize,
    /// `cubic` (the default), `newreno` or `unlimited`.
    pub congestion: String,
    /// Turns Nagle's algorithm off on new connections (default false: small writes wait
    /// while data is unacknowledged).
    pub nodelay: bool,
    /// Use the port's checksum offloads (on by default; off: every checksum in software).
    pub checksum_offload: bool,
    /// `busy`, `backoff` (the default), or `backoff:MAX_SLEEP_US`.
    pub idle: String,
    /// Mbufs per queue (default 16383, at least 4095). A quarter of them may wait in
    /// connections' receive buffers (zero-copy), another quarter as frames held for a
    /// full transmit ring (`InterfaceConfig::tx_queue_limit`).
    pub mbufs: u32,
    /// Zero-copy receive: in-order TCP payloads of at least this many bytes stay in their
    /// mbuf (handed to `TcpStream::read_frame`, or read in place); smaller ones are copied.
    /// 0 turns zero-copy receive off. Default 512.
    pub rx_copybreak: usize,
    /// Large segments on transmit: new data leaves TCP in segments of up to this many
    /// full-sized ones (64 KiB at most), cut to size below it (software GSO: the header is
    /// emitted once). 1 turns it off. Default 44.
    pub gso_segments: u16,
    /// The maximum segment lifetime, milliseconds (default 30000); TIME-WAIT lasts twice it.
    pub msl_ms: u64,
    /// The most TCP connections per core, in any state (default 1048576); SYNs beyond it
    /// are dropped and counted (`conn_limit`).
    pub max_connections: usize,
    /// The most connections in TIME-WAIT per core (default 262144, as Linux's
    /// `tcp_max_tw_buckets`); past it the oldest are removed early.
    pub max_time_wait: usize,
    /// The most memory the connection buffers of one core hold, MiB (default 1024; as
    /// Linux's `tcp_mem`): at 3/4 of it buffers emptied give their memory back, past it
    /// buffers stop growing (writes take less, received data waits for a retransmission)
    /// and new connections are refused (`mem_budget`).
    pub mem_budget_mb: u64,
    /// The same for all cores together, MiB (default 0: half the machine's memory).
    pub mem_budget_total_mb: u64,
    /// The smallest path MTU an ICMP "fragmentation needed" may set (default 552, Linux's
    /// `min_pmtu`).
    pub min_pmtu: u16,
    /// Write every frame received and sent to this pcapng file (core 0; FILE.coreN for
    /// the others). None by default.
    pub pcap: Option<String>,
    /// The most each capture file holds, MiB (default 100); later frames are not written.
    pub pcap_max_mb: u64,
    /// Impairments of received frames, for tests against real peers, e.g.
    /// `loss=0.05,reorder=0.1:5ms,outage=10s+20s` (see `sluice_dev::Impairments`).
    pub impair_rx: Option<String>,
    /// Impairments of sent frames.
    pub impair_tx: Option<String>,
    /// Seed of the impairments' randomness (default 1; core `c` uses seed + `c`).
    pub impair_seed: u64,
    /// Let the process's heap use transparent huge pages (default false: `Engine::run`
    /// turns them off for the process with `prctl(PR_SET_THP_DISABLE)`). The allocator
    /// gives freed memory back in small pieces and faults it in again as connections come
    /// and go; with huge pages each such fault zeroes 2 MiB (measured: up to 6% of a client
    /// opening 200,000 connections a second). DPDK's hugepages are not affected.
    pub heap_huge_pages: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            eal: Vec::new(),
            port: "tap:sl0".into(),
            cores: 1,
            ip: "198.18.0.2/24".into(),
            gateway: None,
            arp: Vec::new(),
            ip6: Vec::new(),
            gateway6: None,
            mtu: 1500,
            recv_buffer: 256 * 1024,
            send_buffer: 256 * 1024,
            congestion: "cubic".into(),
            nodelay: false,
            checksum_offload: true,
            idle: "backoff".into(),
            mbufs: 16383,
            rx_copybreak: 512,
            gso_segments: 44,
            msl_ms: 30_000,
            max_connections: 1 << 20,
            max_time_wait: 1 << 18,
            mem_budget_mb: 1024,
            mem_budget_total_mb: 0,
            min_pmtu: 552,
            pcap: None,
            pcap_max_mb: 100,
            impair_rx: None,
            impair_tx: None,
            impair_seed: 1,
            heap_huge_pages: false,
        }
    }
}

/// Command-line flags; each one given overrides the file's value.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ConfigArgs {
    /// A TOML file with any of the settings below.
    #[arg(long = "config", value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// A raw EAL argument (repeatable), e.g. --eal=-l --eal=0-1.
    #[arg(long = "eal", allow_hyphen_values = true, value_name = "ARG")]
    pub eal: Vec<String>,
    /// tap:NAME, vhost:PATH, virtio:PATH, or a DPDK port name [default: tap:sl0]
    #[arg(long)]
    pub port: Option<String>,
    /// Cores (one rx/tx queue pair each) [default: 1]
    #[arg(long)]
    pub cores: Option<u16>,
    /// Our IPv4 address/prefix [default: 198.18.0.2/24]
    #[arg(long)]
    pub ip: Option<String>,
    /// Default gateway.
    #[arg(long)]
    pub gateway: Option<String>,
    /// A static ARP entry IP=MAC (repeatable).
    #[arg(long = "arp", value_name = "IP=MAC")]
    pub arp: Vec<String>,
    /// An IPv6 address/prefix besides the link-local one (repeatable): TCP, UDP, ping and
    /// neighbour discovery over IPv6; listeners take clients of both families
    #[arg(long = "ip6", value_name = "ADDR/LEN")]
    pub ip6: Vec<String>,
    /// The IPv6 router for destinations outside the --ip6 prefixes
    #[arg(long)]
    pub gateway6: Option<String>,
    /// MTU of the port, bytes; at least 576 [default: 1500]
    #[arg(long)]
    pub mtu: Option<u16>,
    /// Per-connection receive buffer, bytes [default: 262144]
    #[arg(long)]
    pub recv_buffer: Option<usize>,
    /// Per-connection send buffer, bytes [default: 262144]
    #[arg(long)]
    pub send_buffer: Option<usize>,
    /// cubic, newreno or unlimited [default: cubic]
    #[arg(long)]
    pub congestion: Option<String>,
    /// Disable Nagle's algorithm.
    #[arg(long)]
    pub nodelay: bool,
    /// Compute every checksum in software instead of using the port's offloads.
    #[arg(long)]
    pub no_checksum_offload: bool,
    /// Let the heap use transparent huge pages (off by default: connection churn faults
    /// memory in again and again, 2 MiB at a time with them).
    #[arg(long)]
    pub heap_huge_pages: bool,
    /// busy, backoff or backoff:MAX_SLEEP_US [default: backoff]
    #[arg(long)]
    pub idle: Option<String>,
    /// Mbufs per queue; a quarter may be held for a full transmit ring [default: 16383]
    #[arg(long)]
    pub mbufs: Option<u32>,
    /// Smallest TCP payload kept in its mbuf (zero-copy receive); 0 turns it off [default: 512]
    #[arg(long)]
    pub rx_copybreak: Option<usize>,
    /// Large TCP segments on transmit, in full-sized segments (software GSO); 1 turns it off [default: 44]
    #[arg(long)]
    pub gso_segments: Option<u16>,
    /// Maximum segment lifetime in ms (TIME-WAIT is twice it) [default: 30000]
    #[arg(long)]
    pub msl_ms: Option<u64>,
    /// Most TCP connections per core; SYNs beyond are dropped [default: 1048576]
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Most connections in TIME-WAIT per core; the oldest are recycled [default: 262144]
    #[arg(long)]
    pub max_time_wait: Option<usize>,
    /// Most memory for connection buffers per core, MiB; past it buffers stop growing and new connections are refused [default: 1024]
    #[arg(long)]
    pub mem_budget_mb: Option<u64>,
    /// Most memory for connection buffers of all cores together, MiB; 0: half the machine's memory [default: 0]
    #[arg(long)]
    pub mem_budget_total_mb: Option<u64>,
    /// Smallest path MTU an ICMP "fragmentation needed" may set [default: 552]
    #[arg(long)]
    pub min_pmtu: Option<u16>,
    /// Capture every frame received and sent into this pcapng file (FILE.coreN for core N > 0)
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<String>,
    /// Most MiB each capture file holds [default: 100]
    #[arg(long)]
    pub pcap_max_mb: Option<u64>,
    /// Impair received frames (tests): e.g. loss=0.05,reorder=0.1:5ms,dup=0.01,outage=10s+20s
    #[arg(long, value_name = "SPEC")]
    pub impair_rx: Option<String>,
    /// Impair sent frames (tests), same syntax as --impair-rx.
    #[arg(long, value_name = "SPEC")]
    pub impair_tx: Option<String>,
    /// Seed of the impairments [default: 1]
    #[arg(long)]
    pub impair_seed: Option<u64>,
}

impl Config {
    /// Reads a TOML file and validates it, as `from_toml`; `Read` if it cannot be read.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.display().to_string(),
            err,
        })?;
        Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { err, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                err,
            },
            e => e,
        })
    }

    /// Parses TOML text (missing keys keep their defaults) and validates it: `Parse` for
    /// bad TOML or an unknown key, `Invalid` for a bad value.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: String::new(),
            err: e.to_string(),
        })?;
        c.validate()?;
        Ok(c)
    }

    /// The file named by `--config` (or the defaults), with the given flags on top.
    pub fn from_args(args: &ConfigArgs) -> Result<Config, ConfigError> {
        let mut c = match &args.file {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        if !args.eal.is_empty() {
            c.eal = args.eal.clone();
        }
        macro_rules! over {
            ($($f:ident),*) => { $( if let Some(v) = &args.$f { c.$f = v.clone(); } )* };
        }
        over!(
            port,
            cores,
            ip,
            mtu,
            recv_buffer,
            send_buffer,
            congestion,
            idle,
            mbufs,
            rx_copybreak,
            gso_segments,
            msl_ms,
            max_connections,
            max_time_wait,
            mem_budget_mb,
            mem_budget_total_mb,
            min_pmtu,
            pcap_max_mb,
            impair_seed
        );
        if args.pcap.is_some() {
            c.pcap = args.pcap.clone();
        }
        if args.impair_rx.is_some() {
            c.impair_rx = args.impair_rx.clone();
        }
        if args.impair_tx.is_some() {
            c.impair_tx = args.impair_tx.clone();
        }
        if args.gateway.is_some() {
            c.gateway = args.gateway.clone();
        }
        if !args.arp.is_empty() {
            c.arp = args.arp.clone();
        }
        if !args.ip6.is_empty() {
            c.ip6 = args.ip6.clone();
        }
        if args.gateway6.is_some() {
            c.gateway6 = args.gateway6.clone();
        }
        c.nodelay |= args.nodelay;
        c.heap_huge_pages |= args.heap_huge_pages;
        if args.no_checksum_offload {
            c.checksum_offload = false;
        }
        c.validate()?;
        Ok(c)
    }

    /// Checks every field, so that a bad value is reported before EAL starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.port_spec()?;
        self.cidr()?;
        self.gateway_addr()?;
        self.static_arp()?;
        self.ipv6_addresses()?;
        self.gateway6_addr()?;
        self.idle_strategy()?;
        self.congestion_kind()?;
        self.impairments()?;
        if self.cores == 0 || self.cores > 128 {
            return Err(ConfigError::Invalid {
                field: "cores",
                value: self.cores.to_string(),
                hint: "1..=128",
            });
        }
        if self.recv_buffer < 1024 || self.send_buffer < 1024 {
            return Err(ConfigError::Invalid {
                field: "recv_buffer/send_buffer",
                value: format!("{}/{}", self.recv_buffer, self.send_buffer),
                hint: "at least 1024 bytes",
            });
        }
        // The NIC's rings hold 1024 + 1024 mbufs per queue; a pool smaller than that made
        // EAL fail in a way that read like missing hugepages.
        if self.mbufs < 4095 {
            return Err(ConfigError::Invalid {
                field: "mbufs",
                value: self.mbufs.to_string(),
                hint: "at least 4095 per queue (the rx and tx rings alone hold 2048)",
            });
        }
        if self.mtu < 576 {
            return Err(ConfigError::Invalid {
                field: "mtu",
                value: self.mtu.to_string(),
                hint: "at least 576",
            });
        }
        if self.min_pmtu < 68 || u32::from(self.min_pmtu) > self.mtu as u32 {
            return Err(ConfigError::Invalid {
                field: "min_pmtu",
                value: self.min_pmtu.to_string(),
                hint: "68 (IPv4's minimum) up to the MTU; 552 is Linux's default",
            });
        }
        if self.mem_budget_mb == 0 {
            return Err(ConfigError::Invalid {
                field: "mem_budget_mb",
                value: "0".into(),
                hint: "at least 1 (MiB per core)",
            });
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid {
                field: "max_connections",
                value: "0".into(),
                hint: "at least 1",
            });
        }
        Ok(())
    }

    /// The port: `port` parsed. `Invalid` for an empty name, a tap name over 15 bytes, or a
    /// vhost socket in a directory that does not exist.
    pub fn port_spec(&self) -> Result<PortSpec, ConfigError> {
        self.port.parse()
    }

    /// Our address and subnet: `ip` parsed. `Invalid` if it is not `ADDRESS/PREFIX`, or
    /// (below /31) it is the subnet's network or broadcast address.
    pub fn cidr(&self) -> Result<Ipv4Cidr, ConfigError> {
        let c = parse_cidr(&self.ip).ok_or_else(|| ConfigError::Invalid {
            field: "ip",
            value: self.ip.clone(),
            hint: "ADDRESS/PREFIX, e.g. 198.18.0.2/24",
        })?;
        // The subnet's own network and broadcast addresses are not a host's (below /31).
        let a = c.address();
        if c.prefix_len() < 31 && (a == c.network() || Some(a) == c.broadcast()) {
            return Err(ConfigError::Invalid {
                field: "ip",
                value: self.ip.clone(),
                hint: "a host address of the subnet, not its network or broadcast address",
            });
        }
        Ok(c)
    }

    /// The gateway's address, `None` if there is none. `Invalid` if it is not an IPv4
    /// address, or not a host of our subnet other than us.
    pub fn gateway_addr(&self) -> Result<Option<Ipv4Address>, ConfigError> {
        let Some(g) = self.gateway.as_deref() else {
            return Ok(None);
        };
        let bad = |hint| ConfigError::Invalid {
            field: "gateway",
            value: g.into(),
            hint,
        };
        let a = parse_ip(g).ok_or_else(|| bad("an IPv4 address"))?;
        // The gateway is reached by ARP: it must be on our subnet.
        if let Ok(c) = self.cidr() {
            if !c.contains(a) || a == c.address() {
                return Err(bad("an address on the subnet of --ip (not our own)"));
            }
        }
        Ok(Some(a))
    }

    /// The IPv6 addresses (`ip6` parsed); `Invalid` for one that is not a unicast,
    /// non-link-local `ADDRESS/PREFIX`.
    pub fn ipv6_addresses(&self) -> Result<Vec<sluice_wire::ipv6::Ipv6Cidr>, ConfigError> {
        self.ip6
            .iter()
            .map(|e| {
                let bad = || ConfigError::Invalid {
                    field: "ip6",
                    value: e.clone(),
                    hint: "ADDRESS/PREFIX, e.g. 2001:2::2/64 (a unicast address)",
                };
                let (a, len) = e.split_once('/').ok_or_else(bad)?;
                let a: sluice_wire::ipv6::Ipv6Address = a.parse().map_err(|_| bad())?;
                let len: u8 = len.parse().ok().filter(|l| *l <= 128).ok_or_else(bad)?;
                if !a.is_unicast() || a.is_link_local() {
                    return Err(bad());
                }
                Ok(sluice_wire::ipv6::Ipv6Cidr::new(a, len))
            })
            .collect()
    }

    /// The IPv6 router (`gateway6` parsed): a unicast address.
    pub fn gateway6_addr(&self) -> Result<Option<sluice_wire::ipv6::Ipv6Address>, ConfigError> {
        let Some(g) = self.gateway6.as_deref() else {
            return Ok(None);
        };
        let bad = || ConfigError::Invalid {
            field: "gateway6",
            value: g.to_string(),
            hint: "a unicast IPv6 address, e.g. fe80::1 or 2001:2::1",
        };
        let a: sluice_wire::ipv6::Ipv6Address = g.parse().map_err(|_| bad())?;
        if !a.is_unicast() {
            return Err(bad());
        }
        Ok(Some(a))
    }

    /// The static ARP entries as (address, MAC) pairs; `Invalid` for one that is not
    /// `IP=MAC`.
    pub fn static_arp(&self) -> Result<Vec<(Ipv4Address, EthernetAddress)>, ConfigError> {
        self.arp
            .iter()
            .map(|e| {
                let bad = || ConfigError::Invalid {
                    field: "arp",
                    value: e.clone(),
                    hint: "IP=MAC, e.g. 198.18.0.1=02:00:00:00:00:01",
                };
                let (ip, mac) = e.split_once('=').ok_or_else(bad)?;
                Ok((parse_ip(ip).ok_or_else(bad)?, parse_mac(mac).ok_or_else(bad)?))
            })
            .collect()
    }

    /// The impairments (rx, tx), if any are configured.
    pub fn impairments(&self) -> Result<Option<(Impairments, Impairments)>, ConfigError> {
        if self.impair_rx.is_none() && self.impair_tx.is_none() {
            return Ok(None);
        }
        let parse = |field: &'static str, v: &Option<String>| {
            v.as_deref()
                .unwrap_or("")
                .parse::<Impairments>()
                .map_err(|_| ConfigError::Invalid {
                    field,
                    value: v.clone().unwrap_or_default(),
                    hint: "KEY=VALUE,... with loss, dup, reorder, corrupt, latency, rate, queue, outage",
                })
        };
        Ok(Some((
            parse("impair_rx", &self.impair_rx)?,
            parse("impair_tx", &self.impair_tx)?,
        )))
    }

    /// The idle strategy: `idle` parsed. `Invalid` unless it is `busy`, `backoff` or
    /// `backoff:MAX_SLEEP_US`.
    pub fn idle_strategy(&self) -> Result<IdleStrategy, ConfigError> {
        self.idle.parse().map_err(|_| ConfigError::Invalid {
            field: "idle",
            value: self.idle.clone(),
            hint: "busy, backoff or backoff:MAX_SLEEP_US",
        })
    }

    /// The congestion control of new connections: `cubic`, `newreno` (or `reno`),
    /// `unlimited` (or `none`); `Invalid` for anything else.
    pub fn congestion_kind(&self) -> Result<CongestionKind, ConfigError> {
        match self.congestion.as_str() {
            "cubic" => Ok(CongestionKind::Cubic),
            "newreno" | "reno" => Ok(CongestionKind::NewReno),
            "unlimited" | "none" => Ok(CongestionKind::Unlimited),
            _ => Err(ConfigError::Invalid {
                field: "congestion",
                value: self.congestion.clone(),
                hint: "cubic, newreno or unlimited",
            }),
        }
    }

    /// The TCP settings of new connections.
    pub fn tcp_config(&self) -> Result<TcpConfig, ConfigError> {
        let mut t = TcpConfig::default();
        t.recv_buffer = self.recv_buffer;
        // Keep out-of-order data up to the whole window (as Linux does): a smaller bound
        // drops what a sender in recovery has in flight past it, and each drop is one more
        // loss for it to repair.
        t.max_ooo_bytes = self.recv_buffer;
        t.send_buffer = self.send_buffer;
        t.nodelay = self.nodelay;
        t.congestion = self.congestion_kind()?;
        t.msl = Duration::from_millis(self.msl_ms);
        t.min_pmtu = self.min_pmtu;
        t.mss = self.mtu.saturating_sub(40);
        // Each piece of a large segment is at least 64 bytes of the 64 KiB bound.
        t.gso_segments = self.gso_segments.clamp(1, 64);
        if self.rx_copybreak == 0 {
            t.rx_frames_max = 0;
        } else {
            t.rx_copybreak = self.rx_copybreak;
        }
        Ok(t)
    }

    /// The interface settings, with the ISN key given (from the OS in programs).
    pub fn interface_config(&self, isn_key: IsnKey) -> Result<InterfaceConfig, ConfigError> {
        let mut c = InterfaceConfig::new(self.cidr()?, isn_key);
        c.gateway = self.gateway_addr()?;
        c.static_arp = self.static_arp()?;
        c.ipv6 = self.ipv6_addresses()?;
        c.gateway6 = self.gateway6_addr()?;
        c.mtu = self.mtu as usize;
        c.tcp = self.tcp_config()?;
        c.max_connections = self.max_connections;
        c.max_time_wait = self.max_time_wait;
        c.mem_budget = usize::try_from(self.mem_budget_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        // Connections may hold up to a quarter of the queue's mbufs (zero-copy receive).
        c.rx_frames_limit = if self.rx_copybreak == 0 {
            0
        } else {
            self.mbufs as usize / 4
        };
        // And the frames held for a full transmit ring another quarter.
        c.tx_queue_limit = self.mbufs as usize / 4;
        Ok(c)
    }

    /// The EAL arguments: the given ones, or defaults for the port kind, plus the vdev.
    pub fn eal_args(&self) -> Result<Vec<String>, ConfigError> {
        let spec = self.port_spec()?;
        let mut d: Vec<String> = spec.default_eal().iter().map(|s| s.to_string()).collect();
        d.push(format!("--file-prefix=sluice-{}", std::process::id()));
        let mut a = merge_eal(&d, &self.eal);
        // One lcore per engine core, on the CPUs this process may use (so that `taskset`
        // is honoured), unless the EAL arguments name the lcores themselves.
        if !sluice_dpdk::names_lcores(&a) {
            let cpus = sluice_dpdk::allowed_cpus();
            let want = usize::from(self.cores);
            if cpus.len() < want {
                return Err(ConfigError::TooManyCores {
                    cores: self.cores,
                    available: cpus.len(),
                    list: cpu_list(&cpus),
                });
            }
            a.extend(["-l".to_string(), cpu_list(&cpus[..want])]);
        }
        // EAL's log level follows the application's (tracing's, RUST_LOG): at the default
        // (info) EAL says what matters (notice and above), not its chatter (detected
        // lcores, 1 GiB pages it did not find).
        if !a.iter().any(|x| x.starts_with("--log-level")) {
            let level = eal_log_level();
            a.push(format!("--log-level={level}"));
            if level <= 6 {
                // Harmless at the default level: net_tap's multiq qdisc and rte_flow
                // (this kernel has neither; the port works without), telemetry's legacy
                // socket. Shown again with RUST_LOG=debug.
                a.push("--log-level=pmd.net.tap:3".into());
                a.push("--log-level=lib.telemetry:4".into());
            }
        }
        if let Some(v) = spec.vdev(self.cores) {
            a.push(format!("--vdev={v}"));
        }
        Ok(a)
    }
}

/// CPUs as an EAL/`taskset` list: `0,2,5`.
pub fn cpu_list(cpus: &[u32]) -> String {
    cpus.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// A dotted-quad IPv4 address (spaces around it allowed); `None` if `s` is not one.
pub fn parse_ip(s: &str) -> Option<Ipv4Address> {
    s.trim()
        .parse::<std::net::Ipv4Addr>()
        .ok()
        .map(|a| Ipv4Address(a.octets()))
}

/// `ADDRESS/PREFIX` with a prefix of at most 32; `None` otherwise. Any address of the
/// subnet is accepted (`Config::cidr` refuses the network and broadcast ones).
pub fn parse_cidr(s: &str) -> Option<Ipv4Cidr> {
    let (a, p) = s.split_once('/')?;
    let p: u8 = p.parse().ok().filter(|p| *p <= 32)?;
    Some(Ipv4Cidr::new(parse_ip(a)?, p))
}

/// A MAC address as six hex bytes separated by colons, e.g. `02:00:00:00:00:01`; `None`
/// otherwise.
pub fn parse_mac(s: &str) -> Option<EthernetAddress> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in m.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(EthernetAddress(m))
}

/// The machine's physical memory in bytes (`usize::MAX` if unknown).
pub(crate) fn physical_memory() -> usize {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            kb.checked_mul(1024)
        })
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_work_on_tap() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.port_spec().unwrap(), PortSpec::Tap("sl0".into()));
        let eal = c.eal_args().unwrap();
        assert!(eal.contains(&"--no-huge".to_string()));
        assert!(eal.contains(&"--vdev=net_tap0,iface=sl0".to_string()));
    }

    #[test]
    fn default_lcores_follow_the_allowed_cpus() {
        let cpus = sluice_dpdk::allowed_cpus();
        assert!(!cpus.is_empty());
        let c = Config::default();
        let eal = c.eal_args().unwrap();
        let at = eal.iter().position(|a| a == "-l").expect("-l given");
        assert_eq!(eal[at + 1], cpus[0].to_string());
        // More cores than CPUs: a clear error naming what there is.
        let many = Config {
            cores: cpus.len() as u16 + 1,
            ..Config::default()
        };
        let e = many.eal_args().unwrap_err().to_string();
        assert!(
            e.contains(&format!("may run on {} CPU", cpus.len())) && e.contains("--cores"),
            "{e}"
        );
        // EAL arguments that name the lcores are left alone.
        let own = Config {
            cores: 64,
            eal: vec!["--lcores=0@0".into()],
            ..Config::default()
        };
        assert!(!own.eal_args().unwrap().contains(&"-l".to_string()));
        // Others get the default lcores added.
        let other = Config {
            eal: vec!["--no-huge".into()],
            ..Config::default()
        };
        assert!(other.eal_args().unwrap().contains(&"-l".to_string()));
    }

    #[test]
    fn given_eal_arguments_are_added_to_the_defaults_replacing_only_their_own_kind() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let tap = v(&["--no-huge", "-m", "512", "--no-pci", "--file-prefix=sluice-1"]);
        // Only lcores given: every default stays (no hugepage files held after exit).
        assert_eq!(
            merge_eal(&tap, &v(&["-l", "0-1"])),
            v(&[
                "--no-huge",
                "-m",
                "512",
                "--no-pci",
                "--file-prefix=sluice-1",
                "-l",
                "0-1"
            ])
        );
        // Hugepages asked for: the memory defaults go, the rest stays.
        assert_eq!(
            merge_eal(&tap, &v(&["--socket-mem=1024"])),
            v(&["--no-pci", "--file-prefix=sluice-1", "--socket-mem=1024"])
        );
        // A PCI device allowed, and a prefix of one's own.
        assert_eq!(
            merge_eal(&tap, &v(&["-a", "0000:01:00.0", "--file-prefix", "mine"])),
            v(&[
                "--no-huge",
                "-m",
                "512",
                "-a",
                "0000:01:00.0",
                "--file-prefix",
                "mine"
            ])
        );
        assert_eq!(
            merge_eal(&tap, &v(&["--in-memory"])),
            v(&["--no-pci", "--file-prefix=sluice-1", "--in-memory"])
        );
        // The documented way to replace them all.
        assert_eq!(
            merge_eal(&tap, &v(&["--no-sluice-defaults", "--in-memory", "-l", "1"])),
            v(&["--in-memory", "-l", "1"])
        );
        // Through the config: the vdev and lcores still come last.
        let c = Config {
            eal: v(&["--log-level=lib.eal:debug"]),
            ..Config::default()
        };
        let eal = c.eal_args().unwrap();
        assert!(
            eal.contains(&"--no-huge".to_string()) && eal.contains(&"--log-level=lib.eal:debug".to_string())
        );
    }

    #[test]
    fn file_then_flags() {
        let c = Config::from_toml(
            "port = \"virtio:/tmp/x.sock\"\ncores = 2\nip = \"198.18.1.2/24\"\narp = [\"198.18.1.1=02:00:00:00:00:01\"]\n",
        )
        .unwrap();
        assert_eq!(c.cores, 2);
        assert_eq!(c.static_arp().unwrap()[0].1, EthernetAddress([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            c.eal_args().unwrap().last().unwrap(),
            "--vdev=virtio_user0,path=/tmp/x.sock,queues=2"
        );
        let dir = std::env::temp_dir().join(format!("sluice-cfg-{}.toml", std::process::id()));
        std::fs::write(&dir, "cores = 2\nidle = \"busy\"\n").unwrap();
        let args = ConfigArgs {
            file: Some(dir.clone()),
            cores: Some(1),
            ..Default::default()
        };
        let c = Config::from_args(&args).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!((c.cores, c.idle.as_str()), (1, "busy"), "flags override the file");
    }

    #[test]
    fn heap_huge_pages_are_off_unless_asked_for() {
        assert!(!Config::default().heap_huge_pages);
        assert!(
            Config::from_toml("heap_huge_pages = true")
                .unwrap()
                .heap_huge_pages
        );
        let args = ConfigArgs {
            heap_huge_pages: true,
            ..Default::default()
        };
        assert!(Config::from_args(&args).unwrap().heap_huge_pages);
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        for (toml, field) in [
            ("ip = \"198.18.0.2\"", "ip"),
            ("cores = 0", "cores"),
            ("arp = [\"1.2.3.4=zz\"]", "arp"),
            ("idle = \"nap\"", "idle"),
            ("congestion = \"bbr9\"", "congestion"),
            ("port = \"tap:\"", "port"),
            ("port = \"tap:a-name-of-16-chrs\"", "port"),
            ("mbufs = 10", "mbufs"),
            ("port = \"vhost:/no/such/dir/x.sock\"", "port"),
            ("ip = \"198.18.0.0/24\"", "ip"),
            ("ip = \"198.18.0.255/24\"", "ip"),
            ("ip = \"198.18.0.2/24\"\ngateway = \"198.18.1.1\"", "gateway"),
        ] {
            let e = Config::from_toml(toml).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("expected"), "{toml}: {e}");
        }
        assert!(Config::from_toml("colour = 3")
            .unwrap_err()
            .to_string()
            .contains("unknown field"));
    }
}
