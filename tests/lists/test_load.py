import os

from appliance.lists import load
from tests.conftest import SHIPPED_LISTS

HEADER = "# vendor: DJI\n# category: vendor\n"


def write(path, text):
    path.write_text(text)
    return str(path)


def test_block_subtree_wildcard_and_attribution(tmp_path):
    f = write(tmp_path / "dji.list", HEADER + "dji.com\n*.djicdn.com\n||skypixel.com^\n")
    lists, reports = load([f], [], 10)
    assert reports[0].status == "loaded" and reports[0].entries == 3
    v = lists.check_name("API.mydjiflight.dji.com.")
    assert v.blocked and v.block.entry == "dji.com" and v.block.where == f"{f}:3"
    assert v.block.source.vendor == "DJI" and v.block.source.category == "vendor"
    assert lists.check_name("x.djicdn.com").blocked
    assert not lists.check_name("djicdn.com").blocked         # wildcard: names under it only
    assert lists.check_name("skypixel.com").block.line == 5
    assert not lists.check_name("notdji.com").blocked          # positive control: no suffix games
    assert not lists.check_name("example.org").blocked


def test_allowlist_beats_blocklists(tmp_path):
    f = write(tmp_path / "dji.list", HEADER + "dji.com\n")
    a = write(tmp_path / "allow.list", "www.dji.com\n")
    lists, _ = load([f], [a], 10)
    v = lists.check_name("store.www.dji.com")
    assert not v.blocked and v.allow.entry == "www.dji.com" and v.block.entry == "dji.com"
    assert lists.check_name("api.dji.com").blocked


def test_bad_lines_are_reported_skipped_and_counted(tmp_path):
    f = write(tmp_path / "x.list", HEADER + "good.example\nbad..example\n||a.example/p^\nok.example\n")
    lists, reports = load([f], [], 10)
    r = reports[0]
    assert r.status == "loaded" and r.entries == 2 and r.bad_lines == 2
    assert r.errors[0].startswith(f"{f}:4: not a valid domain")
    assert r.errors[1].startswith(f"{f}:5: only whole-domain")
    assert lists.check_name("ok.example").blocked


def test_failed_file_keeps_its_previous_version(tmp_path):
    f = write(tmp_path / "x.list", HEADER + "old.example\n")
    other = write(tmp_path / "y.list", HEADER + "other.example\n")
    first, _ = load([f, other], [], 1)
    write(tmp_path / "x.list", HEADER + "new.example\nbad..a\nbad..b\n")   # over the budget of 1
    write(tmp_path / "y.list", HEADER + "other2.example\n")
    second, reports = load([f, other], [], 1, previous=first)
    assert [r.status for r in reports] == ["kept-previous", "loaded"]
    assert "error budget" in reports[0].fatal
    assert second.check_name("old.example").blocked and not second.check_name("new.example").blocked
    assert second.check_name("other2.example").blocked              # the good file did update
    os.unlink(f)
    third, reports = load([f, other], [], 1, previous=second)
    assert reports[0].status == "kept-previous" and "cannot read" in reports[0].fatal
    assert third.check_name("old.example").blocked


def test_a_list_of_only_bad_lines_or_emptied_is_refused_never_loaded_empty(tmp_path):
    """All its lines bad, though under the budget: refused. Emptied where its previous version
    had entries: refused, the previous kept. An empty list the first time is just empty."""
    f = write(tmp_path / "x.list", HEADER + "bad..a\nbad..b\n")
    _, reports = load([f], [], 100)
    assert reports[0].status == "failed" and "no valid entry (2 bad lines)" in reports[0].fatal
    write(tmp_path / "x.list", HEADER + "old.example\n")
    first, reports = load([f], [], 100)
    assert reports[0].status == "loaded"                                # control
    write(tmp_path / "x.list", HEADER)
    second, reports = load([f], [], 100, previous=first)
    assert reports[0].status == "kept-previous" and "previous version had 1" in reports[0].fatal
    assert second.check_name("old.example").blocked
    empty = write(tmp_path / "new.list", HEADER)
    assert load([empty], [], 100)[1][0].status == "loaded"


def test_missing_header_fails_the_file(tmp_path):
    f = write(tmp_path / "x.list", "# vendor: X\nexample.com\n")
    lists, reports = load([f], [], 10)
    assert reports[0].status == "failed" and "category" in reports[0].fatal
    assert not lists.check_name("example.com").blocked


def test_ip_lists(tmp_path):
    f = write(tmp_path / "r.ips", "# vendor: public-resolver\n# category: resolver\n# type: ip\n"
                                  "192.0.2.53\n198.51.100.0/24\n2001:db8::/32\n")
    lists, reports = load([f], [], 10)
    m = lists.ips.match("198.51.100.77")
    assert m.entry == "198.51.100.0/24" and m.line == 5 and m.source.category == "resolver"
    assert lists.ips.match("2001:db8::1").entry == "2001:db8::/32"
    assert lists.ips.match("192.0.2.53").entry == "192.0.2.53/32"
    assert lists.ips.match("192.0.2.54") is None and lists.ips.match("203.0.113.1") is None


def test_first_list_wins_attribution(tmp_path):
    a = write(tmp_path / "a.list", "# vendor: A\n# category: sdk\nshared.example\n")
    b = write(tmp_path / "b.list", "# vendor: B\n# category: sdk\nshared.example\nonly-b.example\n")
    lists, _ = load([a, b], [], 10)
    assert lists.check_name("shared.example").block.source.vendor == "A"
    assert lists.check_name("only-b.example").block.source.vendor == "B"


def test_shipped_lists_load_clean_and_attribute():
    lists, reports = load(SHIPPED_LISTS, [], 0)
    assert all(r.status == "loaded" and r.bad_lines == 0 for r in reports), \
        [(r.path, r.errors, r.fatal) for r in reports if r.bad_lines or r.fatal]
    expect = {"mydjiflight.dji.com": "DJI", "android.bugly.qq.com": "Bugly",
              "c.data.mob.com": "MobTech", "events.mapbox.com": "Mapbox",
              "appcentral.parrot.com": "Parrot", "dns.google": "public-resolver",
              "httpdns.baidu.com": "httpdns"}
    for name, vendor in expect.items():
        v = lists.check_name(name)
        assert v.blocked and v.block.source.vendor == vendor, name
    assert lists.ips.match("8.8.8.8").source.category == "resolver"
    assert not lists.check_name("debian.org").blocked
