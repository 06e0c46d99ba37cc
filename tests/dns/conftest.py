"""A lab zone server (the simulated internet's DNS) and resolvers in front of it."""
import asyncio
import textwrap
import threading
import time

import pytest

from appliance.lab.zone import ZoneServer
from tests.conftest import SHIPPED_LISTS, config_file, free_port
from tests.helpers import Daemon, dig, stop_all

TEST_IPS = "# vendor: TestVendor\n# category: vendor\n# type: ip\n198.51.100.250\n"


@pytest.fixture(scope="session")
def zone():
    """The zone server runs in its own thread and loop; tests flip `mode` and read `queries`."""
    loop = asyncio.new_event_loop()
    server = ZoneServer("127.0.0.1", free_port())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
    yield server
    loop.call_soon_threadsafe(server.close)
    time.sleep(0.1)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


class Resolver:
    def __init__(self, daemon: Daemon, port: int) -> None:
        self.daemon, self.port = daemon, port

    def dig(self, *args, **kwargs):
        return dig(self.port, *args, **kwargs)


def start_resolver(directory, zone, started: list, dns: str = "", command: str = "dns") -> Resolver:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "test.ips").write_text(TEST_IPS)
    port = free_port()
    dns = textwrap.dedent(dns).rstrip("\n") + "\n"
    if "upstreams" not in dns:
        dns += f'upstreams = ["127.0.0.1:{zone.port}"]\n'
    dns_section = f'listen = ["127.0.0.1:{port}"]\n' + dns
    config = config_file(directory, block=[*SHIPPED_LISTS, str(directory / "test.ips")], dns=dns_section)
    daemon = Daemon(config, command)
    started.append(daemon)
    daemon.wait_ready()
    deadline = time.monotonic() + 10
    while dig(port, "www.allowed.example").status == "NO ANSWER":
        assert time.monotonic() < deadline, "resolver did not answer"
        time.sleep(0.1)
    return Resolver(daemon, port)


@pytest.fixture(scope="module")
def resolver(zone, tmp_path_factory):
    """One resolver with the default config, shared by a module's tests."""
    started: list = []
    yield start_resolver(tmp_path_factory.mktemp("resolver"), zone, started)
    stop_all(started)


@pytest.fixture
def make_resolver(zone, tmp_path):
    """A resolver with its own [dns] settings, for one test."""
    started: list = []
    count = iter(range(100))
    yield lambda dns="", command="dns": start_resolver(tmp_path / f"r{next(count)}", zone, started, dns, command)
    stop_all(started)
