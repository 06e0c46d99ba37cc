"""gcsguard's TLS/HTTP gate as a mitmproxy addon.

    mitmdump --mode transparent --set connection_strategy=lazy \
             -s addons/egress_guard.py --set gcsguard_config=/etc/gcsguard/gcsguard.toml

`gcsguard gate` runs the same addon embedded, with the options set from the config.
The logic lives in the package (appliance/gate/) so it shares the lists and their
matcher with the resolver and the ruleset.
"""
from appliance.gate.addon import EgressGuard

addons = [EgressGuard()]
