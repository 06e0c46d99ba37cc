from appliance.cli import main

from .test_query import make_log


def test_review_dir_is_short_for_show(tmp_path, keypair, clock, fake_time, capsys):
    make_log(tmp_path, keypair[0], clock, fake_time)
    assert main(["review", str(tmp_path), "--vendor", "DJI", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "time,device,type,action,name,vendor,reason" and len(out) == 3
    assert main(["review", "show", str(tmp_path), "--summary", "vendor"]) == 0
    assert "DJI" in capsys.readouterr().out


def test_a_missing_or_empty_log_is_an_error_never_a_verdict(tmp_path, capsys):
    import pytest

    from appliance.cli import main
    (tmp_path / "empty").mkdir()
    for command in (["verify", "--pubkey", "k.pub"], ["show"], ["devices"]):
        for path, why in ((tmp_path / "nope", "no such directory"), (tmp_path / "empty", "holds no gcsguard log")):
            with pytest.raises(SystemExit) as e:
                main(["review", *command[:1], str(path), *command[1:]])
            assert e.value.code == 2 and why in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["review", "report", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")])
    assert e.value.code == 2 and "no such directory" in capsys.readouterr().err
