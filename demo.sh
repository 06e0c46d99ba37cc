#!/usr/bin/env bash
# The README's first command, until the lab (`gcsguard lab run`) exists: a real run of the
# foundation on this machine, touching nothing outside a scratch directory and loopback.
#   - validates a config and the shipped vendor/SDK/bypass lists (gcsguard check)
#   - asks for verdicts on vendor, SDK, DoH/HTTPDNS names and resolver addresses
#   - runs the appliance with its DNS resolver in front of a simulated upstream (the lab's
#     zone server, documentation addresses only), and queries it with dig: vendor names,
#     a vendor hidden behind a CNAME, a DoH resolver name, the Firefox canary, an allowed
#     name; feeds it events over its local socket (as the TLS gate will), reloads it with
#     SIGHUP, reads its Prometheus metrics, stops it
#   - reviews the tamper-evident log, verifies it against the public key, then tampers
#     with a copy and shows verification naming the broken record.
set -euo pipefail
cd "$(dirname "$0")"
.ci/setup
G=.venv/bin/gcsguard
PY=.venv/bin/python
work=$(mktemp -d /tmp/gcsguard-demo.XXXXXX)
pid=""; zone_pid=""
cleanup() {
    for p in $pid $zone_pid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done; true
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); dns_port=$(free_port); zone_port=$(free_port)
$G keygen --key "$work/keys/log-signing.key" >/dev/null
cat > "$work/gcsguard.toml" <<TOML
[appliance]
station = "demo-station"
state_dir = "state"
[lists]
block = ["$PWD/blocklists/vendors", "$PWD/blocklists/sdk", "$PWD/blocklists/bypass"]
[log]
directory = "log"
signing_key_file = "keys/log-signing.key"
checkpoint_interval = 2
[events]
socket = "events.sock"
[metrics]
listen = ["127.0.0.1:$port"]
[firewall]
enabled = false
[dns]
listen = ["127.0.0.1:$dns_port"]
upstreams = ["127.0.0.1:$zone_port"]
TOML

say "gcsguard check: the config and every list"
$G check -c "$work/gcsguard.toml" | tail -n 12

say "gcsguard lists test: verdicts with vendor, category, list file and line"
for n in mydjiflight.dji.com flysafe-api.dji.com android.bugly.qq.com events.mapbox.com \
         dns.google httpdns.baidu.com 8.8.8.8 203.107.1.33 debian.org; do
    $G lists test -c "$work/gcsguard.toml" "$n" || true
done

say "gcsguard run: the appliance and its resolver, in front of a simulated upstream"
$PY -m appliance.lab.zone --listen "127.0.0.1:$zone_port" &
zone_pid=$!
$G run -c "$work/gcsguard.toml" > "$work/daemon.out" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.2; done
ask() { printf '%-32s %-5s -> ' "$1" "${2:-A}"
        dig @127.0.0.1 -p "$dns_port" +tries=1 +time=2 "$1" "${2:-A}" \
          | awk '/status:/{gsub(",","",$6); s=$6} /^[^;]/ && $4 ~ /^(A|AAAA|CNAME)$/{a=a" "$NF} END{print s a}'; }
ask www.allowed.example              # allowed: resolved through the upstream
ask mydjiflight.dji.com              # DJI flight-log API: sinkholed
ask MyDjiFlight.DJI.com AAAA         # any case, any type
ask telemetry.allowed.example        # innocent name, CNAME chain into api.dji.com: sinkholed
ask hardcoded.allowed.example        # not listed: resolved
ask android.bugly.qq.com             # crash-report SDK: sinkholed
ask dns.google                       # a DoH resolver: sinkholed
ask use-application-dns.net          # Firefox canary: NXDOMAIN turns its DoH off
$PY - "$work/events.sock" <<'PYEOF'
import sys
from appliance.events.clock import Clock
from appliance.events.event import Event
from appliance.events.socket import EventSender
sender, clock = EventSender(sys.argv[1]), Clock()
attempts = [("mac:02:00:00:00:00:03", "ctl-03", "mydjiflight.dji.com", "DJI", "block"),
            ("mac:02:00:00:00:00:03", "ctl-03", "android.bugly.qq.com", "Bugly", "block"),
            ("mac:02:00:00:00:00:04", "ctl-04", "dns.google", "public-resolver", "block"),
            ("mac:02:00:00:00:00:04", "ctl-04", "maps.example.org", "", "allow")]
for device, name, host, vendor, action in attempts:
    sender.send(Event(type="tls.attempt", stamp=clock.stamp(), action=action, source="demo",
                      device_id=device, device_name=name, device_ip="10.77.1.23", name=host,
                      vendor=vendor, reason="vendor-list" if vendor else ""))
print(f"sent {sender.sent} events, {sender.unsent} could not be sent")
PYEOF
kill -HUP "$pid"; sleep 1
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^gcsguard_(dns_queries_total|events_total|log_records|config_reloads)' || true
kill -TERM "$pid"; wait "$pid" || true; pid=""

say "gcsguard review: the log, as an auditor reads it offline"
$G review "$work/log"
$G review "$work/log" --summary vendor

say "gcsguard review verify: the hash chain and the signed checkpoints"
$G review verify "$work/log" --pubkey "$work/keys/log-signing.pub"

say "Tampering with a copy: deleting the DJI record"
cp -r "$work/log" "$work/tampered"
f=$(ls "$work"/tampered/events-*.jsonl | head -n 1)
grep -v mydjiflight "$f" > "$f.new" && mv "$f.new" "$f"
$G review verify "$work/tampered" --pubkey "$work/keys/log-signing.pub" || echo "(exit $?: tampering detected, as it must be)"

echo; echo "Everything is in $work (remove it when done)."
