"""The lab: a controller LAN, the appliance and a simulated internet, in network namespaces.

    ctl (controller)            appl (gcsguard)                 inet (simulated internet)
    eth0 10.70.0.23  ---- lan0 10.70.0.1         wan0 192.0.2.130 ---- up0 192.0.2.129
         fd00:70::23           fd00:70::1             2001:db8:ffff::2     2001:db8:ffff::1
                               mgmt0 10.71.0.1 ---- mgmt: eth0 10.71.0.2   servers on lo:
                                                                          192.0.2.53, 198.51.100.x,
                                                                          203.0.113.x, 2001:db8::x

The internet side uses documentation addresses only; the LAN 10.x and fd00::. Rules
are loaded only in `appl`; nothing is ever loaded into the host's namespace. Every
namespace and process the lab makes is recorded in `lab.json` and removed by `down`.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field

from .internet import ADDRESSES

LAN_V4, LAN_V6 = "10.70.0.1", "fd00:70::1"
CONTROLLER_V4, CONTROLLER_V6 = "10.70.0.23", "fd00:70::23"
CONTROLLER_MAC = "00:00:5e:00:53:23"      # RFC 7042's documentation range, a fixed identity
PROBE_V4 = "10.70.255.2"                  # gcsguard verify's probe (its own netns, made per run)
MGMT_APPLIANCE, MGMT_HOST = "10.71.0.1", "10.71.0.2"     # station 0's; a fleet's station k: 10.71.k.x
WAN_V4, WAN_GW_V4, WAN_V6, WAN_GW_V6 = "192.0.2.130", "192.0.2.129", "2001:db8:ffff::2", "2001:db8:ffff::1"
METRICS_PORT = 9253

# Short conntrack timeouts in the appliance, so tests never wait minutes for entries to expire.
CONNTRACK_SYSCTLS = {"net.netfilter.nf_conntrack_udp_timeout": 3,
                     "net.netfilter.nf_conntrack_udp_timeout_stream": 5,
                     "net.netfilter.nf_conntrack_tcp_timeout_time_wait": 2,
                     "net.netfilter.nf_conntrack_tcp_timeout_close_wait": 5,
                     "net.netfilter.nf_conntrack_tcp_timeout_fin_wait": 5,
                     "net.netfilter.nf_conntrack_tcp_timeout_syn_sent": 5,
                     "net.netfilter.nf_conntrack_acct": 1,
                     # as the deployment's sysctl.d: room for bursts on the event socket
                     "net.unix.max_dgram_qlen": 1024}


class LabError(Exception):
    pass


@dataclass
class Namespaces:
    prefix: str
    ctl: str = ""
    appl: str = ""
    inet: str = ""
    mgmt: str = ""

    def __post_init__(self) -> None:
        for role in ("ctl", "appl", "inet", "mgmt"):
            setattr(self, role, f"{self.prefix}-{role}")

    def all(self) -> list[str]:
        return [self.ctl, self.appl, self.inet, self.mgmt]

    @property
    def probe(self) -> str:
        """Made and removed by each `gcsguard verify` run in the appliance; teardown checks."""
        return f"{self.prefix}-probe"


@dataclass
class LabState:
    """What `down` must remove, written before anything is created."""
    prefix: str
    directory: str
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: str) -> "LabState":
        try:
            with open(os.path.join(directory, "lab.json")) as f:
                return cls(**json.load(f))
        except FileNotFoundError:
            raise LabError(f"{directory}: no lab here (lab.json missing)") from None

    def save(self) -> None:
        with open(os.path.join(self.directory, "lab.json"), "w") as f:
            json.dump(asdict(self), f)


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if check and result.returncode:
        raise LabError(f"{' '.join(cmd)}: {result.stderr.strip()}")
    return result


def ns_exec(ns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


def sysctl(ns: str, values: dict[str, int]) -> None:
    args = [f"{k}={v}" for k, v in values.items()]
    result = subprocess.run(ns_exec(ns, "sysctl", "-q", "-w", *args), capture_output=True, text=True)
    if result.returncode:
        raise LabError(f"sysctl in {ns}: {result.stderr.strip()}")


def mgmt_addresses(index: int) -> tuple[str, str]:
    """(appliance, management host) on station `index`'s management network."""
    return f"10.71.{index}.1", f"10.71.{index}.2"


def build(n: Namespaces, index: int = 0) -> None:
    """Namespaces, links, addresses and routes; raises LabError (the caller tears down).
    `index` numbers a fleet's stations: only their management networks differ."""
    mgmt_appliance, mgmt_host = mgmt_addresses(index)
    for ns in n.all():
        ip("netns", "add", ns)
        ip("link", "set", "lo", "up", ns=ns)
        # IPv6 addresses survive a link going down (as IPv4 ones do): tests flap links
        sysctl(ns, {"net.ipv6.conf.all.keep_addr_on_down": 1,
                    "net.ipv6.conf.default.keep_addr_on_down": 1})
    for a_ns, a_if, b_ns, b_if in ((n.appl, "lan0", n.ctl, "eth0"), (n.appl, "wan0", n.inet, "up0"),
                                   (n.appl, "mgmt0", n.mgmt, "eth0")):
        ip("link", "add", a_if, "netns", a_ns, "type", "veth", "peer", "name", b_if, "netns", b_ns)
        if b_ns == n.ctl:
            ip("link", "set", b_if, "address", CONTROLLER_MAC, ns=b_ns)
        ip("link", "set", a_if, "up", ns=a_ns)
        ip("link", "set", b_if, "up", ns=b_ns)
    addresses = [(n.ctl, "eth0", f"{CONTROLLER_V4}/24"), (n.ctl, "eth0", f"{CONTROLLER_V6}/64"),
                 (n.appl, "lan0", f"{LAN_V4}/24"), (n.appl, "lan0", f"{LAN_V6}/64"),
                 (n.appl, "wan0", f"{WAN_V4}/25"), (n.appl, "wan0", f"{WAN_V6}/64"),
                 (n.appl, "mgmt0", f"{mgmt_appliance}/24"), (n.mgmt, "eth0", f"{mgmt_host}/24"),
                 (n.inet, "up0", f"{WAN_GW_V4}/25"), (n.inet, "up0", f"{WAN_GW_V6}/64")]
    addresses += [(n.inet, "lo", f"{a}/{128 if ':' in a else 32}") for a in ADDRESSES]
    for ns, dev, address in addresses:
        ip("addr", "add", address, "dev", dev, *(["nodad"] if ":" in address else []), ns=ns)
    for ns, gw in ((n.ctl, LAN_V4), (n.ctl, LAN_V6), (n.appl, WAN_GW_V4), (n.appl, WAN_GW_V6)):
        ip(*(["-6"] if ":" in gw else []), "route", "add", "default", "via", gw, ns=ns)
    # The internet can route back to the LAN: with masquerade on nothing uses it, but once the
    # firewall is opened (a test's positive control) un-NATed packets must still get answers.
    ip("route", "add", "10.70.0.0/24", "via", WAN_V4, ns=n.inet)
    ip("-6", "route", "add", "fd00:70::/64", "via", WAN_V6, ns=n.inet)
    # `ip netns exec` shows the controller this resolv.conf: it uses the appliance, like a
    # DHCP client would be told to.
    os.makedirs(f"/etc/netns/{n.ctl}", exist_ok=True)
    with open(f"/etc/netns/{n.ctl}/resolv.conf", "w") as f:
        f.write(f"nameserver {LAN_V4}\noptions timeout:2 attempts:1\n")
    sysctl(n.appl, {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1})
    # conntrack's sysctls exist once the module is loaded; loading our table does that, so
    # a placeholder ct rule in a scratch table of the lab's own namespace comes first.
    subprocess.run(ns_exec(n.appl, "nft", "add table inet lab_ct; add chain inet lab_ct c; "
                                          "add rule inet lab_ct c ct state new; delete table inet lab_ct"),
                   check=True)
    sysctl(n.appl, CONNTRACK_SYSCTLS)


def _gone(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid      # our child: reap it
    except ChildProcessError:                             # not ours (lab up ran in another process)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def stop(state: LabState, name: str, sig: int = signal.SIGTERM) -> str | None:
    """Stop one lab process (its whole process group) and forget it; what went wrong, if anything."""
    pid = state.pids.pop(name, None)
    state.save()
    if pid is None:
        return None
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return None
    for _ in range(50):
        if _gone(pid):
            return None
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return f"{name} (pid {pid}) needed SIGKILL"


def wait_ready(state: LabState, name: str, process: subprocess.Popen, ready, timeout: float = 20.0) -> None:
    """Until `ready()`; a LabError with the tail of NAME.out if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabError(f"{name} exited ({process.returncode}):\n{_tail(state, name)}")
        if ready():
            return
        time.sleep(0.1)
    raise LabError(f"{name} not ready after {timeout} s:\n{_tail(state, name)}")


def _tail(state: LabState, name: str) -> str:
    try:
        with open(os.path.join(state.directory, f"{name}.out"), errors="replace") as f:
            return f.read()[-3000:]
    except FileNotFoundError:
        return ""


def teardown(state: LabState) -> list[str]:
    """Stop the lab's processes (by pid, whole process groups) and delete its namespaces."""
    problems = [problem for name in list(state.pids) if (problem := stop(state, name))]
    for ns in [*Namespaces(state.prefix).all(), Namespaces(state.prefix).probe]:
        if os.path.isdir(f"/etc/netns/{ns}"):
            shutil.rmtree(f"/etc/netns/{ns}")
        result = ip("netns", "del", ns, check=False)
        if result.returncode and "No such file" not in result.stderr:
            problems.append(f"netns {ns}: {result.stderr.strip()}")
    return problems


def start(state: LabState, name: str, ns: str, *cmd: str) -> subprocess.Popen:
    """A lab process in its own process group, output to DIR/NAME.out, recorded for `down`."""
    out = open(os.path.join(state.directory, f"{name}.out"), "ab")
    process = subprocess.Popen(ns_exec(ns, *cmd), stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True, cwd=state.directory)
    state.pids[name] = process.pid
    state.save()
    return process
