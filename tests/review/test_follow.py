"""`review show --follow`: records as they are written, filtered, across a rotation, and
nothing written before it started (without --from)."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from queue import Empty, Queue

from appliance.events.event import Event
from appliance.review.follow import follow
from tests.evlog.helpers import make_writer


def record(clock, name, type="dns.query"):
    return Event(type=type, stamp=clock.stamp(), action="block", name=name, vendor="DJI")


def lines(proc, count, timeout=10.0):
    """The next `count` lines of the process's stdout, waiting at most `timeout` in all."""
    queue = Queue()
    threading.Thread(target=lambda: [queue.put(line) for line in proc.stdout], daemon=True).start()
    out, deadline = [], time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        try:
            out.append(queue.get(timeout=max(0.01, deadline - time.monotonic())))
        except Empty:
            break
    return out


def test_follow_prints_new_matching_records_across_rotation(tmp_path, keypair, clock, fake_time):
    w = make_writer(tmp_path, keypair[0], clock, max_file_bytes=1500)
    w.write([record(clock, "before.dji.com")])               # written before: not shown
    proc = subprocess.Popen([sys.executable, "-m", "appliance", "review", "show", str(tmp_path),
                             "--follow", "--format", "json", "--type", "dns."],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)                                      # it has found the end of the log
        for i in range(12):                                  # several files of 1500 bytes
            w.write([record(clock, f"n{i}.dji.com"), record(clock, f"x{i}", type="tcp.decision")])
        got = [json.loads(line) for line in lines(proc, 12)]
        assert [r["name"] for r in got] == [f"n{i}.dji.com" for i in range(12)]
        assert len(os.listdir(tmp_path)) > 4                 # it did follow rotations
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0, proc.stderr.read()
    w.close()


def test_follow_from_the_start_reads_the_history_then_stops_when_told(tmp_path, keypair, clock):
    w = make_writer(tmp_path, keypair[0], clock)
    w.write([record(clock, "a.dji.com"), record(clock, "b.dji.com")])
    seen = []
    for r in follow(str(tmp_path), from_start=True, poll=0.01, stop=lambda: len(seen) >= 2):
        seen.append(r["name"])
    assert seen == ["a.dji.com", "b.dji.com"]
    w.close()
