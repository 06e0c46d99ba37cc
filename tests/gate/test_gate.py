"""The gate in the lab, with real curl and openssl: what passes, what is cut, and that nothing
reached the vendor. The simulated internet's own record decides."""
import os
import subprocess
import signal
import sys
import time

from appliance.lab.internet import ALLOWED, HARDCODED, UNNAMED, VENDOR
from appliance.lab.topology import ns_exec
from tests.network.test_links import wait_for


def curl(lab, *args) -> str:
    return lab.run("ctl", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
                   "--cacert", lab.pki["ca"], *args).stdout


def decision(lab, after, type_):
    return [e for e in lab.events(after) if e["type"] == type_]


def test_sni_and_address_decisions_and_the_vendor_saw_nothing(lab):
    assert lab.reload(mode="vendor-block")
    after, start = lab.last_n(), time.time()
    assert curl(lab, "https://www.allowed.example/") == "200"                  # positive control
    cases = [("vendor SNI, vendor address", "mydjiflight.dji.com", VENDOR, "sni-list"),
             ("vendor SNI, other address", "mydjiflight.dji.com", ALLOWED, "sni-list"),
             ("other SNI, vendor address", "www.allowed.example", VENDOR, "vendor-address")]
    for _, name, address, _ in cases:
        assert curl(lab, "--resolve", f"{name}:443:{address}", f"https://{name}/") == "000"
    assert curl(lab, "-k", f"https://{VENDOR}/") == "000"                       # no SNI at all
    assert wait_for(lambda: len([e for e in decision(lab, after, "tls.decision") if e["action"] == "block"]) == 4)
    blocked = [e for e in decision(lab, after, "tls.decision") if e["action"] == "block"]
    assert [e["reason"] for e in blocked] == [c[3] for c in cases] + ["vendor-address"]
    assert all(e["device_name"] == "ctl-03" for e in blocked)
    hits = lab.hits(after=start)
    assert not [h for h in hits if h["addr"] == VENDOR]
    assert [h["sni"] for h in hits if h["addr"] == ALLOWED] == ["www.allowed.example"]


HELLO = r"""
import socket, ssl, sys, time
from tests.helpers import with_extension
address, name, ca, *how = sys.argv[1:]
flags = dict(h.partition("=")[::2] for h in how)


ctx = ssl.create_default_context(cafile=ca)
if "tls12" in flags:                     # the certificate travels in the clear: readable below
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
if "sni" in flags:                       # our own server_name extension, however malformed
    ctx.check_hostname = False
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname=None if "sni" in flags else name)
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    hello = outgoing.read()
if "ech" in flags:                       # a GREASE ECH extension, as Chrome sends by default
    hello = with_extension(hello, 0xFE0D, b"\x00\x00\x01\x00\x01\x07\x00\x20" + b"\x11" * 32 + b"\x00\x10" + b"\x22" * 16)
if "sni" in flags:
    hello = with_extension(hello, 0, bytes.fromhex(flags["sni"]))
sock = socket.create_connection((address, 443), timeout=3)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
if "seg1" in flags:                      # one byte per segment (a DPI-evasion split)
    for byte in hello:
        sock.send(bytes([byte]))
        time.sleep(0.002)
elif "split" in flags:                   # two segments, 0.3 s apart
    sock.sendall(hello[:60])
    time.sleep(0.3)
    sock.sendall(hello[60:])
else:
    sock.sendall(hello)
modified = "ech" in flags or "sni" in flags
received = b""
try:
    while data := sock.recv(65536):
        received += data
        if modified:
            if b"gcsguard lab server" in received:
                print("certificate")
                break
            continue
        incoming.write(data)
        try:
            tls.do_handshake()
            sock.sendall(outgoing.read())
            print("verified")
            break
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
    else:
        print("closed")
except (ConnectionResetError, socket.timeout):
    print("closed")
"""


def hello(lab, address, name, *how):
    out = lab.run("ctl", sys.executable, "-c", HELLO, address, name, lab.pki["ca"], *how)
    return out.stdout.strip() or out.stderr.strip()[-300:]


def sni_list(*names: bytes) -> str:
    entries = b"".join(b"\x00" + len(n).to_bytes(2, "big") + n for n in names)
    return (len(entries).to_bytes(2, "big") + entries).hex()


def test_a_clienthello_in_pieces_is_decided_all_the_same(lab):
    """A ClientHello in two segments 0.3 s apart: nothing is decided or relayed until it is
    whole, then it is decided like any other."""
    assert lab.reload(mode="vendor-block")
    after, start = lab.last_n(), time.time()
    for name, outcome in (("www.allowed.example", "verified"), ("mydjiflight.dji.com", "closed")):
        assert hello(lab, ALLOWED, name, "split") == outcome
    assert wait_for(lambda: len(decision(lab, after, "tls.decision")) == 2)
    assert [(e["action"], e["reason"]) for e in decision(lab, after, "tls.decision")] == \
        [("allow", "sni-allowed"), ("block", "sni-list")]
    assert wait_for(lambda: [h["sni"] for h in lab.hits(after=start) if h["addr"] == ALLOWED]
                    == ["www.allowed.example"])


def test_allowed_tls_is_the_real_certificate(lab):
    out = lab.run("ctl", "timeout", "5", "openssl", "s_client", "-brief", "-connect", f"{ALLOWED}:443",
                  "-servername", "www.allowed.example", "-CAfile", lab.pki["ca"], "-verify_return_error")
    text = out.stdout + out.stderr
    assert "Verification: OK" in text and "gcsguard lab server" in text   # not mitmproxy's CA


def test_plain_http_vendor_host_and_httpdns_get_a_403_without_upstream(lab):
    assert lab.reload(mode="vendor-block")
    start = time.time()
    vendor_host = lab.run("ctl", "curl", "-s", "-m", "2", "-H", "Host: mydjiflight.dji.com",
                          f"http://{ALLOWED}/")
    assert vendor_host.stdout.startswith("blocked by gcsguard: host-list mydjiflight.dji.com")
    httpdns = lab.run("ctl", "curl", "-s", "-m", "2", f"http://{ALLOWED}/resolve?name=api.dji.com")
    assert "httpdns-request" in httpdns.stdout
    assert curl(lab, "http://www.allowed.example/") == "200"                    # positive control
    assert [h["service"] for h in lab.hits(after=start) if h["addr"] == ALLOWED] == ["http"]


def test_isolate_holds_through_the_gate(lab):
    assert lab.reload(mode="isolate", allow=["www.allowed.example tcp/443"])
    try:
        start = time.time()
        assert curl(lab, "https://www.allowed.example/") == "200"
        assert curl(lab, "https://hardcoded.allowed.example/") == "000"
        assert not [h for h in lab.hits(after=start) if h["addr"] == HARDCODED]
    finally:
        assert lab.reload(allow=["www.allowed.example tcp/80,443"])


def test_the_output_chain_applies_the_lan_policy_to_the_gates_user(lab):
    """Even if the gate let something through, its own connections meet the LAN's policy."""
    assert lab.reload(mode="vendor-block")
    start = time.time()

    def as_gate(url):
        return lab.run("appl", "setpriv", "--reuid=64500", "--regid=0", "--clear-groups", "curl",
                       "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2", "-k", url).stdout
    assert as_gate(f"https://{ALLOWED}/") == "200"                               # positive control
    assert as_gate(f"https://{VENDOR}/") == "000"
    assert lab.reload(mode="isolate")
    assert as_gate(f"https://{ALLOWED}/") == "200"          # allowlisted (learned from DNS)
    assert as_gate(f"https://{HARDCODED}/") == "000"        # not on the allowlist
    assert not [h for h in lab.hits(after=start) if h["addr"] in (VENDOR, HARDCODED)]
    blocked = [e for e in lab.events() if e["type"] == "egress.blocked" and e["details"].get("from")]
    assert blocked and blocked[-1]["reason"] == "not-allowed" and not blocked[-1].get("device_id")


def test_gate_down_means_redirected_connections_fail_and_says_so(lab):
    assert curl(lab, "https://www.allowed.example/") == "200"
    assert lab.metric("gcsguard_gate_listening") == 1
    lab.stop_gate(signal.SIGKILL)
    try:
        start = time.time()
        assert curl(lab, "https://www.allowed.example/") == "000"              # fail closed
        assert not [h for h in lab.hits(after=start) if h["addr"] == ALLOWED]
        assert lab.metric("gcsguard_gate_listening") == 0                     # GcsguardGateDown
    finally:
        lab.start_gate()
    assert curl(lab, "https://www.allowed.example/") == "200"
    assert lab.metric("gcsguard_gate_listening") == 1


def test_with_the_daemon_down_the_gate_still_enforces(lab):
    os.kill(lab.state.pids["appliance"], signal.SIGTERM)
    lab.appliance.wait(timeout=20)
    try:
        start = time.time()
        assert curl(lab, "--resolve", f"mydjiflight.dji.com:443:{ALLOWED}",
                    "https://mydjiflight.dji.com/") == "000"
        assert curl(lab, "--resolve", f"www.allowed.example:443:{ALLOWED}",
                    "https://www.allowed.example/") == "200"
        assert [h["sni"] for h in lab.hits(after=start) if h["addr"] == ALLOWED] == ["www.allowed.example"]
        assert wait_for(lambda: "gate events not sent" in lab._read("gate.out"))
    finally:
        lab.start_appliance()


def test_evasive_clienthellos_are_refused_and_the_server_sees_no_connection(lab):
    """GREASE ECH, 1-byte segments and malformed SNIs, with vendor names, to an address on no
    list: refused, and the server there never gets a connection. The same hellos with the
    allowed name reach it and get its real certificate (the controls)."""
    assert lab.reload(mode="vendor-block")
    after = lab.last_n()
    vendor, allowed = "mydjiflight.dji.com", "www.allowed.example"
    cases = [("ech", ("ech", "tls12")), ("1-byte segments", ("seg1",))]
    bad_snis = {"two names": sni_list(b"www.allowed.example", vendor.encode()),
                "a NUL": sni_list(b"mydjiflight\x00.dji.com"), "non-ASCII": sni_list("mydjiflíght.dji.com".encode()),
                "a 64-byte label": sni_list(b"m" * 64 + b".dji.com")}
    for label, how in cases:
        start = time.time()
        assert hello(lab, UNNAMED, vendor, *how) == "closed", label
        assert not [h for h in lab.hits(after=start, hellos=True) if h["addr"] == UNNAMED], label
        assert hello(lab, UNNAMED, allowed, *how) in ("certificate", "verified"), label  # control
        assert [h for h in lab.hits(after=start, hellos=True) if h["addr"] == UNNAMED], label
    start = time.time()
    for label, sni in bad_snis.items():
        assert hello(lab, UNNAMED, allowed, f"sni={sni}", "tls12") == "closed", label
    assert not [h for h in lab.hits(after=start, hellos=True) if h["addr"] == UNNAMED]
    assert hello(lab, UNNAMED, allowed, f"sni={sni_list(allowed.encode())}", "tls12") == "certificate"
    assert wait_for(lambda: len(decision(lab, after, "tls.decision")) == 4 + len(bad_snis) + 1)
    refused = [(e["reason"], e["details"]["ech"]) for e in decision(lab, after, "tls.decision")
               if e["action"] == "block"]
    assert refused == [("sni-list", True), ("sni-list", False)] + [("bad-sni", False)] * len(bad_snis)


def test_httpdns_by_its_shape_whatever_the_host(lab):
    """The real HTTPDNS forms (../shared/reference/vendor-endpoints.md §6) to an address on
    no list: 403 with the name asked in the record, and nothing reaches the server."""
    assert lab.reload(mode="vendor-block")
    after, start = lab.last_n(), time.time()
    forms = ["/139450/d?host=mydjiflight.dji.com", "/d?host=mydjiflight.dji.com",
             "/v2/0/resolve?dn=mydjiflight.dji.com", "/resolve?name=mydjiflight.dji.com&type=A",
             "/multi_dns_resolve?dn=www.allowed.example,mydjiflight.dji.com"]
    for path in forms:
        assert curl(lab, f"http://{UNNAMED}{path}") == "403", path
    assert not [h for h in lab.hits(after=start) if h["addr"] == UNNAMED]
    assert curl(lab, f"http://{UNNAMED}/index.html?name=flight42") == "200"    # positive control
    assert wait_for(lambda: len(decision(lab, after, "http.decision")) == len(forms) + 1)
    refused = [e for e in decision(lab, after, "http.decision") if e["action"] == "block"]
    assert {e["reason"] for e in refused} == {"httpdns-request"}
    assert [e["name"] for e in refused] == ["mydjiflight.dji.com"] * 4 + ["www.allowed.example"]


STALLED = r"""
import socket, sys, time
sock = socket.create_connection((sys.argv[1], 443), timeout=10)
sock.sendall(b"\x16\x03")                 # the first bytes of a ClientHello, and nothing more
start = time.monotonic()
try:
    closed = sock.recv(1) == b""
except ConnectionResetError:
    closed = True
print("closed" if closed else "data", round(time.monotonic() - start))
"""


def test_a_clienthello_that_never_completes_is_closed_and_recorded(lab):
    assert lab.reload(mode="vendor-block")
    after, start = lab.last_n(), time.time()
    out = lab.run("ctl", sys.executable, "-c", STALLED, UNNAMED, timeout=20).stdout.split()
    assert out[0] == "closed" and 4 <= int(out[1]) <= 8, out          # the deadline, not ours
    assert wait_for(lambda: [(e["action"], e["reason"]) for e in decision(lab, after, "tls.decision")]
                    == [("block", "hello-incomplete")])
    assert not [h for h in lab.hits(after=start, hellos=True) if h["addr"] == UNNAMED]


RAW_HTTP = r"""
import socket, sys
sock = socket.create_connection((sys.argv[1], 80), timeout=5)
sock.sendall(bytes.fromhex(sys.argv[2]))
data = b""
while chunk := sock.recv(4096):
    data += chunk
print(data.split(b"\r\n")[0].decode())
"""


def test_undecodable_requests_are_decided_enforced_and_recorded_escaped(lab):
    """Bytes that are not UTF-8 in the path or the Host: refused where the policy says so
    (the 403 comes before the record, so recording cannot undo it), and each decision is
    recorded with the bytes escaped. An allowed host with such a path is the control."""
    assert lab.reload(mode="vendor-block")
    after, start = lab.last_n(), time.time()
    cases = [(b"/ok\xff", b"www.allowed.example", "200", "allow", "host-allowed"),
             (b"/\xff\xfe", b"mydjiflight.dji.com", "403", "block", "host-list"),
             (b"/", b"mydji\xffflight.dji.com", "403", "block", "bad-host")]
    for path, host, status, _, _ in cases:
        request = b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n"
        out = lab.run("ctl", sys.executable, "-c", RAW_HTTP, UNNAMED, request.hex()).stdout
        assert out.split()[1] == status, (path, host, out)
    assert wait_for(lambda: len(decision(lab, after, "http.decision")) == 3)
    records = decision(lab, after, "http.decision")
    assert [(e["action"], e["reason"]) for e in records] == [c[3:] for c in cases]
    assert [e["details"]["path"] for e in records] == ["/ok\\xff", "/\\xff\\xfe", "/"]
    assert records[2]["details"]["host"] == "mydji\\xffflight.dji.com"
    assert len([h for h in lab.hits(after=start) if h["addr"] == UNNAMED]) == 1   # the control only


FLOOD = r"""
import socket, sys, time
sockets, refused = [], 0
for i in range(int(sys.argv[2])):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((sys.argv[1], 443))
        sockets.append(s)
    except OSError:
        refused += 1
time.sleep(1.0)
closed_early = 0
for s in sockets:
    s.setblocking(False)
    try:
        closed_early += s.recv(1) == b""
    except BlockingIOError:
        pass
    except OSError:
        closed_early += 1
time.sleep(float(sys.argv[3]))
closed_late = 0
for s in sockets:
    try:
        closed_late += s.recv(1) == b""
    except BlockingIOError:
        pass
    except OSError:
        closed_late += 1
print(len(sockets), refused, closed_early, closed_late)
"""


def test_one_hosts_flood_leaves_other_clients_working(lab):
    """1,100 silent connections from one LAN host: beyond the per-client cap (256) refused,
    the rest closed at the handshake timeout (recorded), and meanwhile another LAN host's
    allowed HTTPS works. Its allowed request is the positive control."""
    assert lab.reload(mode="vendor-block")
    other = "10.70.0.77"
    assert lab.run("ctl", "ip", "addr", "add", f"{other}/24", "dev", "eth0").returncode == 0
    after = lab.last_n()
    try:
        flood = subprocess.Popen(ns_exec(lab.ns.ctl, sys.executable, "-c", FLOOD, UNNAMED, "1100", "6"),
                                 stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)                                          # the flood holds its connections
        for _ in range(3):
            assert curl(lab, "--interface", other, "https://www.allowed.example/") == "200"
        opened, refused, closed_early, closed_late = map(int, flood.communicate(timeout=60)[0].split())
        assert opened + refused == 1100
        assert closed_early > 0                                    # over the cap: closed at once
        assert closed_late == opened                               # the rest: the handshake timeout
        capped = lambda: [e for e in lab.events(after) if e["type"] == "gate.client_capped"]
        silent = lambda: [e for e in decision(lab, after, "tcp.decision")
                          if e["reason"] == "handshake-timeout"]
        # every connection was refused by the cap (summarized every 10 s) or closed at the
        # handshake timeout (recorded each); the gate takes them slower than they come, so
        # some are admitted as the first ones time out
        assert wait_for(lambda: sum(e["details"]["refused"] for e in capped()) + len(silent())
                        == opened, timeout=30)
        assert sum(e["details"]["refused"] for e in capped()) > 0          # the cap did bite
        assert all(list(e["details"]["top"]) == ["10.70.0.23"] for e in capped())
    finally:
        lab.run("ctl", "ip", "addr", "del", f"{other}/24", "dev", "eth0")
