"""rsyslog's impstats file, read at scrape time (the real file is checked in test_rsyslog)."""
from appliance.ship.stats import ShipCollector


def test_the_statistics_reader_takes_the_latest_lines_and_survives_a_missing_or_cut_file(tmp_path):
    stats = tmp_path / "stats.json"
    families = lambda: {m.name: m.samples[0].value for m in ShipCollector(str(stats)).collect()}  # noqa: E731
    assert families()["gcsguard_ship_stats_timestamp_seconds"] == 0          # rsyslog never wrote
    line = 'Mon Nov 30 09:07:21 2026: {{ "name": "gcsguard-ship{}", "origin": "core.{}", {} }}\n'
    stats.write_text('ocessed": 1 }\n'                                       # a cut first line
                     + line.format("", "action", '"processed": 5, "failed": 0, "resumed": 0')
                     + line.format("", "action", '"processed": 7, "failed": 1, "resumed": 2')
                     + 'Mon Nov 30 09:07:21 2026: { "name": "main Q", "origin": "core.queue", "size": 50 }\n')
    got = families()
    assert got["gcsguard_ship_sent"] == 7 and got["gcsguard_ship_failed"] == 1
    assert got["gcsguard_ship_resumptions"] == 2 and got["gcsguard_ship_stats_timestamp_seconds"] > 0
