"""The isolation report of a lab run: from the exported bundle it states the claim and its
reservations; after an audit-mode spell and a restart it says the claim does not hold and
why; rendered in headless Chromium, the screenshot shows the charts and the tables."""
import re
import shutil
import subprocess
import sys
import time

import numpy
import pytest
from matplotlib.image import imread

from appliance.evlog import signing
from appliance.lab.internet import VENDOR
from appliance.review.charts import BLOCKED, LAYER_COLORS
from appliance.review.report import chromium, headless

TABLE_HEADER = "#dde4ee"


def gcsguard(*args):
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True)


def stamp(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def pixels(png, color):
    """How many pixels of the screenshot are this colour (within a small tolerance)."""
    rgb = numpy.array([int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    image = imread(png)[:, :, :3]
    return int((numpy.abs(image - rgb).max(axis=2) < 0.03).sum())


def screenshot(html, png):
    result = headless("--hide-scrollbars", "--window-size=1280,5000", f"--screenshot={png}",
                      f"file://{html}")
    assert result.returncode == 0, result.stderr[-500:]
    return png


@pytest.mark.skipif(chromium() is None, reason="needs Chromium (.ci/setup installs it)")
def test_a_report_of_a_lab_run(lab, tmp_path):
    start = time.time() - 1
    assert lab.verify()[0] == 0
    for _ in range(3):
        lab.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR}:8080/")
    lab.run("ctl", "dig", "+time=1", "+tries=1", "mydjiflight.dji.com")
    time.sleep(1.5)
    bundle = tmp_path / "lab.tar.gz"
    assert gcsguard("review", "export", "-c", lab.config_path, "--from", stamp(start),
                    "--to", stamp(time.time() + 1), "--out", str(bundle)).returncode == 0
    pub = f"{lab.directory}/keys/log-signing.pub"
    html = tmp_path / "report.html"
    result = gcsguard("review", "report", str(bundle), "--pubkey", pub, "--out", str(html),
                      "--pdf", str(tmp_path / "report.pdf"))
    assert result.returncode == 0, result.stdout + result.stderr
    page = html.read_text()
    assert "The claim holds, with the reservations listed below" in page
    assert "not synchronized" in page            # the lab's clock: a reservation, stated
    assert "Audit mode" not in page and "was down" not in page
    assert page.count("<svg") == 3 and "ctl-03" in page and "DJI" in page
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    shot = screenshot(html, tmp_path / "report.png")
    assert pixels(shot, BLOCKED) > 500 and pixels(shot, LAYER_COLORS["ip"]) > 200   # the charts
    assert pixels(shot, TABLE_HEADER) > 2000                                        # the tables

    # the same period with an audit-mode spell and a restart in it
    assert lab.reload(mode="audit")
    lab.run("ctl", "curl", "-s", "-m", "1", f"http://{VENDOR}:8080/")
    assert lab.reload(mode="isolate")
    lab.restart_appliance()
    time.sleep(1)
    html2 = tmp_path / "after.html"
    result = gcsguard("review", "report", f"{lab.directory}/log", "--pubkey", pub, "--from",
                      stamp(start), "--out", str(html2))
    assert result.returncode == 1 and "contradicted" in result.stdout, result.stdout + result.stderr
    page = html2.read_text()
    assert "The claim does NOT hold" in page and "Vendor traffic let through" in page
    assert "Audit mode" in page and "The appliance was down from" in page

    # the pixel checks can fail: a period without attempts has tables but no charts
    empty = tmp_path / "empty.html"
    gcsguard("review", "report", f"{lab.directory}/log", "--from", stamp(start - 7200),
             "--to", stamp(start - 3600), "--out", str(empty))
    shot = screenshot(empty, tmp_path / "empty.png")
    assert pixels(shot, BLOCKED) == 0 and pixels(shot, TABLE_HEADER) > 500


@pytest.mark.skipif(chromium() is None or not shutil.which("pdftotext"),
                    reason="needs Chromium and poppler-utils (.ci/setup installs them)")
def test_the_pdf_is_a4_with_page_numbers_and_repeated_table_headers(tmp_path):
    from appliance.review.facts import gather
    from appliance.review.report import render, to_pdf
    rows = [{"time": f"2026-11-26T10:{i // 60:02d}:{i % 60:02d}Z", "type": "bypass.direct_ip",
             "action": "block", "reason": "bypass-address", "device_id": "mac:00:00:5e:00:53:01",
             "name": f"n{i}.example", "details": {"dst": "192.0.2.9"}} for i in range(200)]
    facts = gather(rows, "st", 0, 2e9, {"ok": True, "outcome": "VERIFIED", "problems": []})
    html, pdf = tmp_path / "r.html", tmp_path / "r.pdf"
    html.write_text(render(facts))
    to_pdf(str(html), str(pdf))
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert "(A4)" in info, info
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert 2 < pages < 20, info
    for page in range(1, pages + 1):
        text = subprocess.run(["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
                              capture_output=True, text=True).stdout
        assert f"page {page} of {pages}" in text, (page, text[-300:])
        if "bypass.direct_ip" in text:   # a page of the notable events: their header is on it
            assert re.search(r"time\s+device\s+type\s+reason\s+name\s+destination", text), text[:600]


def test_a_directory_report_covers_the_log_from_its_first_record(tmp_path, keypair, clock, fake_time):
    from appliance.events.clock import parse_rfc3339
    from appliance.review.report import gather_source
    from tests.review.test_query import make_log
    first = fake_time.now
    make_log(tmp_path / "log", keypair[0], clock, fake_time)
    facts = gather_source(str(tmp_path / "log"), signing.Keyring.load([keypair[1]]))
    assert facts.integrity["outcome"] == "VERIFIED", facts.integrity
    assert abs(facts.since - first) < 1 and facts.records == 4
    assert abs(facts.until - parse_rfc3339("1970-01-01T00:00:00Z") - (first + 3 * 1800)) < 1
