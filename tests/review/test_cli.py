from appliance.cli import main

from .test_query import make_log


def test_review_dir_is_short_for_show(tmp_path, keypair, clock, fake_time, capsys):
    make_log(tmp_path, keypair[0], clock, fake_time)
    assert main(["review", str(tmp_path), "--vendor", "DJI", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "time,device,type,action,name,vendor,reason" and len(out) == 3
    assert main(["review", "show", str(tmp_path), "--summary", "vendor"]) == 0
    assert "DJI" in capsys.readouterr().out


def test_a_missing_or_empty_log_is_an_error_never_a_verdict(tmp_path, keypair, clock, fake_time,
                                                           capsys):
    """Listing commands refuse the path (exit 2); verify and report say what they can: the
    log is UNVERIFIABLE, the claim cannot be made (exit 3). A real log: the positive control."""
    import pytest

    from appliance.cli import main
    from appliance.evlog import signing
    (tmp_path / "empty").mkdir()
    signing.generate_key(str(tmp_path / "k.key"), str(tmp_path / "k.pub"))
    pub, out = str(tmp_path / "k.pub"), str(tmp_path / "r.html")
    for path, why in ((tmp_path / "nope", "no such directory"), (tmp_path / "empty", "holds no gcsguard log")):
        for command in (["show"], ["devices"]):
            with pytest.raises(SystemExit) as e:
                main(["review", *command, str(path)])
            assert e.value.code == 2 and why in capsys.readouterr().err
        assert main(["review", "verify", str(path), "--pubkey", pub]) == 3
        assert "UNVERIFIABLE" in capsys.readouterr().out.splitlines()[-1]
        assert main(["review", "report", str(path), "--pubkey", pub, "--out", out]) == 3
        assert "The claim cannot be made" in capsys.readouterr().out
        assert "The claim cannot be made" in open(out).read()
    make_log(tmp_path / "log", keypair[0], clock, fake_time)
    assert main(["review", "verify", str(tmp_path / "log"), "--pubkey", str(tmp_path / "keys" / "log.pub")]) == 0
