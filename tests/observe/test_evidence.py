"""pcap evidence files: rotation by size, a bounded total, extraction that checks each packet."""
import subprocess

from scapy.layers.inet import IP, UDP

from appliance.observe.evidence import PcapStore, extract, read_packets


def packet(i: int) -> bytes:
    return bytes(IP(src="10.70.0.23", dst="203.0.113.10") / UDP(sport=1000 + i, dport=853) / (b"p" * 200))


def test_rotation_budget_and_references(tmp_path):
    pruned, now = [], [1_795_000_000.0]

    def clock():
        now[0] += 1
        return now[0]
    store = PcapStore(str(tmp_path), max_file_bytes=1000, max_total_bytes=2500,
                      on_prune=pruned.extend, clock=clock)
    refs = [store.write(packet(i), 1_795_000_000.5 + i) for i in range(20)]
    store.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len({r["file"] for r in refs}) > 3 and pruned                # rotated, oldest deleted
    assert set(files) == {r["file"] for r in refs} - set(pruned)
    assert sum((tmp_path / f).stat().st_size for f in files) <= 2500 + 1000
    last = refs[-1]
    data, when = read_packets(str(tmp_path / last["file"]))[last["index"]]
    assert data == packet(19) and abs(when - (1_795_000_000.5 + 19)) < 1e-5
    shown = subprocess.run(["tcpdump", "-nr", str(tmp_path / last["file"])], capture_output=True, text=True)
    assert "10.70.0.23.1019 > 203.0.113.10.853" in shown.stdout


def test_extract_copies_verified_packets_and_names_missing_and_altered(tmp_path):
    store = PcapStore(str(tmp_path / "pcap"), 1 << 20, 1 << 30)
    refs = [store.write(packet(i)) for i in range(3)]
    store.close()
    wanted = [(r["file"], r["index"], r["sha256"]) for r in refs]
    report = extract(wanted + [(refs[0]["file"], 9, "00")], str(tmp_path / "pcap"), str(tmp_path / "out.pcap"))
    assert report == {"written": 3, "missing": [f"{refs[0]['file']}#9"], "altered": []}
    assert [d for d, _ in read_packets(str(tmp_path / "out.pcap"))] == [packet(i) for i in range(3)]
    path = tmp_path / "pcap" / refs[0]["file"]
    data = bytearray(path.read_bytes())
    data[-1] ^= 1                                               # the last packet's last byte
    path.write_bytes(bytes(data))
    report = extract(wanted, str(tmp_path / "pcap"), str(tmp_path / "out2.pcap"))
    assert report["altered"] == [f"{refs[2]['file']}#2"] and report["written"] == 2


def test_packets_are_on_disk_once_the_batch_is_flushed(tmp_path):
    store = PcapStore(str(tmp_path), 1 << 20, 1 << 30)
    refs = [store.write(packet(i)) for i in range(3)]
    store.flush()                                               # what the reader does per datagram
    assert [d for d, _ in read_packets(str(tmp_path / refs[0]["file"]))] == [packet(i) for i in range(3)]
    store.close()
