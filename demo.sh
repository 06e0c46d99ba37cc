#!/usr/bin/env bash
# The README's first command, until the lab (`gcsguard lab run`) exists: a real run of the
# foundation on this machine, touching nothing outside a scratch directory and loopback.
#   - validates a config and the shipped vendor/SDK/bypass lists (gcsguard check)
#   - asks for verdicts on vendor, SDK, DoH/HTTPDNS names and resolver addresses
#   - runs the appliance, feeds it events over its local socket (as the TLS gate will),
#     reloads it with SIGHUP, reads its Prometheus metrics, stops it
#   - reviews the tamper-evident log, verifies it against the public key, then tampers
#     with a copy and shows verification naming the broken record.
set -euo pipefail
cd "$(dirname "$0")"
.ci/setup
G=.venv/bin/gcsguard
PY=.venv/bin/python
work=$(mktemp -d /tmp/gcsguard-demo.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; true; }
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
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
TOML

say "gcsguard check: the config and every list"
$G check -c "$work/gcsguard.toml" | tail -n 12

say "gcsguard lists test: verdicts with vendor, category, list file and line"
for n in mydjiflight.dji.com flysafe-api.dji.com android.bugly.qq.com events.mapbox.com \
         dns.google httpdns.baidu.com 8.8.8.8 203.107.1.33 debian.org; do
    $G lists test -c "$work/gcsguard.toml" "$n" || true
done

say "gcsguard run: the appliance, with events arriving on its local socket"
$G run -c "$work/gcsguard.toml" > "$work/daemon.out" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.2; done
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
curl -s "http://127.0.0.1:$port/metrics" | grep -E '^gcsguard_(events_total|log_records|config_reloads|list_entries\{.*dji)' || true
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
