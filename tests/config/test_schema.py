from appliance.config.schema import Secret, host_port, non_negative, positive


def test_checks():
    assert positive(1) is None and positive(0)
    assert non_negative(0) is None and non_negative(-1)
    assert host_port(("127.0.0.1:9253", "[::1]:9253")) is None
    assert host_port(("127.0.0.1:0",)) and host_port(("127.0.0.1",)) and host_port((":80",))


def test_secret_never_shows_itself():
    s = Secret("hunter2", "/etc/gcsguard/pass")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert s.reveal() == "hunter2"
