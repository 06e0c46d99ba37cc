"""The lab's own certificate authority and one server certificate for every lab name.

Clients in the lab trust only this CA (curl --cacert), so a connection that verifies
proves it reached the simulated server, untouched by any interception.
"""
from __future__ import annotations

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NAMES = ("mydjiflight.dji.com", "api.dji.com", "www.allowed.example", "hardcoded.allowed.example",
         "dns.google", "dns.weixin.qq.com")
ADDRESSES = ("203.0.113.10", "203.0.113.12", "198.51.100.80", "198.51.100.250", "198.51.100.99",
             "198.51.100.53",
             "203.0.113.53", "2001:db8::10", "2001:db8::80")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def write_lab_pki(directory: str, addresses: tuple[str, ...] = ADDRESSES) -> dict[str, str]:
    """ca.pem, server.pem (chain) and server.key in `directory`; returns their paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("gcsguard lab CA"))
          .issuer_name(_name("gcsguard lab CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(valid[0])
          .not_valid_after(valid[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in NAMES] + [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (x509.CertificateBuilder().subject_name(_name("gcsguard lab server"))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {k: os.path.join(directory, f) for k, f in
             (("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"))}
    pem = serialization.Encoding.PEM
    with open(paths["ca"], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(pem) + ca.public_bytes(pem))
    with open(os.open(paths["key"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths
