"""rsyslog configurations that copy every station's signed log to a central collector.

The station's rsyslog reads the log directory (imfile: events-*.jsonl and checkpoints.jsonl)
and sends each line unchanged as the MSG of an RFC 5424 message whose HOSTNAME is the
station and whose MSGID is the file's name, over RELP (each message acknowledged; after an
outage the unacknowledged ones are sent again). The collector writes MSG back into
DIR/<station>/<file>, so its copy has the station's bytes and names and `gcsguard review
verify` checks it with the station's public key. The authenticity of a copy comes from that
signature, not from the transport: a station that names itself after another can only
spoil that other's copy, which then fails to verify.

There is no queue between imfile and RELP: the log files are the queue. While the collector
is away the action retries and imfile waits, reading on once it answers, so nothing is
dropped and lines leave in file order. After a crash rsyslog reads again from its last saved
offset (every 100 lines), sending up to 100 lines a second time; the verifier drops a line
it already holds (same n, same bytes) as a duplicate delivery. What a crash can lose from
the copy: the lines in flight (at most RELP_WINDOW) if imfile saved an offset past them;
`review verify --copy` names them, and the station still has them. (A disk queue, tried first,
lost its backlog to a torn queue index when rsyslog was killed, and shipped 10x slower.)
"""
from __future__ import annotations

import os
import re

from ..config.endpoint import Endpoint
from ..config.schema import Config

STATION_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
STATS_FILE = "stats.json"
ACTION = "gcsguard-ship"
MAX_MESSAGE = "1m"        # a record's line travels whole; a longer one would be cut (and fail verify)
# Lines sent before the collector acknowledges the first: what a killed rsyslog can lose
# (imfile may have saved an offset past lines still in flight); 16 keeps a WAN link busy.
RELP_WINDOW = 16


def work_directory(config: Config) -> str:
    return config.ship.work_directory or os.path.join(config.appliance.state_dir, "ship")


def _quote(value: str) -> str:
    if '"' in value or "\\" in value or "\n" in value:
        raise ValueError(f"{value!r}: quotes, backslashes and newlines cannot go into rsyslog's config")
    return f'"{value}"'


def station_config(config: Config, stats_interval: int = 10) -> str:
    """/etc/rsyslog.d/60-gcsguard-ship.conf for this station (imfile keeps its file offsets
    in rsyslog's own work directory, /var/spool/rsyslog on Debian)."""
    ship = config.ship
    if not ship.collector:
        raise ValueError("[ship] collector is empty: nothing to ship to")
    host, port = Endpoint.parse(ship.collector)
    if not STATION_NAME.fullmatch(config.appliance.station):
        raise ValueError(f"[appliance] station {config.appliance.station!r}: the collector's "
                         "directory and syslog's HOSTNAME need 1-64 of A-Z a-z 0-9 . _ -")
    work = work_directory(config)
    tls = ""
    if ship.tls:
        tls = (f'\n         tls="on" tls.authMode="name" tls.permittedPeer={_quote(ship.collector_name or host)}'
               f'\n         tls.caCert={_quote(ship.ca_file)} tls.myCert={_quote(ship.cert_file)}'
               f' tls.myPrivKey={_quote(ship.key_file)}')
    q = _quote
    return f"""\
# gcsguard: the signed log, copied to the collector (written by `gcsguard ship station-config`
# from {config.path or 'the config'}; write it again after changing [ship] or [log] directory).
global(maxMessageSize="{MAX_MESSAGE}")
module(load="imfile" mode="inotify")
module(load="omrelp")
module(load="impstats" interval="{stats_interval}" format="json" resetCounters="off"
       log.syslog="off" log.file={q(os.path.join(work, STATS_FILE))})

template(name="gcsguard-ship" type="string"
         string="<%PRI%>1 %TIMESTAMP:::date-rfc3339% {config.appliance.station} gcsguard - %$!metadata!filename:R,ERE,0,DFLT:[^/]+$--end% - %msg%")

input(type="imfile" file={q(os.path.join(config.log.directory, "*.jsonl"))} tag="gcsguard"
      facility="local0" severity="info" addMetadata="on" persistStateInterval="100" maxSubmitAtOnce="1"
      ruleset="gcsguard-ship")

# No queue: the log files are the queue (imfile waits while the collector is away).
ruleset(name="gcsguard-ship" queue.type="Direct") {{
  action(type="omrelp" name="{ACTION}" target={q(host)} port="{port}" template="gcsguard-ship" windowSize="{RELP_WINDOW}"{tls}
         queue.type="Direct" action.resumeRetryCount="-1" action.resumeInterval="5")
}}
"""


def collector_config(listen: str, directory: str, tls: dict[str, str] | None = None,
                     forward: str = "") -> str:
    """The central rsyslog's drop-in: RELP in, one directory per station, files as named;
    and, with `forward` (host:port), the same stream as RFC 5424 octet-counted over TCP to
    another engine (Vector, Fluent Bit, Promtail, Logstash) from its own memory queue, so
    an engine that is down or slow never holds up the copy (what it misses is counted in
    rsyslog's impstats as that action's discarded lines)."""
    host, port = Endpoint.parse(listen)
    onward = ""
    if forward:
        fhost, fport = Endpoint.parse(forward)
        onward = f"""
  action(type="omfwd" name="gcsguard-forward" target={_quote(fhost)} port="{fport}" protocol="tcp"
         tcp_framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
         queue.type="LinkedList" queue.size="100000" queue.timeoutEnqueue="0"
         action.resumeRetryCount="-1" action.resumeInterval="5")"""
    input_tls = ""
    if tls:
        input_tls = (f' tls="on" tls.caCert={_quote(tls["ca_file"])} tls.myCert={_quote(tls["cert_file"])}'
                      f' tls.myPrivKey={_quote(tls["key_file"])} tls.authMode="certvalid"')
    q = _quote
    return f"""\
# gcsguard collector: every station's signed log and checkpoints, one directory per station,
# each line as the station wrote it (written by `gcsguard ship collector-config`).
global(maxMessageSize="{MAX_MESSAGE}")
module(load="imrelp")
input(type="imrelp" address={q(host)} port="{port}" ruleset="gcsguard-collect" maxDataSize="{MAX_MESSAGE}"{input_tls})

template(name="gcsguard-file" type="string"
         string="{directory.rstrip('/')}/%HOSTNAME:::secpath-replace%/%MSGID:::secpath-replace%")
template(name="gcsguard-line" type="string" string="%msg%\\n")

ruleset(name="gcsguard-collect") {{
  # only the log's own files: anything else a sender names is not written
  if re_match($msgid, "^(events-[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}\\\\.[0-9]{{3,}}|checkpoints)\\\\.jsonl\\$") then {{
    action(type="omfile" dynaFile="gcsguard-file" template="gcsguard-line" dynaFileCacheSize="256"
           dirCreateMode="0750" fileCreateMode="0640" flushOnTXEnd="on" asyncWriting="off"){onward}
  }}
  stop
}}
"""
