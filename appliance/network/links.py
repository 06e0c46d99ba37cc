"""The configured interfaces: validated at start, watched while running (pyroute2); the
LAN's neighbour table (IP -> MAC) feeds device identity.

The ruleset matches interfaces by name, and the DNS redirect and masquerade use
whatever address the kernel has at that moment, so no rule depends on an address:
a link or address change is recorded (event, `gcsguard_link_up`) and nothing has
to be re-applied. A configured interface that does not exist at start is a
configuration error: the daemon refuses to start, and the boot table stays.
"""
from __future__ import annotations

import ipaddress
from typing import Callable

from prometheus_client import CollectorRegistry, Gauge

from ..config import Config
from ..config.endpoint import Endpoint
from ..events.bus import EventBus


def roles(config: Config) -> dict[str, str]:
    net = config.network
    out = {name: "lan" for name in net.lan_interfaces}
    out[net.wan_interface] = "wan"
    out.update({name: "management" for name in net.management_interfaces})
    return out


def validate(config: Config, links: dict[str, str], addresses: set[str]) -> list[str]:
    """Problems with the configured interfaces and listen addresses, each naming the key.

    `links` maps interface name to operstate; `addresses` holds every local address.
    """
    net, problems = config.network, []
    known = ", ".join(sorted(links)) or "none"
    for key, names in (("lan_interfaces", net.lan_interfaces), ("wan_interface", (net.wan_interface,)),
                       ("management_interfaces", net.management_interfaces)):
        for name in names:
            if name not in links:
                problems.append(f"{config.path}: [network] {key}: {name!r} does not exist "
                                f"(interfaces here: {known})")
    for section, listen in (("dns", config.dns.listen), ("metrics", config.metrics.listen)):
        for entry in listen:
            host = Endpoint.parse(entry).host
            try:
                address = str(ipaddress.ip_address(host))
            except ValueError:
                continue
            if not ipaddress.ip_address(address).is_unspecified and address not in addresses:
                problems.append(f"{config.path}: [{section}] listen: {host} is not an address of "
                                "this machine")
    return problems


def read_links() -> tuple[dict[str, str], set[str], dict[int, str], list[tuple[int, str, str]]]:
    """(name -> operstate, every local address, index -> name, neighbours as
    (index, ip, mac)) of this namespace."""
    from pyroute2 import IPRoute
    with IPRoute() as ipr:
        dump = ipr.get_links()
        links = {l.get_attr("IFLA_IFNAME"): l.get_attr("IFLA_OPERSTATE") for l in dump}
        names = {l["index"]: l.get_attr("IFLA_IFNAME") for l in dump}
        addresses = {str(ipaddress.ip_address(a.get_attr("IFA_ADDRESS"))) for a in ipr.get_addr()}
        neighbours = [(n["ifindex"], n.get_attr("NDA_DST"), n.get_attr("NDA_LLADDR"))
                      for n in ipr.get_neighbours() if n.get_attr("NDA_LLADDR")]
    return links, addresses, names, neighbours


class LinkWatcher:
    def __init__(self, config: Config, bus: EventBus, registry: CollectorRegistry) -> None:
        self.roles, self.bus = roles(config), bus
        self.up = Gauge("gcsguard_link_up", "1 if a configured interface is up",
                        ["interface", "role"], registry=registry)
        self._names: dict[int, str] = {}
        self._state: dict[str, str] = {}
        self.local_addresses: set[str] = set()
        self.on_neighbour: Callable[[str, str], None] = lambda ip, mac: None   # LAN only

    def start(self, links: dict[str, str], addresses: set[str], names: dict[int, str],
              neighbours: list[tuple[int, str, str]]) -> None:
        self._names.update(names)
        self.local_addresses.update(addresses)
        for name in self.roles:
            self._set(name, links.get(name, "ABSENT"), announce=False)
        for index, ip, mac in neighbours:
            self._neighbour(index, ip, mac)

    def _neighbour(self, index: int, ip: str | None, mac: str | None) -> None:
        if ip and mac and self.roles.get(self._names.get(index, "")) == "lan":
            self.on_neighbour(ip, mac)

    def _set(self, name: str, state: str, announce: bool = True) -> None:
        self.up.labels(name, self.roles[name]).set(1 if state in ("UP", "UNKNOWN") else 0)
        previous, self._state[name] = self._state.get(name), state
        if announce and previous != state:
            up = state in ("UP", "UNKNOWN")
            self.bus.emit("link.up" if up else "link.down", action="info" if up else "error",
                          reason=self.roles[name], details={"interface": name, "state": state,
                                                           "was": previous})

    def handle(self, message) -> None:
        event, index = message["event"], message.get("index")
        if event in ("RTM_NEWLINK", "RTM_DELLINK"):
            name = message.get_attr("IFLA_IFNAME")
            self._names[index] = name
            if name in self.roles:
                self._set(name, "ABSENT" if event == "RTM_DELLINK" else message.get_attr("IFLA_OPERSTATE"))
        elif event == "RTM_NEWNEIGH":
            self._neighbour(message["ifindex"], message.get_attr("NDA_DST"),
                            message.get_attr("NDA_LLADDR"))
        elif event in ("RTM_NEWADDR", "RTM_DELADDR"):
            name = self._names.get(index) or message.get_attr("IFA_LABEL")
            address = message.get_attr("IFA_ADDRESS")
            if address:
                address = str(ipaddress.ip_address(address))
                (self.local_addresses.add if event == "RTM_NEWADDR" else
                 self.local_addresses.discard)(address)
            if name in self.roles:
                self.bus.emit("address.added" if event == "RTM_NEWADDR" else "address.removed",
                              reason=self.roles[name], details={
                                  "interface": name, "address": message.get_attr("IFA_ADDRESS"),
                                  "prefixlen": message["prefixlen"]})

    async def run(self, ipr_factory: Callable | None = None) -> None:
        from pyroute2 import AsyncIPRoute
        from pyroute2.netlink.rtnl import (
            RTMGRP_IPV4_IFADDR,
            RTMGRP_IPV6_IFADDR,
            RTMGRP_LINK,
            RTMGRP_NEIGH,
        )
        ipr = (ipr_factory or AsyncIPRoute)()
        await ipr.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_NEIGH)
        try:
            while True:
                async for message in ipr.get():
                    self.handle(message)
        finally:
            ipr.close()
