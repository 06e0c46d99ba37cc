import pytest

from appliance.config.endpoint import Endpoint, host_of


def test_parse_and_show():
    assert Endpoint.parse("127.0.0.1:53") == ("127.0.0.1", 53)
    assert Endpoint.parse("[fd00:70::1]:53") == ("fd00:70::1", 53)
    assert str(Endpoint.parse("[::1]:9253")) == "[::1]:9253" and str(Endpoint("h", 1)) == "h:1"


@pytest.mark.parametrize("text", ["127.0.0.1", ":53", "h:0", "h:65536", "::1:53", "[::1:53", "h:x"])
def test_bad_endpoints(text):
    with pytest.raises(ValueError, match="not host:port"):
        Endpoint.parse(text)


def test_http_authorities():
    assert host_of("API.dji.com:80") == "api.dji.com" and host_of("api.dji.com") == "api.dji.com"
    assert host_of("[2001:db8::80]:80") == "2001:db8::80" and host_of("[bad") == ""
