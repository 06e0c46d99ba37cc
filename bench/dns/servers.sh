    # --- added by gcsguard's bench/dns/run.sh (servers.sh) ---
    gcsguard_*|gcsguardbase_*)
      # gcsguard_<size>: query events off; gcsguard_log_<size>: every query logged (signed log);
      # gcsguardbase_<size>, gcsguardbase_log_<size>: the same at the revision BASE (run.sh)
      PORT=5305
      local lists="" logq="off"
      if [ "$n" != 0 ]; then lists="\"$DATA/gcsguard_blocklist_$n.list\""; fi
      case "$s" in gcsguard_log_*|gcsguardbase_log_*) logq="all";; esac
      mkdir -p "$d/keys"; rm -rf "$d/log"
      [ -f "$d/keys/k.key" ] || "$GCSGUARD" keygen --key "$d/keys/k.key" > /dev/null
      cat > "$d/gcsguard.toml" <<EOF2
[lists]
block = [$lists]
[log]
directory = "$d/log"
signing_key_file = "$d/keys/k.key"
[events]
socket = "$d/events.sock"
queue_size = 1000000
[metrics]
listen = []
[firewall]
# the resolver alone: no ruleset, no network role; the block lists are the policy
enabled = false
[dns]
listen = ["127.0.0.1:$PORT"]
upstreams = ["127.0.0.1:$UP_PORT"]
rate_limit = 0.0
cache_size = 10000
log_queries = "$logq"
EOF2
      case "$s" in
        gcsguardbase_*) CMD=(env PYTHONPATH="$BASE_TREE" "${GCSGUARD%/*}/python" -m appliance dns -c "$d/gcsguard.toml");;
        *) CMD=("$GCSGUARD" dns -c "$d/gcsguard.toml");;
      esac;;
    dnsmasq_log_*)
      # dnsmasq as dnsmasq_addr_<size>, with every query logged to a file
      PORT=5302
      { echo "port=$PORT"; echo "listen-address=127.0.0.1"; echo "bind-interfaces"
        echo "no-resolv"; echo "no-hosts"; echo "server=127.0.0.1#$UP_PORT"
        echo "cache-size=10000"; echo "log-queries"; echo "log-facility=$d/dnsmasq.log"
        echo "pid-file=$d/dnsmasq.pid"
        if [ "$n" != 0 ]; then echo "conf-file=$DATA/dnsmasq_address_$n.conf"; fi; } > "$d/dnsmasq.conf"
      CMD=(dnsmasq -k -C "$d/dnsmasq.conf");;
    unbound_log_*)
      # unbound as unbound_<size>, with every query logged to a file
      PORT=5303
      cat > "$d/unbound.conf" <<EOF2
server:
  interface: 127.0.0.1@$PORT
  port: $PORT
  outgoing-interface: 127.0.0.1
  access-control: 127.0.0.0/8 allow
  do-ip6: no
  do-not-query-localhost: no
  num-threads: 1
  username: ""
  chroot: ""
  directory: "$d"
  pidfile: "$d/unbound.pid"
  use-syslog: no
  logfile: "$d/unbound.log"
  log-queries: yes
  verbosity: 0
  module-config: "iterator"
  $inc
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$UP_PORT
remote-control:
  control-enable: no
EOF2
      CMD=(unbound -d -c "$d/unbound.conf");;
