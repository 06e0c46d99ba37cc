"""The committed lists are exactly what the generator makes from the reference tables."""
import importlib.util
import os

import pytest

from tests.conftest import REPO

REFERENCE = os.path.join(REPO, "..", "shared", "reference")


def generator():
    spec = importlib.util.spec_from_file_location("generate", os.path.join(REPO, "blocklists", "generate.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not os.path.isdir(REFERENCE), reason="shared/reference is not beside this clone")
def test_committed_lists_match_the_reference():
    gen = generator()
    for (file, kind), lst in gen.collect(REFERENCE).items():
        path = os.path.join(REPO, "blocklists", file + (".ips" if kind == "ip" else ".list"))
        with open(path) as f:
            assert f.read() == gen.render(file, kind, lst), f"{path} is stale: run blocklists/generate.py"


def test_every_entry_cites_a_source():
    for group in ("vendors", "sdk", "bypass", "platform"):
        directory = os.path.join(REPO, "blocklists", group)
        for name in os.listdir(directory):
            previous = ""
            for line in open(os.path.join(directory, name)):
                if line.strip() and not line.startswith("#"):
                    assert previous.startswith("# ") and " -- http" in previous, f"{name}: {line}"
                previous = line


def test_endpoint_hosts():
    gen = generator()
    assert gen.host_of("https://dns.example/dns-query") == "dns.example"
    assert gen.host_of("tls://[2001:db8::1]:853") == "2001:db8::1"
    assert gen.host_of("192.0.2.1:5443") == "192.0.2.1"
    assert gen.host_of("quic://dns.example") == "dns.example"
