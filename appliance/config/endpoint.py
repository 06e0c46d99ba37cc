"""HOST:PORT as the config writes it (IPv6 in brackets: `[::1]:53`), parsed in one place."""
from __future__ import annotations

from typing import NamedTuple


class Endpoint(NamedTuple):
    host: str            # without brackets
    port: int

    @classmethod
    def parse(cls, text: str) -> "Endpoint":
        """ValueError when `text` is not HOST:PORT with a port of 1-65535."""
        host, sep, port = text.rpartition(":")
        if host.startswith("["):
            if not host.endswith("]"):
                raise ValueError(f"{text!r} is not host:port (IPv6 as [::1]:9253)")
            host = host[1:-1]
        elif ":" in host:
            raise ValueError(f"{text!r} is not host:port (IPv6 as [::1]:9253)")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{text!r} is not host:port (IPv6 as [::1]:9253)")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def host_of(authority: str) -> str:
    """The host of an HTTP authority or Host header ('h', 'h:80', '[v6]:80'), lower-case."""
    if authority.startswith("["):
        return authority[1:authority.find("]")].lower() if "]" in authority else ""
    return authority.rpartition(":")[0].lower() if authority.count(":") == 1 else authority.lower()
