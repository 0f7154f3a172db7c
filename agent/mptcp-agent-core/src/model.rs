// SPDX-License-Identifier: MIT OR Apache-2.0
//! Plain data types for what the agent observes: links, addresses, routes, rules (from
//! rtnetlink), MPTCP endpoints, limits, capabilities and events (from `mptcp_pm`), and
//! NetworkManager devices (from D-Bus). Adapters fill them; nothing here does I/O.

use std::{
    collections::BTreeSet,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The unspecified address, i.e. the destination of a default route.
    pub fn any(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }

    /// Length of a host prefix (/32 or /128).
    pub fn host_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// MPTCP endpoint flags, with the kernel's bit values (`MPTCP_PM_ADDR_FLAG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EndpointFlags(pub u32);

impl EndpointFlags {
    pub const SIGNAL: EndpointFlags = EndpointFlags(1 << 0);
    pub const SUBFLOW: EndpointFlags = EndpointFlags(1 << 1);
    pub const BACKUP: EndpointFlags = EndpointFlags(1 << 2);
    pub const FULLMESH: EndpointFlags = EndpointFlags(1 << 3);
    /// Kernel-created for an address in use; never requested by the agent.
    pub const IMPLICIT: EndpointFlags = EndpointFlags(1 << 4);
    /// Subflows from this endpoint also to addresses the peer announces (Linux 6.18;
    /// `MPTCP_PM_ADDR_FLAG_LAMINAR`). Older kernels store the bit and ignore it.
    pub const LAMINAR: EndpointFlags = EndpointFlags(1 << 5);

    const NAMED: [(&'static str, EndpointFlags); 6] = [
        ("signal", EndpointFlags::SIGNAL),
        ("subflow", EndpointFlags::SUBFLOW),
        ("backup", EndpointFlags::BACKUP),
        ("fullmesh", EndpointFlags::FULLMESH),
        ("implicit", EndpointFlags::IMPLICIT),
        ("laminar", EndpointFlags::LAMINAR),
    ];

    pub const fn empty() -> EndpointFlags {
        EndpointFlags(0)
    }

    pub fn contains(self, other: EndpointFlags) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: EndpointFlags) -> EndpointFlags {
        EndpointFlags(self.0 | other.0)
    }

    pub fn without(self, other: EndpointFlags) -> EndpointFlags {
        EndpointFlags(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The flag for a config / `ip mptcp` name.
    pub fn from_name(name: &str) -> Option<EndpointFlags> {
        Self::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    /// The names of the flags set, in bit order, as the config, `ip mptcp`, status and
    /// metrics spell them; bits without a name as one hex number. Empty for no flag.
    pub fn names(self) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = self.0;
        for (name, flag) in Self::NAMED {
            if self.contains(flag) {
                names.push(name.to_string());
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            names.push(format!("{rest:#x}"));
        }
        names
    }
}

impl fmt::Display for EndpointFlags {
    /// Space-separated, as `ip mptcp endpoint show` prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        if names.is_empty() {
            return f.write_str("(none)");
        }
        f.write_str(&names.join(" "))
    }
}

/// An endpoint as the kernel reports it (`ip mptcp endpoint show`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelEndpoint {
    pub id: u8,
    pub addr: IpAddr,
    pub port: Option<u16>,
    pub flags: EndpointFlags,
    /// `dev` of the endpoint; `None` when not bound to an interface.
    pub ifindex: Option<u32>,
}

/// The in-kernel path manager's per-namespace limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Limits {
    pub subflows: u32,
    pub add_addr_accepted: u32,
}

/// `IF_OPER_*` (RFC 2863 operational state) of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperState {
    Unknown,
    NotPresent,
    Down,
    LowerLayerDown,
    Testing,
    Dormant,
    Up,
}

impl OperState {
    pub fn from_kernel(v: u8) -> OperState {
        match v {
            1 => OperState::NotPresent,
            2 => OperState::Down,
            3 => OperState::LowerLayerDown,
            4 => OperState::Testing,
            5 => OperState::Dormant,
            6 => OperState::Up,
            _ => OperState::Unknown,
        }
    }
}

/// A network interface (rtnetlink RTM_NEWLINK).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub ifindex: u32,
    pub name: String,
    /// IFF_UP: administratively up.
    pub up: bool,
    /// IFF_LOWER_UP: the driver reports carrier.
    pub lower_up: bool,
    pub loopback: bool,
    /// IFF_POINTOPOINT (ppp, some raw-IP modems): routes need no gateway.
    pub point_to_point: bool,
    pub oper: OperState,
    /// Kind derived by the adapter from rtnetlink/sysfs, used when NetworkManager is absent.
    pub kind: Option<DeviceType>,
    /// The kernel's link kind (`IFLA_INFO_KIND`: "veth", "wireguard", "tun", "bridge", …);
    /// `None` for hardware devices.
    pub info_kind: Option<String>,
    /// `IFLA_MASTER`: the bridge, bond or VRF this link is a port of.
    pub master: Option<u32>,
}

/// Kernel link kinds that are never uplinks of their own: VPNs and tunnels run over an
/// uplink (a subflow through them duplicates one that already exists), bridges join
/// containers and virtual machines.
const VIRTUAL_KINDS: [(&str, &str); 18] = [
    ("tun", "tun/tap device (VPN)"),
    ("wireguard", "WireGuard tunnel"),
    ("bridge", "bridge"),
    ("openvswitch", "Open vSwitch bridge"),
    ("ipip", "IP tunnel"),
    ("sit", "IP tunnel"),
    ("ip6tnl", "IP tunnel"),
    ("gre", "GRE tunnel"),
    ("gretap", "GRE tunnel"),
    ("ip6gre", "GRE tunnel"),
    ("ip6gretap", "GRE tunnel"),
    ("erspan", "GRE tunnel"),
    ("vti", "IPsec tunnel"),
    ("vti6", "IPsec tunnel"),
    ("xfrm", "IPsec tunnel"),
    ("vxlan", "VXLAN tunnel"),
    ("geneve", "Geneve tunnel"),
    ("vrf", "VRF device (its members are the uplinks)"),
];

impl Link {
    /// Why this link never gets an endpoint unless a rule opts it in (`allow_virtual`),
    /// or `None`. Decided from what the kernel says (link kind, master) and, when known,
    /// NetworkManager's device type. An unenslaved veth stays allowed: it is how a network
    /// namespace or container reaches its uplink (the lab's uplinks are such veths); the
    /// host side of a container's veth is a port of a bridge, and so excluded.
    /// IFF_POINTOPOINT alone excludes nothing: PPP and raw-IP modems are uplinks.
    pub fn excluded_by_default(
        &self,
        nm_type: Option<DeviceType>,
        master: Option<&Link>,
    ) -> Option<String> {
        if let Some(k) = self.info_kind.as_deref() {
            if let Some((_, what)) = VIRTUAL_KINDS.iter().find(|(n, _)| *n == k) {
                return Some(format!("{what} (kernel link kind \"{k}\")"));
            }
        }
        // A VRF's members are routed uplinks; a bridge's, bond's or team's ports carry no
        // IP of their own.
        if let Some(m) = self.master {
            let master = master.filter(|l| l.ifindex == m);
            if master.map_or(true, |l| l.info_kind.as_deref() != Some("vrf")) {
                let port = match self.info_kind.as_deref() {
                    Some("veth") => "container or VM veth, port",
                    _ => "port",
                };
                return Some(match master {
                    Some(l) => format!("{port} of {}", l.name),
                    None => format!("{port} of ifindex {m}"),
                });
            }
        }
        match nm_type {
            Some(
                t @ (DeviceType::Tun
                | DeviceType::Wireguard
                | DeviceType::IpTunnel
                | DeviceType::Vxlan
                | DeviceType::Bridge),
            ) => Some(format!("NetworkManager device type {t}")),
            _ => None,
        }
    }

    /// Carrier in the sense the agent acts on: up, lower layer up, and not reported
    /// lower-layer-down or dormant (Wi-Fi before authentication) by the operational state.
    /// An operational state "down" next to up and lower-up is not yet updated: the kernel
    /// reports the admin up with the carrier at once but recomputes the operational state
    /// in its link watch, which runs at most once a second for most devices (measured: up to
    /// 0.9 s later); the device sends from the moment it is up.
    pub fn has_carrier(&self) -> bool {
        self.up
            && self.lower_up
            && !matches!(
                self.oper,
                OperState::LowerLayerDown | OperState::Dormant | OperState::NotPresent
            )
    }
}

/// `IFA_F_*` address flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AddrFlags(pub u32);

impl AddrFlags {
    /// IPv4: secondary address; IPv6: temporary (privacy) address. Same bit.
    pub const SECONDARY: u32 = 0x01;
    pub const TEMPORARY: u32 = 0x01;
    pub const DADFAILED: u32 = 0x08;
    pub const DEPRECATED: u32 = 0x20;
    pub const TENTATIVE: u32 = 0x40;
    pub const PERMANENT: u32 = 0x80;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

/// An address on a link (RTM_NEWADDR).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub flags: AddrFlags,
    /// `RT_SCOPE_*`: 0 universe, 200 site, 253 link, 254 host.
    pub scope: u8,
}

/// Why an address cannot be an endpoint, or `None` when it can.
pub fn address_unsuitable(a: &Address) -> Option<&'static str> {
    match a.addr {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                return Some("loopback");
            }
            if v4.is_link_local() {
                return Some("link-local");
            }
            if v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() {
                return Some("not unicast");
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                return Some("loopback");
            }
            // fe80::/10
            if v6.segments()[0] & 0xffc0 == 0xfe80 {
                return Some("link-local");
            }
            if v6.is_unspecified() || v6.is_multicast() {
                return Some("not unicast");
            }
            if a.flags.has(AddrFlags::TEMPORARY) {
                return Some("temporary (privacy) address");
            }
            if a.flags.has(AddrFlags::TENTATIVE) {
                return Some("tentative (duplicate address detection running)");
            }
            if a.flags.has(AddrFlags::DADFAILED) {
                return Some("duplicate address detection failed");
            }
        }
    }
    if a.flags.has(AddrFlags::DEPRECATED) {
        return Some("deprecated");
    }
    if a.scope >= 253 {
        return Some("link or host scope");
    }
    None
}

/// The routing tables the kernel predefines.
pub const TABLE_MAIN: u32 = 254;
pub const TABLE_LOCAL: u32 = 255;
pub const TABLE_DEFAULT: u32 = 253;

/// A unicast route with one next hop (multipath routes arrive as one `Route` per hop).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub table: u32,
    pub dst: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
    pub ifindex: Option<u32>,
    /// `RTPROT_*`; the agent marks its own routes with a configured value.
    pub protocol: u8,
    pub metric: u32,
    /// `RT_SCOPE_*` (253 = link for on-link routes).
    pub scope: u8,
    /// Preferred source (`src`).
    pub prefsrc: Option<IpAddr>,
}

impl Route {
    pub fn family(&self) -> Family {
        Family::of(&self.dst)
    }

    pub fn is_default(&self) -> bool {
        self.prefix_len == 0
    }

    /// Same route as far as ownership and reconciliation go (metric and scope included,
    /// since the kernel keys routes by them).
    pub fn same_as(&self, other: &Route) -> bool {
        self.table == other.table
            && self.dst == other.dst
            && self.prefix_len == other.prefix_len
            && self.gateway == other.gateway
            && self.ifindex == other.ifindex
            && self.metric == other.metric
    }
}

/// A policy routing rule (`ip rule`), reduced to what the agent creates and inspects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rule {
    pub family: Family,
    pub priority: u32,
    /// `from ADDR/LEN`; `None` = from all.
    pub src: Option<(IpAddr, u8)>,
    pub table: u32,
    /// `FRA_PROTOCOL`; 0 when unset.
    pub protocol: u8,
}

/// Device type, as NetworkManager names them (config `device_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceType {
    Ethernet,
    Wifi,
    Modem,
    Bluetooth,
    Veth,
    Bridge,
    Bond,
    Vlan,
    Team,
    Tun,
    IpTunnel,
    Macvlan,
    Vxlan,
    Ppp,
    Wireguard,
    Dummy,
    Infiniband,
    Loopback,
    Generic,
    /// A type number this agent does not name.
    Other(u32),
}

impl DeviceType {
    /// Every name the config accepts.
    pub const NAMES: [(&'static str, DeviceType); 19] = [
        ("ethernet", DeviceType::Ethernet),
        ("wifi", DeviceType::Wifi),
        ("modem", DeviceType::Modem),
        ("bluetooth", DeviceType::Bluetooth),
        ("veth", DeviceType::Veth),
        ("bridge", DeviceType::Bridge),
        ("bond", DeviceType::Bond),
        ("vlan", DeviceType::Vlan),
        ("team", DeviceType::Team),
        ("tun", DeviceType::Tun),
        ("ip-tunnel", DeviceType::IpTunnel),
        ("macvlan", DeviceType::Macvlan),
        ("vxlan", DeviceType::Vxlan),
        ("ppp", DeviceType::Ppp),
        ("wireguard", DeviceType::Wireguard),
        ("dummy", DeviceType::Dummy),
        ("infiniband", DeviceType::Infiniband),
        ("loopback", DeviceType::Loopback),
        ("generic", DeviceType::Generic),
    ];

    pub fn from_name(name: &str) -> Option<DeviceType> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
    }

    /// From `org.freedesktop.NetworkManager.Device.DeviceType` (NMDeviceType, as of 1.36).
    pub fn from_nm(v: u32) -> DeviceType {
        match v {
            1 => DeviceType::Ethernet,
            2 => DeviceType::Wifi,
            5 => DeviceType::Bluetooth,
            8 => DeviceType::Modem,
            9 => DeviceType::Infiniband,
            10 => DeviceType::Bond,
            11 => DeviceType::Vlan,
            13 => DeviceType::Bridge,
            14 => DeviceType::Generic,
            15 => DeviceType::Team,
            16 => DeviceType::Tun,
            17 => DeviceType::IpTunnel,
            18 => DeviceType::Macvlan,
            19 => DeviceType::Vxlan,
            20 => DeviceType::Veth,
            22 => DeviceType::Dummy,
            23 => DeviceType::Ppp,
            29 => DeviceType::Wireguard,
            32 => DeviceType::Loopback,
            n => DeviceType::Other(n),
        }
    }

    pub fn name(self) -> String {
        match Self::NAMES.iter().find(|(_, t)| *t == self) {
            Some((n, _)) => (*n).to_string(),
            None => match self {
                DeviceType::Other(n) => format!("type-{n}"),
                _ => "unknown".to_string(),
            },
        }
    }
}

impl fmt::Display for DeviceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// `NMMetered`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Metered {
    #[default]
    Unknown,
    Yes,
    No,
    GuessYes,
    GuessNo,
}

impl Metered {
    pub fn from_nm(v: u32) -> Metered {
        match v {
            1 => Metered::Yes,
            2 => Metered::No,
            3 => Metered::GuessYes,
            4 => Metered::GuessNo,
            _ => Metered::Unknown,
        }
    }

    /// NetworkManager's own advice: treat guess-yes like yes, everything else as not metered.
    pub fn is_metered(self) -> bool {
        matches!(self, Metered::Yes | Metered::GuessYes)
    }
}

/// `NMDeviceState` values the agent distinguishes.
pub mod nm_state {
    pub const UNKNOWN: u32 = 0;
    pub const UNMANAGED: u32 = 10;
    pub const UNAVAILABLE: u32 = 20;
    pub const DISCONNECTED: u32 = 30;
    pub const PREPARE: u32 = 40;
    pub const SECONDARIES: u32 = 90;
    pub const ACTIVATED: u32 = 100;
    pub const DEACTIVATING: u32 = 110;

    pub fn name(state: u32) -> &'static str {
        match state {
            0 => "UNKNOWN",
            10 => "UNMANAGED",
            20 => "UNAVAILABLE",
            30 => "DISCONNECTED",
            40 => "PREPARE",
            50 => "CONFIG",
            60 => "NEED_AUTH",
            70 => "IP_CONFIG",
            80 => "IP_CHECK",
            90 => "SECONDARIES",
            100 => "ACTIVATED",
            110 => "DEACTIVATING",
            120 => "FAILED",
            _ => "?",
        }
    }
}

/// The profile NetworkManager applied to a device (`Device.GetAppliedConnection`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedProfile {
    /// `connection.id`, for messages.
    pub id: String,
    /// `connection.mptcp-flags` (NM 1.40+); 0 = default (absent on older NM).
    pub mptcp_flags: u32,
}

/// A NetworkManager device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmDevice {
    /// D-Bus object path, the device's identity.
    pub path: String,
    /// Kernel interface name carrying IP (`IpInterface`, else `Interface`).
    pub interface: String,
    pub device_type: DeviceType,
    /// `NMDeviceState`.
    pub state: u32,
    pub metered: Metered,
    /// `None` when not activated or when NetworkManager refused to tell.
    pub applied: Option<AppliedProfile>,
    /// Gateways of the device's IP configuration, used for policy routing.
    pub gateway4: Option<Ipv4Addr>,
    pub gateway6: Option<Ipv6Addr>,
}

impl NmDevice {
    /// NetworkManager manages it (anything but UNKNOWN/UNMANAGED).
    pub fn managed(&self) -> bool {
        self.state > nm_state::UNMANAGED
    }
}

/// A NetworkManager version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NmVersion(pub u32, pub u32, pub u32);

impl NmVersion {
    /// From the `Version` property ("1.42.4", "1.46.0-dev"); `None` if unparsable.
    pub fn parse(s: &str) -> Option<NmVersion> {
        let mut parts = s.split(['.', '-']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let micro = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        Some(NmVersion(major, minor, micro))
    }

    /// NetworkManager manages MPTCP endpoints itself from 1.40 on.
    pub fn has_mptcp(self) -> bool {
        self >= NmVersion(1, 40, 0)
    }
}

impl fmt::Display for NmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What the running kernel's MPTCP offers. Adapters derive it from the `mptcp_pm` family
/// description and `/proc/sys/net/mptcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelCaps {
    /// MPTCP_PM_CMD_SET_FLAGS (5.12+): backup can be changed in place.
    pub set_flags: bool,
    /// The `mptcp_pm_events` multicast group (5.12+): subflow loss can be seen.
    pub events: bool,
    /// The fullmesh endpoint flag is honoured.
    pub fullmesh: bool,
    /// The laminar endpoint flag is known to the kernel (probed; see `laminar_probe`).
    /// Never sent otherwise: an older kernel stores the bit silently and does nothing.
    pub laminar: bool,
    /// How `laminar` was decided, for status and `--version`.
    pub laminar_probe: String,
    /// Endpoint ids run out (Linux 5.10): the kernel ignores a requested id, numbers
    /// endpoints next_id++ and never reuses a number; past 255 every add fails until a
    /// flush starts over at 1. Newer kernels (and the backport) reuse freed ids.
    pub ids_run_out: bool,
    /// Files under `/proc/sys/net/mptcp`.
    pub sysctls: BTreeSet<String>,
    /// One-line description for messages, e.g. "5.10 (endpoints and limits only)".
    pub description: String,
}

/// Kind of an `mptcp_pm_events` event the agent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MptcpEventKind {
    Created,
    Established,
    Closed,
    SubflowEstablished,
    SubflowClosed,
    /// A subflow's backup flag changed (reported on D-Bus; nothing to plan).
    SubflowPriority,
    #[default]
    Other,
}

/// One path-manager event, reduced to what the agent reasons about. (`Default`: kind
/// `Other`, no attributes; tests name only what they set.)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MptcpEvent {
    pub kind: MptcpEventKind,
    pub token: Option<u32>,
    pub saddr: Option<IpAddr>,
    pub daddr: Option<IpAddr>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
    pub loc_id: Option<u8>,
    pub ifindex: Option<u32>,
    /// `sk_err` of a closed subflow (104 ECONNRESET, 110 ETIMEDOUT, 113 EHOSTUNREACH);
    /// absent or 0 when it was closed on purpose.
    pub error: Option<u32>,
    /// The subflow's backup flag (subflow events).
    pub backup: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str, flags: u32, scope: u8) -> Address {
        Address {
            ifindex: 1,
            addr: s.parse().unwrap(),
            prefix_len: 24,
            flags: AddrFlags(flags),
            scope,
        }
    }

    #[test]
    fn unsuitable_addresses() {
        assert_eq!(address_unsuitable(&addr("10.0.0.1", 0, 0)), None);
        assert_eq!(
            address_unsuitable(&addr("10.0.0.1", AddrFlags::SECONDARY, 0)),
            None
        );
        assert_eq!(
            address_unsuitable(&addr("127.0.0.1", 0, 254)),
            Some("loopback")
        );
        assert_eq!(
            address_unsuitable(&addr("169.254.3.4", 0, 0)),
            Some("link-local")
        );
        assert_eq!(
            address_unsuitable(&addr("fe80::1", 0, 253)),
            Some("link-local")
        );
        assert_eq!(address_unsuitable(&addr("::1", 0, 254)), Some("loopback"));
        assert_eq!(address_unsuitable(&addr("2001:db8::1", 0, 0)), None);
        assert!(address_unsuitable(&addr("2001:db8::2", AddrFlags::TEMPORARY, 0)).is_some());
        assert!(address_unsuitable(&addr("2001:db8::3", AddrFlags::DEPRECATED, 0)).is_some());
        assert!(address_unsuitable(&addr("2001:db8::4", AddrFlags::TENTATIVE, 0)).is_some());
        assert!(address_unsuitable(&addr("2001:db8::5", AddrFlags::DADFAILED, 0)).is_some());
    }

    #[test]
    fn flags_display_and_names() {
        let f = EndpointFlags::SUBFLOW.union(EndpointFlags::BACKUP);
        assert_eq!(f.to_string(), "subflow backup");
        assert_eq!(EndpointFlags(0x40 | 2).to_string(), "subflow 0x40");
        assert_eq!(EndpointFlags::empty().to_string(), "(none)");
        assert_eq!(
            EndpointFlags::from_name("fullmesh"),
            Some(EndpointFlags::FULLMESH)
        );
        assert_eq!(EndpointFlags::from_name("bogus"), None);
        assert_eq!(
            EndpointFlags::SUBFLOW.union(EndpointFlags::BACKUP).names(),
            vec!["subflow", "backup"]
        );
        assert!(EndpointFlags::empty().names().is_empty());
    }

    #[test]
    fn nm_versions() {
        assert_eq!(NmVersion::parse("1.42.4"), Some(NmVersion(1, 42, 4)));
        assert_eq!(NmVersion::parse("1.46.0-dev"), Some(NmVersion(1, 46, 0)));
        assert_eq!(NmVersion::parse("1.36"), Some(NmVersion(1, 36, 0)));
        assert_eq!(NmVersion::parse("x"), None);
        assert!(NmVersion(1, 40, 0).has_mptcp());
        assert!(!NmVersion(1, 36, 2).has_mptcp());
    }

    #[test]
    fn device_types() {
        assert_eq!(DeviceType::from_nm(2), DeviceType::Wifi);
        assert_eq!(DeviceType::from_nm(8), DeviceType::Modem);
        assert_eq!(DeviceType::from_nm(20).name(), "veth");
        assert_eq!(DeviceType::from_nm(99).name(), "type-99");
        assert_eq!(DeviceType::from_name("modem"), Some(DeviceType::Modem));
    }
}
