"""The configuration: one frozen, typed dataclass per TOML section.

Every field has a default (the example file `gcsguard.example.toml` shows them all)
and may carry metadata: `check` (a function returning an error text or None),
`path` (resolved relative to the config file), `secret` (given only as
`<key>_file` or `<key>_env`, never inline). Later parts add their sections here.

Only syntax and types are checked here, and nothing from a feature module is imported:
what an entry means (an allowlist entry, an inventory line, an alert rules file) is the
policy's to check (appliance/policy/load.py), with the same file and key in its errors.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

from .endpoint import Endpoint


class Secret:
    """A secret value that never shows itself in repr, logs or exports."""

    __slots__ = ("_value", "origin")

    def __init__(self, value: str, origin: str) -> None:
        self._value, self.origin = value, origin

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<redacted>, from {self.origin})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def positive(v: float) -> str | None:
    return None if v > 0 else "must be greater than 0"


def non_negative(v: float) -> str | None:
    return None if v >= 0 else "must be 0 or more"


def host_port(values: tuple[str, ...]) -> str | None:
    for v in values:
        try:
            Endpoint.parse(v)
        except ValueError as e:
            return str(e)
    return None


def address_port(value: str) -> str | None:
    """host:port whose host is an IP address (the firewall opens exactly that address)."""
    error = host_port((value,))
    if error:
        return error
    return addresses((Endpoint.parse(value)[0],))


def networks(values: tuple[str, ...]) -> str | None:
    import ipaddress
    for v in values:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            return f"{v!r} is not an address or network (CIDR)"
    return None


def interface_names(values) -> str | None:
    for v in (values,) if isinstance(values, str) else values:
        if v and (len(v) > 15 or not all(c.isalnum() or c in "-_." for c in v)):
            return f"{v!r} is not an interface name (at most 15 letters, digits, - _ .)"
    return None


def dhcp_range(value: str) -> str | None:
    if not value:
        return None
    import ipaddress
    try:
        first, last = (ipaddress.IPv4Address(v.strip()) for v in value.split(","))
    except ValueError:
        return f"{value!r} is not FIRST,LAST (two IPv4 addresses)"
    return None if first <= last else f"{value!r}: FIRST is after LAST"


def opt(default, *, check: Callable | None = None, path: bool = False, secret: bool = False,
        doc: str = ""):
    return field(default=default, metadata={"check": check, "path": path, "secret": secret,
                                            "doc": doc})


@dataclass(frozen=True)
class ApplianceSection:
    station: str = opt("gcsguard", doc="station name, carried in checkpoints and exports")
    state_dir: str = opt("/var/lib/gcsguard", path=True)


@dataclass(frozen=True)
class ListsSection:
    block: tuple[str, ...] = opt(tuple(f"/etc/gcsguard/blocklists/{d}" for d in ("vendors", "sdk", "bypass")),
                                 path=True,
                                 doc="list files, or directories of *.list/*.txt/*.hosts/*.ips")
    allow: tuple[str, ...] = opt((), path=True, doc="allowlist files: they beat the blocklists")
    max_bad_lines: int = opt(100, check=non_negative,
                             doc="a file with more bad lines is rejected as a whole")


@dataclass(frozen=True)
class LogSection:
    directory: str = opt("/var/log/gcsguard", path=True)
    signing_key_file: str = opt("/etc/gcsguard/keys/log-signing.key", path=True,
                                doc="Ed25519 private key (root-only); create with gcsguard keygen")
    max_file_bytes: int = opt(64 << 20, check=positive)
    fsync: Literal["always", "interval", "never"] = opt("interval")
    fsync_interval: float = opt(1.0, check=positive, doc="seconds, with fsync = interval")
    checkpoint_interval: float = opt(300.0, check=positive, doc="seconds between signed checkpoints")
    retention_days: int = opt(365, check=non_negative, doc="0 keeps everything")


@dataclass(frozen=True)
class EventsSection:
    queue_size: int = opt(65536, check=positive, doc="per sink; a full queue drops and counts")
    socket: str = opt("/run/gcsguard/events.sock", path=True,
                      doc="local datagram socket for events from other processes")
    drop_report_interval: float = opt(60.0, check=positive)


@dataclass(frozen=True)
class MetricsSection:
    listen: tuple[str, ...] = opt(("127.0.0.1:9253",), check=host_port,
                                  doc="management addresses only; [] disables the endpoint")
    basic_auth_user: str = opt("")
    basic_auth_password: Secret | None = opt(None, secret=True)
    tls_cert_file: str = opt("", path=True, doc="serve /metrics over TLS with this certificate (PEM)")
    tls_key_file: str = opt("", path=True, doc="its private key (PEM), if not in the cert file")


@dataclass(frozen=True)
class DnsSection:
    listen: tuple[str, ...] = opt(("127.0.0.1:53",), check=host_port,
                                  doc="LAN addresses the resolver answers on")
    clients: tuple[str, ...] = opt(("127.0.0.0/8", "::1/128", "10.0.0.0/8", "fd00::/8"),
                                   check=networks, doc="client networks that get answers")
    refuse: Literal["refused", "drop"] = opt("refused", doc="what other clients get")
    upstreams: tuple[str, ...] = opt((), check=host_port,
                                     doc="host:port of the resolvers the appliance forwards to")
    upstream_timeout: float = opt(1.0, check=positive, doc="seconds per upstream attempt")
    sinkhole: Literal["nxdomain", "nodata", "null"] = opt("nxdomain")
    sinkhole_ttl: int = opt(60, check=non_negative)
    cache_size: int = opt(10_000, check=positive,
                          doc="answers kept (about 1 KB each: a flood of unique names fills it)")
    min_ttl: int = opt(0, check=non_negative)
    max_ttl: int = opt(86_400, check=positive)
    negative_max_ttl: int = opt(3_600, check=non_negative, doc="cap on NXDOMAIN/NODATA caching")
    serve_stale_for: int = opt(86_400, check=non_negative,
                               doc="seconds past expiry an answer may be served when upstreams fail")
    rate_limit: float = opt(200.0, check=non_negative, doc="queries per second per client; 0 = off")
    rate_burst: float = opt(400.0, check=positive)
    tcp_idle_timeout: float = opt(10.0, check=positive)
    tcp_max_connections: int = opt(256, check=positive)
    tcp_max_per_client: int = opt(16, check=positive, doc="TCP connections one client address may "
                                  "hold: no client can take them all")
    log_queries: Literal["all", "blocked", "off"] = opt("all", doc="which queries become events")


@dataclass(frozen=True)
class NetworkSection:
    lan_interfaces: tuple[str, ...] = opt(("lan0",), check=interface_names,
                                          doc="the controllers' LAN: Ethernet, Wi-Fi AP or a bridge")
    wan_interface: str = opt("wan0", check=interface_names, doc="the uplink")
    management_interfaces: tuple[str, ...] = opt((), check=interface_names,
                                                 doc="metrics are reachable from these")
    management_networks: tuple[str, ...] = opt((), check=networks,
                                               doc="and from these source networks")
    masquerade: bool = opt(True, doc="rewrite LAN sources to the WAN address (NAT)")
    ipv6: Literal["off", "on"] = opt("off", doc="off: every v6 egress is dropped and logged")
    serve_dhcp: bool = opt(False, doc="the appliance's DHCP server (dnsmasq) answers on the LAN")
    dhcp_range: str = opt("", check=lambda v: dhcp_range(v),
                          doc="FIRST,LAST IPv4 addresses handed out when serve_dhcp is on")
    dhcp_unknown_leases: int = opt(32, check=non_negative,
                                   doc="leases MACs not in [devices] inventory may hold at once, "
                                   "from the top of dhcp_range: a flood of new MACs takes these, "
                                   "never the inventory's addresses (0: unknown devices get none)")
    dhcp_lease_time: str = opt("12h", check=lambda v: None if v[:-1].isdigit() and v[-1] in "mhd"
                               else "must be a number of minutes, hours or days: 45m, 12h, 7d")
    serve_ntp: bool = opt(False, doc="the appliance's NTP server answers on the LAN")
    ntp_servers: tuple[str, ...] = opt((), check=networks, doc="where the appliance gets its time")
    appliance_egress: tuple[str, ...] = opt((), doc="what else the appliance itself may reach: "
                                            "'ADDRESS|NETWORK [tcp/PORTS] [udp/PORTS]'")


@dataclass(frozen=True)
class FirewallSection:
    enabled: bool = opt(True, doc="load and keep the ruleset; off only for a resolver-only test")
    mode: Literal["isolate", "vendor-block", "audit"] = opt("isolate")
    allow: tuple[str, ...] = opt((), doc="isolate: 'DESTINATION [tcp/PORTS] [udp/PORTS]' reachable "
                                 "(checked by the policy)")
    quic: bool = opt(False, doc="let UDP 443 through (QUIC); off closes that bypass")
    table: str = opt("gcsguard", check=interface_names, doc="gcsguard's own inet table")
    log_group: int = opt(1, check=lambda v: None if 0 < v < 65536 else "must be 1-65535")
    log_rate: int = opt(100, check=positive, doc="packets per second logged per reason")
    learn_min_interval: float = opt(300.0, check=positive,
                                    doc="seconds; a name is re-resolved at most this often")
    learn_keep_days: float = opt(30.0, check=positive,
                                 doc="a learned address no name produced for this long is removed")
    flow_progress_interval: float = opt(60.0, check=positive,
                                        doc="seconds between progress records of a long-lived flow")
    shared_addresses: Literal["block", "allow"] = opt(
        "block", doc="an address both a vendor name and an allowed name resolve to")


@dataclass(frozen=True)
class DevicesSection:
    inventory: tuple[str, ...] = opt((), doc="'MAC NAME [ROLE] [EXPECTED-VENDOR]' per known device")
    report_unknown: bool = opt(True, doc="a device.unknown event for a MAC not in the inventory")
    dns_memory: int = opt(200_000, check=positive,
                          doc="(device, address) pairs remembered from DNS answers, for attribution")
    dns_memory_seconds: float = opt(86_400.0, check=positive,
                                    doc="how long an answer attributes connections to its name")


def ports(values: tuple[str, ...]) -> str | None:
    for v in values:
        if not v.isdigit() or not 0 < int(v) < 65536:
            return f"{v!r} is not a TCP port"
    return None


@dataclass(frozen=True)
class GateSection:
    enabled: bool = opt(False, doc="redirect the LAN's TCP 80/443 (and extra_ports) to the gate")
    listen_port: int = opt(3130, check=lambda v: None if 0 < v < 65536 else "must be 1-65535")
    extra_ports: tuple[str, ...] = opt((), check=ports, doc="more TCP ports through the gate: 8080, 8883")
    uid: int = opt(64500, check=lambda v: None if v > 0 else "must not be root (0)",
                   doc="the gate's user id: the output chain applies the LAN's policy to it")
    confdir: str = opt("/var/lib/gcsguard/gate", path=True, doc="mitmproxy's own state (root-only)")
    max_connections_per_client: int = opt(256, check=positive, doc="open connections one LAN "
                                           "address may hold through the gate; beyond it refused")
    handshake_timeout: float = opt(5.0, check=positive, doc="seconds a connection may take to show "
                                   "a whole ClientHello or request line and headers")
    idle_timeout: float = opt(300.0, check=positive, doc="seconds an allowed connection may stay "
                              "without traffic either way before the gate closes it")


@dataclass(frozen=True)
class AlertsSection:
    rules_file: str = opt("", path=True, doc="TOML [[rule]] tables over events; empty: no appliance-side alerts")
    alertmanager_url: str = opt("", doc="http://host:9093: alerts posted to its API v2, and resolved")
    webhook_url: str = opt("", doc="JSON POST per alert, signed with webhook_secret (HMAC-SHA256)")
    webhook_secret: Secret | None = opt(None, secret=True)
    syslog: str = opt("", check=lambda v: host_port((v,)) if v else None,
                      doc="host:port of a syslog receiver (RFC 5424 over UDP)")
    queue_size: int = opt(1000, check=positive, doc="per notifier; beyond it, counted and dropped")


@dataclass(frozen=True)
class EvidenceSection:
    pcap_directory: str = opt("/var/log/gcsguard/pcap", path=True,
                              doc="raw bytes of every logged packet, in rotating pcap files")
    max_file_bytes: int = opt(16 << 20, check=positive)
    max_total_bytes: int = opt(1 << 30, check=positive, doc="oldest files are deleted beyond this")


@dataclass(frozen=True)
class ShipSection:
    collector: str = opt("", check=lambda v: address_port(v) if v else None,
                         doc="host:port of the central rsyslog (RELP): the log's files, checkpoints "
                         "included, are copied there by the station's rsyslog ('' = not shipped)")
    tls: bool = opt(False, doc="RELP over TLS: needs ca_file, cert_file and key_file")
    ca_file: str = opt("", path=True, doc="CA that signed the collector's certificate")
    cert_file: str = opt("", path=True, doc="this station's certificate (the collector checks it)")
    key_file: str = opt("", path=True, doc="this station's private key (root-only)")
    collector_name: str = opt("", doc="the name in the collector's certificate ('' = the collector's host)")
    work_directory: str = opt("", path=True, doc="where rsyslog writes its shipping statistics "
                              "('' = state_dir/ship)")


def addresses(values: tuple[str, ...]) -> str | None:
    import ipaddress
    for v in values:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            return f"{v!r} is not an IP address"
    return None


@dataclass(frozen=True)
class VerifySection:
    enabled: bool = opt(True, doc="the probe's interface is part of the LAN in the ruleset; "
                        "`gcsguard verify` (and its timer) may run")
    probe_netns: str = opt("gcsguard-probe", check=interface_names,
                           doc="network namespace the probe runs in, made and removed per run")
    probe_interface: str = opt("gcsprobe0", check=interface_names,
                               doc="the appliance's end of the probe's link: a LAN interface")
    probe_address: str = opt("10.255.255.2", check=lambda v: addresses((v,)),
                             doc="the probe's IPv4 (/32, routed on its link): must be in [dns] clients")
    probe_address6: str = opt("fd00:ffff:ffff::2", check=lambda v: addresses((v,)))
    vendor_name: str = opt("mydjiflight.dji.com", doc="a name the block lists sinkhole")
    cname_name: str = opt("", doc="a non-listed name whose CNAME chain reaches a vendor ('' skips)")
    vendor_address: str = opt("", check=lambda v: addresses((v,)) if v else None,
                              doc="a vendor address; '' takes one the appliance learned")
    foreign_resolver: str = opt("8.8.8.8", check=lambda v: addresses((v,)),
                                doc="a public resolver: plain DNS and DoT to it are tried")
    doh_address: str = opt("1.1.1.1", check=lambda v: addresses((v,)), doc="a DoH resolver's address")
    httpdns_address: str = opt("203.107.1.1", check=lambda v: addresses((v,)),
                               doc="an HTTPDNS service's address")
    ipv6_address: str = opt("2001:4860:4860::8888", check=lambda v: addresses((v,)),
                            doc="any IPv6 destination (with [network] ipv6 = off)")
    allowed_url: str = opt("", doc="the positive control: an https:// URL the policy allows. "
                           "Required: a run without it cannot pass")
    ca_file: str = opt("", path=True, doc="CA bundle for allowed_url ('' = the system's)")
    results_file: str = opt("", path=True, doc="the last run's results, for /metrics "
                            "('' = state_dir/verify.json)")
    event_timeout: float = opt(5.0, check=positive,
                               doc="seconds to wait for an attempt's record to reach the log")


@dataclass(frozen=True)
class Config:
    appliance: ApplianceSection = ApplianceSection()
    lists: ListsSection = ListsSection()
    log: LogSection = LogSection()
    events: EventsSection = EventsSection()
    metrics: MetricsSection = MetricsSection()
    dns: DnsSection = DnsSection()
    network: NetworkSection = NetworkSection()
    firewall: FirewallSection = FirewallSection()
    devices: DevicesSection = DevicesSection()
    evidence: EvidenceSection = EvidenceSection()
    gate: GateSection = GateSection()
    alerts: AlertsSection = AlertsSection()
    verify: VerifySection = VerifySection()
    ship: ShipSection = ShipSection()
    path: str = ""            # the file it came from
    sha256: str = ""          # of that file's bytes: which policy was in force


def cross_check(sections: dict) -> list[str]:
    """Rules that involve more than one key."""
    errors = []
    metrics = sections.get("metrics", MetricsSection())
    if bool(metrics.basic_auth_user) != bool(metrics.basic_auth_password):
        errors.append("[metrics] basic_auth_user and basic_auth_password_file/_env go together")
    network = sections.get("network", NetworkSection())
    if network.serve_dhcp and not network.dhcp_range:
        errors.append("[network] serve_dhcp needs dhcp_range (FIRST,LAST)")
    dns = sections.get("dns", DnsSection())
    if dns.min_ttl > dns.max_ttl:
        errors.append("[dns] min_ttl is greater than max_ttl")
    ship = sections.get("ship", ShipSection())
    if ship.tls and not (ship.ca_file and ship.cert_file and ship.key_file):
        errors.append("[ship] tls needs ca_file, cert_file and key_file")
    return errors
