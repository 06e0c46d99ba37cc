"""dnsmasq's dhcp-script: `lease SOCKET add|old|del MAC IP [HOSTNAME]` -> a dhcp.lease event.

Runs once per lease change; sends one datagram to the daemon and exits, never
waiting (if the daemon is down the change is in dnsmasq's lease file).
"""
from __future__ import annotations

import sys

from ..events.clock import Clock
from ..events.event import Event
from ..events.socket import EventSender


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 4 or args[1] not in ("add", "old", "del"):
        return 0                                    # dnsmasq also calls with "init", "tftp"
    socket_path, op, mac, ip = args[:4]
    # the client chooses its hostname: keep it printable and short, or the daemon's socket
    # (rightly) refuses the whole record
    hostname = "".join(c for c in (args[4] if len(args) > 4 else "") if c.isprintable())[:63]
    event = Event(type="dhcp.lease", stamp=Clock().stamp(), reason=op, source="dhcp",
                  device_id=f"mac:{mac.lower()}", device_ip=ip, name=hostname,
                  details={"op": op, "mac": mac.lower(), "ip": ip, "hostname": hostname})
    sender = EventSender(socket_path)
    sender.send(event)
    sender.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
