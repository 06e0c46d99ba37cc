#!/usr/bin/env python3
"""Regenerate the shipped lists from the reference tables, citing each entry's sources.

    python3 blocklists/generate.py [REFERENCE_DIR]    (default: ../shared/reference)

Inputs: vendor_domains.tsv (domain, vendor, category, source_url) and
resolver_endpoints.tsv (name, kind, endpoint, source_url). The lists are data
committed to the repository; this script only makes them reproducible.
"""
from __future__ import annotations

import csv
import ipaddress
import os
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))

# TSV vendor -> (file, vendor label, category). The label is a metric label: keep it short and
# stable. Groups: vendors/ (drone makers and their clouds), sdk/ (SDKs embedded in the apps),
# platform/ (big platforms the apps call; blocking them breaks other apps: opt-in).
VENDORS = {
    "DJI": ("vendors/dji", "DJI", "vendor"),
    "DJI (staging)": ("vendors/dji", "DJI", "vendor"),
    "DJI (staging/alt)": ("vendors/dji", "DJI", "vendor"),
    "DJI (SkyPixel)": ("vendors/dji", "DJI", "vendor"),
    "DJI (affiliate)": ("vendors/dji", "DJI", "vendor"),
    "DJI (AWS CloudFront distribution)": ("vendors/dji", "DJI", "vendor"),
    "DJI (domain seen in DJI GO 4 code; ownership unverified)": ("vendors/dji", "DJI", "vendor"),
    "Qiniu (SkyPixel image CDN)": ("vendors/dji", "DJI", "vendor"),
    "Autel Robotics": ("vendors/autel", "Autel", "vendor"),
    "Parrot": ("vendors/parrot", "Parrot", "vendor"),
    "Skydio": ("vendors/skydio", "Skydio", "vendor"),
    "Airdata (third party)": ("vendors/airdata", "Airdata", "log-cloud"),
    "AirMap": ("vendors/airmap", "AirMap", "airspace"),
    "AMap (Gaode/AutoNavi)": ("sdk/amap", "AMap", "sdk"),
    "Sina Weibo": ("sdk/weibo", "Weibo", "sdk"),
    "MobTech (ShareSDK)": ("sdk/mobtech", "MobTech", "sdk"),
    "Google Firebase": ("sdk/firebase", "Firebase", "sdk"),
    "Mapbox": ("sdk/mapbox", "Mapbox", "sdk"),
    "HERE": ("sdk/here", "HERE", "sdk"),
    "u-blox": ("sdk/ublox", "u-blox", "sdk"),
    "Umeng (Alibaba)": ("sdk/umeng", "Umeng", "sdk"),
    "Tencent Bugly": ("sdk/bugly", "Bugly", "sdk"),
    "Jiguang (JPush)": ("sdk/jpush", "JPush", "sdk"),
    "Getui": ("sdk/getui", "Getui", "sdk"),
    "Alipay": ("sdk/alipay", "Alipay", "sdk"),
    "live800": ("sdk/live800", "live800", "sdk"),
    "Flurry (Yahoo)": ("sdk/flurry", "Flurry", "sdk"),
    "Baidu": ("sdk/baidu", "Baidu", "sdk"),
    "Alibaba Taobao": ("sdk/alibaba", "Alibaba", "sdk"),
    "Alibaba Cloud OSS": ("sdk/alibaba", "Alibaba", "sdk"),
    "Alibaba Cloud MNS": ("sdk/alibaba", "Alibaba", "sdk"),
    "Alibaba (UT analytics)": ("sdk/alibaba", "Alibaba", "sdk"),
    "Google": ("platform/google", "Google", "platform"),
    "Twitter": ("platform/social", "Social", "platform"),
    "Tumblr": ("platform/social", "Social", "platform"),
    "Facebook": ("platform/social", "Social", "platform"),
    "Instagram": ("platform/social", "Social", "platform"),
    "Tencent QQ": ("platform/tencent", "Tencent", "platform"),
    "Tencent WeChat": ("platform/tencent", "Tencent", "platform"),
    "Tencent (app store)": ("platform/tencent", "Tencent", "platform"),
}

# resolver_endpoints.tsv kind -> (file, vendor label, category); names and addresses split apart.
RESOLVER_KINDS = {
    "doh": ("bypass/doh", "public-resolver", "doh"),
    "doh-hostname": ("bypass/doh", "public-resolver", "doh"),
    "dot": ("bypass/dot", "public-resolver", "dot"),
    "doq": ("bypass/dot", "public-resolver", "dot"),
    "httpdns-hostname": ("bypass/httpdns", "httpdns", "httpdns"),
    "httpdns-domain-suffix": ("bypass/httpdns", "httpdns", "httpdns"),
    "dns-ipv4": ("bypass/resolvers", "public-resolver", "resolver"),
    "dns-ipv6": ("bypass/resolvers", "public-resolver", "resolver"),
    "dot-server-ip": ("bypass/resolvers", "public-resolver", "resolver"),
    "doh-server-ip": ("bypass/resolvers", "public-resolver", "resolver"),
    "doq-server-ip": ("bypass/resolvers", "public-resolver", "resolver"),
    "dnscrypt": ("bypass/resolvers", "public-resolver", "resolver"),
    "httpdns-ipv4": ("bypass/httpdns", "httpdns", "httpdns"),
    "httpdns-ipv4-cidr": ("bypass/httpdns", "httpdns", "httpdns"),
    "httpdns-ipv6-cidr": ("bypass/httpdns", "httpdns", "httpdns"),
}


def host_of(endpoint: str) -> str:
    """'https://dns.x/dns-query', 'tls://[2001:db8::1]:853', '1.2.3.4:5443' -> the host."""
    rest = endpoint.split("://", 1)[-1].split("/", 1)[0]
    if rest.startswith("["):
        return rest[1:rest.index("]")]
    if rest.count(":") == 1:
        return rest.split(":")[0]
    return rest


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        return False


def collect(reference: str) -> dict[tuple[str, str], dict]:
    """(file, type) -> {"vendor", "category", "entries": {entry: [(note, url)]}}."""
    out: dict[tuple[str, str], dict] = {}

    def add(file: str, vendor: str, category: str, entry: str, note: str, url: str) -> None:
        kind = "ip" if is_ip(entry) else "domain"
        entry = str(ipaddress.ip_network(entry, strict=False)) if kind == "ip" else entry.lower().rstrip(".")
        lst = out.setdefault((file, kind), {"vendor": vendor, "category": category,
                                            "entries": defaultdict(list)})
        if (note, url) not in lst["entries"][entry]:
            lst["entries"][entry].append((note, url))

    with open(os.path.join(reference, "vendor_domains.tsv"), newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["vendor"] not in VENDORS:
                raise SystemExit(f"vendor_domains.tsv: vendor {row['vendor']!r} has no list; "
                                 "add it to VENDORS in blocklists/generate.py")
            file, vendor, category = VENDORS[row["vendor"]]
            add(file, vendor, category, row["domain"], f"{row['vendor']}: {row['category']}",
                row["source_url"])
    with open(os.path.join(reference, "resolver_endpoints.tsv"), newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            file, vendor, category = RESOLVER_KINDS[row["kind"]]
            cidr = row["kind"].endswith("-cidr")
            entry = row["endpoint"] if cidr else host_of(row["endpoint"])
            add(file, vendor, category, entry, f"{row['name']} ({row['kind']})",
                row["source_url"])
    return out


def render(file: str, kind: str, lst: dict) -> str:
    lines = [f"# gcsguard list {file} ({kind}): generated by blocklists/generate.py from",
             "# shared/reference; edit the reference tables, not this file.",
             f"# vendor: {lst['vendor']}", f"# category: {lst['category']}"]
    if kind == "ip":
        lines.append("# type: ip")
    lines.append("")
    for entry in sorted(lst["entries"]):
        notes = lst["entries"][entry]
        lines += [f"# {note.replace(chr(10), ' ')} -- {url}" for note, url in notes]
        lines.append(entry)
    return "\n".join(lines) + "\n"


def main(reference: str) -> None:
    for (file, kind), lst in sorted(collect(reference).items()):
        path = os.path.join(HERE, file + (".ips" if kind == "ip" else ".list"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(render(file, kind, lst))
        print(f"{path}: {len(lst['entries'])} entries")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "reference"))
