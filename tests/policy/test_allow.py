import ipaddress

import pytest

from appliance.policy.allow import AllowError, parse_allow


def test_address_network_and_name_entries():
    a = parse_allow("198.51.100.7 tcp/80,443 udp/123")
    assert a.network == ipaddress.ip_network("198.51.100.7/32") and a.name is None
    assert a.services == (("tcp", "80"), ("tcp", "443"), ("udp", "123"))
    n = parse_allow("Tiles.Maps.Example. tcp/8000-8100")
    assert n.name == "tiles.maps.example" and n.network is None
    assert n.services == (("tcp", "8000-8100"),)
    assert parse_allow("2001:db8::/48").services == ()          # no protocol: every port


@pytest.mark.parametrize("text, why", [
    ("", "empty"), ("localhost", "neither"), ("198.51.100.7 http/80", "tcp/PORTS"),
    ("198.51.100.7 tcp/0", "1-65535"), ("198.51.100.7 tcp/90-80", "increasing"),
    ("198.51.100.7 tcp/x", "not a port"), ("bad..name tcp/1", "neither")])
def test_bad_entries_say_why(text, why):
    with pytest.raises(AllowError, match=why):
        parse_allow(text)


def test_config_names_the_bad_entry(tmp_path):
    from appliance.config import ConfigError
    from appliance.policy import load_policy
    path = tmp_path / "c.toml"
    path.write_text('[firewall]\nallow = ["www.example.org tcp/443", "198.51.100.1 tcp/99999"]\n'
                    '[network]\nappliance_egress = ["alerts.example.org tcp/443"]\n')
    with pytest.raises(ConfigError) as e:
        load_policy(str(path))
    text = str(e.value)
    assert "[firewall] allow: '198.51.100.1 tcp/99999'" in text
    assert "[network] appliance_egress: 'alerts.example.org tcp/443': give an address" in text
