"""The lab's appliance configuration, from the lab's settings (mode, allowlist, ...)."""
from __future__ import annotations

import json
import os
import shutil

from . import topology
from .internet import ALLOWED_V6, HTTPDNS, PUBLIC_RESOLVER, UPSTREAM_DNS, VENDOR
from .topology import LabError

REPO_LISTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "blocklists")
# The lab's own address lists: the stand-ins for a public resolver and an HTTPDNS service
# (the shipped lists name the real ones, which the lab never uses).
LAB_LISTS = {"lab-resolvers.ips": ("lab-public-resolver", "resolver", PUBLIC_RESOLVER),
             "lab-httpdns.ips": ("lab-httpdns", "httpdns", HTTPDNS)}
DEFAULT_ALLOW = ("www.allowed.example tcp/80,443",)
GATE_UID = 64500
# The lab's own alert rule: short window and cooldown, so an alert fires and resolves in seconds.
LAB_ALERT_RULES = """\
[[rule]]
name = "vendor-egress"
match = {type = ["egress.blocked", "tls.decision", "http.decision"], action = "block", vendor = "?*"}
group_by = ["device_name", "vendor"]
threshold = 1
window = 5
cooldown = 5
severity = "warning"
summary = "{device_name} tried to reach {vendor} ({reason})"

[[rule]]
name = "isolation-check-failed"
match = {type = ["verify.check"], action = "error"}
group_by = ["reason"]
threshold = 1
window = 5
cooldown = 5
severity = "critical"
summary = "isolation check {reason} failed"

[[rule]]
name = "evidence-at-risk"
match = {type = ["sink.restarted", "sink.failed", "log.loss", "log.rejected", "appliance.unclean_stop"]}
group_by = ["type"]
threshold = 1
window = 5
cooldown = 5
severity = "critical"
summary = "evidence at risk: {type} ({reason})"
"""


def shipped_lists(directory: str, fresh: bool = False) -> list[str]:
    """The shipped lists, copied into the lab's directory (again if `fresh`): the gate's user
    reads them there whatever the mode of the tree they come from (root's 0700 home)."""
    copy = os.path.join(directory, "blocklists")
    for candidate in (REPO_LISTS, "/etc/gcsguard/blocklists"):
        if os.path.isdir(os.path.join(candidate, "vendors")):
            if fresh or not os.path.isdir(copy):
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(candidate, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
            return [os.path.join(copy, d) for d in ("vendors", "sdk", "bypass")]
    raise LabError("the shipped blocklists are not found (looked in the source tree and /etc/gcsguard)")


def render_config(settings: dict, lists: list[str]) -> str:
    mgmt_appliance, mgmt_host = topology.mgmt_addresses(settings["mgmt_index"])
    return f"""\
[appliance]
station = "{settings['station']}"
state_dir = "state"
[lists]
block = {json.dumps(lists)}
[log]
directory = "log"
signing_key_file = "keys/log-signing.key"
checkpoint_interval = 10
fsync = "never"
[evidence]
pcap_directory = "log/pcap"
[devices]
inventory = ["{topology.CONTROLLER_MAC} ctl-03 controller DJI"]
[events]
socket = "events.sock"
drop_report_interval = 5
[metrics]
listen = ["{mgmt_appliance}:{topology.METRICS_PORT}"]
[dns]
listen = ["{topology.LAN_V4}:53", "[{topology.LAN_V6}]:53"]
clients = ["10.70.0.0/24", "{topology.PROBE_V4}/32", "fd00:70::/64"]
upstreams = ["{UPSTREAM_DNS}:53"]
min_ttl = 0
[network]
lan_interfaces = ["lan0"]
wan_interface = "wan0"
management_interfaces = ["mgmt0"]
ipv6 = "{settings['ipv6']}"
serve_dhcp = {str(settings['serve_dhcp']).lower()}
dhcp_range = "10.70.0.100,10.70.0.150"
dhcp_unknown_leases = {settings['dhcp_unknown_leases']}
appliance_egress = ["{mgmt_host} tcp/9093,9095"]
[firewall]
mode = "{settings['mode']}"
allow = {json.dumps(settings['allow'])}
quic = {str(settings['quic']).lower()}
log_rate = {settings['log_rate']}
learn_min_interval = 5.0
flow_progress_interval = {settings['flow_progress_interval']}
[alerts]
rules_file = "{'alert-rules.toml' if settings['alerts'] else ''}"
alertmanager_url = "http://{mgmt_host}:9093"
webhook_url = "http://{mgmt_host}:9095/"
[ship]
collector = "{settings['ship']}"
[verify]
# beacon.allowed.example's CNAME target is mydjiflight.dji.com, already learned: a
# verification run adds no address the other tests do not expect
probe_netns = "{settings['probe_netns']}"
probe_address = "{topology.PROBE_V4}"
vendor_name = "mydjiflight.dji.com"
cname_name = "beacon.allowed.example"
vendor_address = "{VENDOR}"
foreign_resolver = "{PUBLIC_RESOLVER}"
doh_address = "{PUBLIC_RESOLVER}"
httpdns_address = "{HTTPDNS}"
ipv6_address = "{ALLOWED_V6}"
allowed_url = "https://www.allowed.example/"
ca_file = "ca.pem"
event_timeout = 3.0
[gate]
enabled = {str(settings['gate']).lower()}
uid = {GATE_UID}
confdir = "gate"
"""
