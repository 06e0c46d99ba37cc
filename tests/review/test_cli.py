from appliance.cli import main

from .test_query import make_log


def test_review_dir_is_short_for_show(tmp_path, keypair, clock, fake_time, capsys):
    make_log(tmp_path, keypair[0], clock, fake_time)
    assert main(["review", str(tmp_path), "--vendor", "DJI", "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "time,device,type,action,name,vendor,reason" and len(out) == 3
    assert main(["review", "show", str(tmp_path), "--summary", "vendor"]) == 0
    assert "DJI" in capsys.readouterr().out
