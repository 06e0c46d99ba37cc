import os

from appliance.atomic import atomic_write


def test_replaces_whole_with_its_mode_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "applied-policy.json")
    atomic_write(path, '{"a": 1}')
    atomic_write(path, b'{"a": 2}', mode=0o644)
    assert open(path).read() == '{"a": 2}'
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == ["applied-policy.json"]
