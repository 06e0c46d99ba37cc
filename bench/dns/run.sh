#!/usr/bin/env bash
# bench/dns/run.sh - gcsguard's resolver side by side with dnsmasq and unbound, in one run.
#
# The peers' side is the reference set-up in ../shared/bench (peers_dns.sh: NSD as the loopback
# upstream, dnsmasq and unbound configs, data generation, CPU-per-query accounting, summarize.py).
# This runner copies that script into a scratch directory, adds server cases for gcsguard (and
# for dnsmasq and unbound with query logging on), and runs every server once per round, ROUNDS
# times, so the servers are interleaved A B C A B C. Results of all rounds are merged into one
# table (qps per run, ratio to dnsmasq, server CPU us per query, p50/p99 at a light load) and
# written to docs/benchmarks.md with versions, kernel and git revision.
#
#   bench/dns/run.sh                         # full run (about 25 min on 2 cores)
#   ROUNDS=1 DUR=2 SIZES=100000 SERVERS="dnsmasq_addr_100k gcsguard_100k" bench/dns/run.sh --no-doc
#   CASES_ONLY=blocked ...                   # only some cases (the suite's smoke run, tests/bench)
#   BASE=743866c SERVERS="dnsmasq_addr_100k gcsguard_100k gcsguardbase_100k" bench/dns/run.sh
#       # also the resolver at revision BASE (a git worktree, same venv): before/after in one run
#
# Everything stays on 127.0.0.1; every dnsperf run is bounded (-l); only processes started by
# the reference script are killed. Needs: dnsperf dnsmasq unbound nsd (apt), and .venv (.ci/setup).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SHARED=${SHARED_BENCH:-$REPO/../shared/bench}
GCSGUARD=${GCSGUARD:-$REPO/.venv/bin/gcsguard}
ROUNDS=${ROUNDS:-3}
export DUR=${DUR:-10} SIZES=${SIZES:-100000,1000000} UNCACHED_N=${UNCACHED_N:-2000000}
SERVERS=${SERVERS:-"dnsmasq_addr_100k unbound_100k gcsguard_100k dnsmasq_addr_1m unbound_1m gcsguard_1m dnsmasq_log_100k unbound_log_100k gcsguard_log_100k"}
WRITE_DOC=1; [ "${1:-}" = "--no-doc" ] && WRITE_DOC=0
WORK=${PERF_WORK:-$(mktemp -d /tmp/gcsguard-bench.XXXXXX)}
export PERF_WORK=$WORK
need="dnsperf nsd taskset"                       # NSD is the upstream of every case
[[ " $SERVERS " == *" dnsmasq_"* ]] && need+=" dnsmasq"
[[ " $SERVERS " == *" unbound_"* ]] && need+=" unbound"
for tool in $need; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install dnsperf dnsmasq unbound nsd" >&2; exit 2; }
done
[ -x "$GCSGUARD" ] || { echo "missing $GCSGUARD: run .ci/setup first" >&2; exit 2; }
[ -f "$SHARED/peers_dns.sh" ] || { echo "missing $SHARED/peers_dns.sh (shared/bench)" >&2; exit 2; }

# --- the reference script, with our server cases added before its 'unknown server' case ---
mkdir -p "$WORK/bin"
cp "$SHARED"/{peers_dns.sh,gen_data.py,probe.py,summarize.py} "$WORK/bin/"
anchor='    \*) log "unknown server $s"; return 1;;'
grep -q "^$anchor" "$WORK/bin/peers_dns.sh" || { echo "peers_dns.sh changed: no '$anchor' to extend" >&2; exit 2; }
python3 - "$WORK/bin/peers_dns.sh" "$HERE/servers.sh" <<'EOF'
import sys
script, extra = sys.argv[1], open(sys.argv[2]).read()
text = open(script).read()
anchor = '    *) log "unknown server $s"; return 1;;'
open(script, "w").write(text.replace(anchor, extra.rstrip("\n") + "\n" + anchor, 1))
EOF
export GCSGUARD
if [ -n "${BASE:-}" ]; then                     # the gcsguardbase_* servers run this revision
  export BASE_TREE=$WORK/base
  [ -d "$BASE_TREE" ] || git -C "$REPO" worktree add -q --detach "$BASE_TREE" "$BASE"
  trap 'git -C "$REPO" worktree remove --force "$BASE_TREE" 2>/dev/null || true' EXIT
fi

# --- data once (the reference script reuses it), plus our lists with their header ---
python3 "$WORK/bin/gen_data.py" "$WORK/data" --sizes "$SIZES" --uncached "$UNCACHED_N" --tags r1,r2 >&2
touch "$WORK/data/.done_${SIZES}_${UNCACHED_N}"
for n in ${SIZES//,/ }; do
  { echo "# vendor: Bench"; echo "# category: synthetic"; cat "$WORK/data/blocklist_$n.txt"; } \
    > "$WORK/data/gcsguard_blocklist_$n.list"
done

# --- rounds: every server once per round, the order rotated so no server always goes first ---
read -r -a all <<< "$SERVERS"
for ((round = 1; round <= ROUNDS; round++)); do
  order=("${all[@]:$(( (round - 1) % ${#all[@]} ))}" "${all[@]:0:$(( (round - 1) % ${#all[@]} ))}")
  echo "[bench] round $round/$ROUNDS: ${order[*]}" >&2
  RES="$WORK/round$round" RUNS=1 SERVERS="${order[*]}" bash "$WORK/bin/peers_dns.sh" > "$WORK/round$round.md"
done

# --- merge the rounds: run r1 of round k becomes run rk ---
merged=$WORK/merged; mkdir -p "$merged"; : > "$merged/cpu.tsv"; : > "$merged/meta.tsv"
for ((round = 1; round <= ROUNDS; round++)); do
  for f in "$WORK/round$round"/*.r1.txt; do cp "$f" "$merged/$(basename "${f%.r1.txt}").r$round.txt"; done
  awk -v r="r$round" 'BEGIN{FS=OFS="\t"} {$3=r; print}' "$WORK/round$round/cpu.tsv" >> "$merged/cpu.tsv"
  cat "$WORK/round$round/meta.tsv" >> "$merged/meta.tsv"
  cp "$WORK/round$round"/*.lat "$merged/" 2>/dev/null || true
done
table=$(python3 "$WORK/bin/summarize.py" "$merged" --ref dnsmasq_addr_100k)
medians=$(python3 "$HERE/medians.py" "$merged" --ref dnsmasq_addr_100k)

# --- logging-on figures count only if no event was dropped ---
drops=$(grep -ho '"type":"events.dropped"[^}]*"dropped_by_sink":{[^}]*}' "$WORK"/run/gcsguard_*/log/*.jsonl 2>/dev/null || true)
logged=$(cat "$WORK"/run/gcsguard_log_*/log/*.jsonl 2>/dev/null | grep -c '"type":"dns.query"' || true)

# --- peak RSS while the 1M list is reloaded (SIGHUP builds the new set beside the old) ---
reload=""
if [[ ",$SIZES," == *",1000000,"* ]]; then
  d=$WORK/run/gcsguard_1m
  if [ -f "$d/gcsguard.toml" ]; then
    "$GCSGUARD" dns -c "$d/gcsguard.toml" > "$d/reload.out" 2>&1 & pid=$!
    python3 "$WORK/bin/probe.py" --port 5305 --name "$(head -1 "$WORK/data/q_blocked.txt" | cut -d' ' -f1)" --timeout 120 >/dev/null
    before=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
    start=$(date +%s.%N); kill -HUP "$pid"
    for _ in $(seq 200); do grep -q "reload applied" "$d/reload.out" && break; sleep 0.05; done
    took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b-a}')
    peak=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    reload="| gcsguard_1m | RSS before reload $((before / 1024)) MB | peak during reload $((peak / 1024)) MB | reload applied within ${took} s |"
  fi
fi

versions="dnsmasq $(dnsmasq --version 2>/dev/null | head -1 | awk '{print $3}'), unbound $(unbound -V 2>/dev/null | awk '/^Version/{print $2}'), $(nsd -v 2>&1 | head -1), dnsperf $(dnsperf -h 2>&1 | awk '/^Version/{print $2}'), gcsguard $("$GCSGUARD" --version | awk '{print $2}') on Python $("${GCSGUARD%/*}/python" -c 'import platform; print(platform.python_version())')"
report="Run $(date -u +%Y-%m-%dT%H:%MZ), $ROUNDS interleaved rounds of ${DUR} s per case, server on CPU 1 and load on CPU 0 (taskset); kernel $(uname -r), $(uname -m), $(nproc) cores; git $(git -C "$REPO" rev-parse --short HEAD).
Versions: $versions.

Median and spread of the rounds:

$medians

All runs, CPU per query and light-load latency (the reference summarize.py):

$table

Query-logging runs (\`*_log_*\`): in its last round gcsguard wrote $logged dns.query events to its signed log; events.dropped records in that round: ${drops:-none}.
${reload:+
| server | before | peak | time |
|---|---|---|---|
$reload}"
echo "$report"
echo "[bench] raw results in $WORK" >&2
if [ "$WRITE_DOC" = 1 ]; then
  python3 - "$REPO/docs/benchmarks.md" "$report" <<'EOF'
import sys
path, text = sys.argv[1], sys.argv[2]
doc = open(path).read()
start, end = "<!-- dns:start -->", "<!-- dns:end -->"
before, rest = doc.split(start)
_, after = rest.split(end)
open(path, "w").write(f"{before}{start}\n{text}\n{end}{after}")
EOF
fi
