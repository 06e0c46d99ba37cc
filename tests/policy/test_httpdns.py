"""HTTPDNS by shape: the real forms (../shared/reference/vendor-endpoints.md §6), and not
what an ordinary request carries."""
import pytest

from appliance.policy.httpdns import asked_name


@pytest.mark.parametrize("target, name", [
    ("/d?dn=mydjiflight.dji.com", "mydjiflight.dji.com"),                     # Tencent, Aliyun
    ("/d?dn=api.dji.com&ttl=1", "api.dji.com"),
    ("/139450/d?host=api.dji.com", "api.dji.com"),                           # Aliyun, per account
    ("/d?host=api.dji.com", "api.dji.com"),
    ("/v2/0/resolve?dn=api.dji.com", "api.dji.com"),                         # Baidu
    ("/resolve?name=x.example&type=A", "x.example"),                         # DoH JSON
    ("/dns-query?name=x.example", "x.example"),
    ("/multi_dns_resolve?dn=a.example,b.example", "a.example"),              # batches
    ("/api?hostname=API.DJI.COM.", "api.dji.com"),                           # any path
    ("/lookup?domain=xn--80ak6aa92e.com", "xn--80ak6aa92e.com"),
    ("/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB", ""),     # DoH wire form
    ("/resolve", ""),
])
def test_httpdns_forms(target, name):
    assert asked_name(target) == name


@pytest.mark.parametrize("target", [
    "/", "/index.html", "/d", "/d?dn=", "/search?q=api.dji.com", "/api/v1/upload?name=flight42",
    "/x?host=198.51.100.10", "/x?name=readme.txt1", "/x?domain=localhost",
])
def test_ordinary_requests_are_not_httpdns(target):
    assert asked_name(target) is None
