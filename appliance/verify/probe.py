"""The probe: a network namespace linked to the appliance as one more LAN interface.

    probe netns                         appliance (this namespace)
    eth0 PROBE_MAC  ------- veth ------ probe_interface
         probe_address/32                    gateway/32 (the LAN's own address: the DNS and
         probe_address6/128                  gate redirects go to the interface's primary
         default via gateway, fe80::1        address, where the resolver listens), fe80::1

The ruleset counts the probe interface as LAN (firewall.render.lan_interfaces), so the
probe's packets take the controllers' path through every chain. Made for one run and
removed after it (deleting the namespace deletes the link).
"""
from __future__ import annotations

import ipaddress
import json
import subprocess

from ..config import Config
from ..config.endpoint import Endpoint
from ..observe.devices import PROBE_MAC

GATEWAY6 = "fe80::1"


class ProbeError(Exception):
    pass


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode:
        raise ProbeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def gateway(config: Config) -> str:
    """The address the LAN's clients are told to use: the resolver's first LAN IPv4
    address, else the first LAN interface's primary IPv4 address."""
    for listen in config.dns.listen:
        host = Endpoint.parse(listen).host
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            continue
        if address.version == 4 and not (address.is_loopback or address.is_unspecified):
            return host
    for name in config.network.lan_interfaces:
        out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", name],
                             capture_output=True, text=True).stdout
        for link in json.loads(out or "[]"):
            for a in link.get("addr_info", []):
                return a["local"]
    raise ProbeError("no LAN IPv4 address to give the probe as its gateway: set [dns] listen "
                     "to the LAN address")


class Probe:
    def __init__(self, config: Config) -> None:
        v = config.verify
        self.netns, self.interface = v.probe_netns, v.probe_interface
        self.address, self.address6 = v.probe_address, v.probe_address6
        self.gateway = gateway(config)

    def up(self) -> None:
        self.down()                                   # a previous run's leftovers
        ns, link = self.netns, self.interface
        _ip("netns", "add", ns)
        try:
            _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
            for args in (("-n", ns, "link", "set", "eth0", "address", PROBE_MAC),
                         ("-n", ns, "link", "set", "lo", "up"),
                         ("addr", "add", f"{self.gateway}/32", "dev", link),
                         ("addr", "add", f"{GATEWAY6}/64", "dev", link, "nodad"),
                         ("link", "set", link, "up"),
                         ("-n", ns, "addr", "add", f"{self.address}/32", "dev", "eth0"),
                         ("-n", ns, "addr", "add", f"{self.address6}/128", "dev", "eth0", "nodad"),
                         ("-n", ns, "link", "set", "eth0", "up"),
                         ("route", "replace", f"{self.address}/32", "dev", link),
                         ("-6", "route", "replace", f"{self.address6}/128", "dev", link),
                         ("-n", ns, "route", "add", self.gateway, "dev", "eth0"),
                         ("-n", ns, "route", "add", "default", "via", self.gateway, "dev", "eth0"),
                         ("-n", ns, "-6", "route", "add", "default", "via", GATEWAY6, "dev", "eth0")):
                _ip(*args)
        except ProbeError:
            self.down()
            raise

    def run(self, *command: str, timeout: float = 10.0) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["ip", "netns", "exec", self.netns, *command], capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
            return subprocess.CompletedProcess(e.cmd, 124, out, "timed out")

    def down(self) -> None:
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.interface], capture_output=True)
