import os
import subprocess
import sys

from appliance.cli import main

HEADER = "# vendor: DJI\n# category: vendor\n"


def test_check_passes_a_good_config(write_config, capsys):
    assert main(["check", "-c", write_config()]) == 0
    out = capsys.readouterr().out
    assert "OK:" in out and "dji.list" in out and "signing_key_file" in out


def test_check_reports_every_problem_with_file_line_or_key(write_config, tmp_path, capsys):
    bad = tmp_path / "bad.list"
    bad.write_text(HEADER + "good.example\nbad..example\n")
    nohdr = tmp_path / "nohdr.list"
    nohdr.write_text("x.example\n")
    path = write_config(block=[str(bad), str(nohdr)])
    os.unlink(tmp_path / "keys" / "log.key")
    assert main(["check", "-c", path, "-q"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:4: not a valid domain name" in err
    assert f"{nohdr}: header lacks # vendor" in err
    assert "[log] signing_key_file" in err and "gcsguard keygen" in err
    assert "FAILED" in err and "3 problem(s)" in err


def test_check_wants_upstreams_for_a_resolver(write_config, capsys):
    assert main(["check", "-c", write_config(dns='listen = ["127.0.0.1:5399"]')]) == 1
    assert "[dns] upstreams: empty" in capsys.readouterr().err


def test_check_invalid_config_exits_nonzero(tmp_path, capsys):
    p = tmp_path / "g.toml"
    p.write_text("[log]\nfsync = 1\n")
    assert main(["check", "-c", str(p)]) == 2
    assert "[log] fsync" in capsys.readouterr().err


def test_lists_test_verdicts_and_exit_codes(write_config, capsys):
    path = write_config()
    assert main(["lists", "test", "-c", path, "api.mydjiflight.dji.com"]) == 0
    out = capsys.readouterr().out
    assert "blocked" in out and "vendor=DJI" in out and "dji.list:" in out
    assert main(["lists", "test", "-c", path, "debian.org"]) == 1
    assert "not blocked" in capsys.readouterr().out
    assert main(["lists", "test", "-c", path, "1.1.1.1"]) == 0
    assert "category=resolver" in capsys.readouterr().out


def test_keygen_never_overwrites(tmp_path, capsys):
    key = str(tmp_path / "k.key")
    assert main(["keygen", "--key", key]) == 0
    assert oct(os.stat(key).st_mode & 0o777) == "0o600" and os.path.exists(tmp_path / "k.pub")
    before = open(key).read()
    assert main(["keygen", "--key", key]) == 2
    assert open(key).read() == before


def test_every_subcommand_has_help():
    for args in (["--help"], ["run", "--help"], ["dns", "--help"], ["check", "--help"], ["lists", "test", "--help"],
                 ["review", "--help"], ["review", "show", "--help"], ["review", "verify", "--help"],
                 ["keygen", "--help"]):
        r = subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True)
        assert r.returncode == 0 and "usage: gcsguard" in r.stdout, args


def test_lists_test_says_what_the_resolver_does_in_the_mode(write_config, capsys):
    isolate = write_config(firewall='enabled = true\nmode = "isolate"\nallow = ["www.allowed.example"]')
    assert main(["lists", "test", "-c", isolate, "data.any.example"]) == 1
    assert "the resolver, in isolate: block (not-allowed)" in capsys.readouterr().out
    main(["lists", "test", "-c", isolate, "cdn.www.allowed.example"])
    assert "the resolver, in isolate: allow (allowlisted)" in capsys.readouterr().out


def test_lists_test_gives_no_verdict_on_lists_that_did_not_load(write_config, tmp_path, capsys):
    path = write_config(block=[str(tmp_path / "no-such-dir")])
    assert main(["lists", "test", "-c", path, "mydjiflight.dji.com"]) == 2
    assert "cannot say: not every list loaded" in capsys.readouterr().err
    assert main(["lists", "test", "-c", write_config(), "mydjiflight.dji.com"]) == 0   # control


def test_every_command_answering_from_lists_refuses_when_one_did_not_load(write_config, tmp_path,
                                                                          capsys):
    for command in (["lists", "ip", "198.51.100.10"], ["firewall", "show"]):
        assert main([*command, "-c", write_config(block=[str(tmp_path / "no-such-dir")])]) == 2
        err = capsys.readouterr().err
        assert "cannot say: not every list loaded" in err and "no-such-dir" in err, command
        assert main([*command, "-c", write_config()]) in (0, 1), command        # control
        capsys.readouterr()


def test_the_resolver_alone_needs_no_network_role_and_loads_no_rules(tmp_path, scratch_netns):
    """`gcsguard dns` with the ruleset on in its config (the default), in an empty namespace:
    it answers, and the namespace has no ruleset (it refused to start for want of lan0)."""
    import subprocess
    import sys
    import time

    from tests.conftest import config_file, in_netns
    in_netns(scratch_netns, "ip", "link", "set", "lo", "up")
    config = config_file(tmp_path, dns='listen = ["127.0.0.1:5399"]\nupstreams = ["127.0.0.1:9"]',
                         firewall='mode = "vendor-block"')
    proc = subprocess.Popen(["ip", "netns", "exec", scratch_netns, sys.executable, "-m", "appliance",
                             "dns", "-c", config], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        answered = ""
        for _ in range(50):
            answered = in_netns(scratch_netns, "dig", "+time=1", "+tries=1", "-p", "5399",
                                "@127.0.0.1", "mydjiflight.dji.com", check=False).stdout
            if "NXDOMAIN" in answered or proc.poll() is not None:
                break
            time.sleep(0.2)
        assert "NXDOMAIN" in answered, proc.poll() and proc.stdout.read().decode()
        assert in_netns(scratch_netns, "nft", "list", "ruleset").stdout.strip() == ""
    finally:
        proc.terminate()
        proc.wait(timeout=10)
