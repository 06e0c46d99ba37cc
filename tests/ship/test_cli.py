"""`gcsguard ship`: a config that cannot be shipped is refused with the file and the reason;
the files written are what rsyslog takes."""
import subprocess
import sys


def gcsguard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True)


def test_a_config_without_a_collector_or_with_a_bad_one_is_refused_by_name(tmp_path):
    config = tmp_path / "gcsguard.toml"
    config.write_text('[appliance]\nstation = "s1"\n')
    out = gcsguard("ship", "station-config", "-c", str(config))
    assert out.returncode == 2 and str(config) in out.stderr and "collector is empty" in out.stderr
    config.write_text('[ship]\ncollector = "collector.example:2514"\n')
    out = gcsguard("ship", "station-config", "-c", str(config))
    assert out.returncode == 2 and "[ship] collector" in out.stderr and "not an IP address" in out.stderr
    config.write_text('[appliance]\nstation = "s 1"\n[ship]\ncollector = "192.0.2.1:2514"\n')
    out = gcsguard("ship", "station-config", "-c", str(config))
    assert out.returncode == 2 and "station 's 1'" in out.stderr


def test_the_files_are_written_whole_with_the_work_directory(tmp_path):
    config = tmp_path / "gcsguard.toml"
    config.write_text(f'[appliance]\nstation = "s1"\nstate_dir = "{tmp_path}/state"\n'
                      '[ship]\ncollector = "192.0.2.1:2514"\n')
    out = gcsguard("ship", "station-config", "-c", str(config), "--out", str(tmp_path / "st.conf"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "state" / "ship").is_dir()
    assert 'target="192.0.2.1" port="2514"' in (tmp_path / "st.conf").read_text()
    out = gcsguard("ship", "collector-config", "--listen", "192.0.2.1:2514", "--dir", str(tmp_path / "copies"),
                   "--forward", "127.0.0.1:6514")
    assert out.returncode == 0 and f'string="{tmp_path}/copies/%HOSTNAME' in out.stdout
    assert 'tcp_framing="octet-counted"' in out.stdout
