#!/usr/bin/env python3
"""Builds gcsguard's Grafana dashboards with Grafana's own SDK (grafana-foundation-sdk), so
the JSON follows Grafana's schema by construction. Writes dashboards/grafana/*.json:

    .venv/bin/python dashboards/build.py        # a test checks the files match this output

Every query filters by the `station` and `instance` variables (and the drill-down by
`device`, the inventory name) and keeps `station` through its aggregation, so a fleet
shows one series or tile per station; every panel has a description, counts show no
decimals, and problems have thresholds. The tests run each panel's query against a real
Prometheus that scraped the lab, and a panel without data fails.
"""
from __future__ import annotations

import json
import os

from grafana_foundation_sdk.builders.dashboard import (Dashboard, DatasourceVariable, QueryVariable, Row,
                                                       ThresholdsConfig)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueTextMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode, VariableRefresh

ON_TIME_RANGE = VariableRefresh.ON_TIME_RANGE_CHANGED

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grafana")
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
I = 'station=~"$station",instance=~"$instance"'
BY = "station, instance"        # kept by every aggregation: a panel sums across stations only
                                # if its title says so


def query(expr: str, legend: str = "") -> Dataquery:
    q = Dataquery().expr(expr).datasource(DS).ref_id("A")
    return q.legend_format(legend) if legend else q


def thresholds(*steps: tuple[float | None, str]) -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=v, color=c) for v, c in steps])


GOOD_ZERO = thresholds((None, "green"), (1, "red"))          # any at all is a problem


def series(title: str, expr: str, legend: str, unit: str = "short", about: str = "") -> Timeseries:
    return Timeseries().title(title).description(about).unit(unit).datasource(DS).height(8).span(12) \
        .with_target(query(expr, legend))


def stat(title: str, expr: str, legend: str = "{{station}}", unit: str = "short", about: str = "",
         limits: ThresholdsConfig | None = None) -> Stat:
    panel = Stat().title(title).description(about).unit(unit).datasource(DS).height(5).span(6) \
        .decimals(0 if unit == "short" else 1).text_mode(BigValueTextMode.VALUE_AND_NAME) \
        .with_target(query(expr, legend))
    return panel.thresholds(limits) if limits else panel


def variables(dashboard: Dashboard) -> Dashboard:
    return (dashboard
            .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
            .with_variable(QueryVariable("station").label("Station").datasource(DS)
                           .query("label_values(gcsguard_build_info, station)")
                           .include_all(True).multi(True).refresh(ON_TIME_RANGE))
            .with_variable(QueryVariable("instance").label("Appliance").datasource(DS)
                           .query('label_values(gcsguard_build_info{station=~"$station"}, instance)')
                           .include_all(True).multi(True).refresh(ON_TIME_RANGE)))


def overview() -> Dashboard:
    d = variables(Dashboard("gcsguard: isolation overview").uid("gcsguard-overview")
                  .tags(["gcsguard"]).refresh("30s").time("now-6h", "now"))
    return (d
            .with_row(Row("Isolation"))
            .with_panel(stat("Mode", f"gcsguard_firewall_mode{{{I}}} == 1", "{{station}}: {{mode}}",
                             about="The ruleset's mode per station: isolate, vendor-block or audit "
                             "(audit lets vendor traffic through)")
                        .text_mode(BigValueTextMode.NAME))
            .with_panel(stat("Rulesets refused (24h)",
                             f'sum by ({BY}) (increase(gcsguard_firewall_ruleset_loads_total{{result="failure",{I}}}[24h]))',
                             about="nft refused a new ruleset; the previous one stayed in force",
                             limits=GOOD_ZERO))
            .with_panel(stat("Last reload applied", f"gcsguard_config_last_reload_successful{{{I}}}",
                             about="1: the last reload was applied; 0: refused, the policy before it "
                             "is in force", limits=thresholds((None, "red"), (1, "green"))))
            .with_panel(stat("Learned vendor addresses",
                             f'sum by ({BY}) (gcsguard_firewall_learned_addresses{{kind="vendor",{I}}})',
                             about="Addresses vendor names resolved to, blocked in the kernel"))
            .with_panel(stat("Last full verification pass, ago",
                             f"time() - max by ({BY}) (gcsguard_isolation_last_pass_timestamp_seconds{{{I}}})",
                             unit="s", about="gcsguard verify tries every technique hourly; red after a day",
                             limits=thresholds((None, "green"), (86400, "red"))))
            .with_panel(stat("Isolation checks failing (gcsguard verify)",
                             f"count by ({BY}) (gcsguard_isolation_check_passed{{{I}}} == 0) "
                             f"or sum by ({BY}) (gcsguard_isolation_check_passed{{{I}}} * 0)",
                             about="Techniques that got through or were not logged in the last run",
                             limits=GOOD_ZERO))
            .with_row(Row("Blocked attempts"))
            .with_panel(series("Blocked attempts by station, vendor and layer",
                               f'sum by (station, vendor, layer) (rate(gcsguard_egress_attempts_total{{action="block",{I}}}[$__rate_interval]))',
                               "{{station}}: {{vendor}} ({{layer}})", "reqps",
                               about="Each attempt counted once, at the layer that decided it"))
            .with_panel(series("Bypass attempts by station and kind",
                               f'sum by (station, reason) (rate(gcsguard_firewall_packets_total{{reason=~"dns-bypass|dot|quic|bypass-address|ipv6",{I}}}[$__rate_interval]))',
                               "{{station}}: {{reason}}", "pps",
                               about="Foreign DNS, DoT, QUIC, resolver addresses, IPv6: dropped packets"))
            .with_panel(series("Direct-IP attempts",
                               f"sum by (station, action) (rate(gcsguard_direct_ip_attempts_total{{{I}}}[$__rate_interval]))",
                               "{{station}}: {{action}}", "reqps",
                               about="Connections to addresses the device never looked up"))
            .with_row(Row("Devices"))
            .with_panel(series("Attempts by device",
                               f"sum by (station, device, action) (rate(gcsguard_egress_attempts_total{{{I}}}[$__rate_interval]))",
                               "{{station}}: {{device}} {{action}}", "reqps",
                               about="Devices by their inventory name; unknown devices as unknown"))
            .with_panel(stat("Devices not in the inventory", f'sum by ({BY}) (gcsguard_devices{{known="false",{I}}})',
                             about="MACs seen on the LAN that the inventory does not name",
                             limits=thresholds((None, "green"), (1, "orange"))))
            .with_panel(stat("Devices in the inventory seen", f'sum by ({BY}) (gcsguard_devices{{known="true",{I}}})',
                             about="Inventory devices seen since the daemon started"))
            .with_row(Row("DNS"))
            .with_panel(series("DNS queries by verdict",
                               f"sum by (station, verdict) (rate(gcsguard_dns_queries_total{{{I}}}[$__rate_interval]))",
                               "{{station}}: {{verdict}}", "reqps", about="Every query the resolver answered"))
            .with_panel(series("DNS answer time, p99",
                               f"histogram_quantile(0.99, sum by (station, le) (rate(gcsguard_dns_query_duration_seconds_bucket{{{I}}}[$__rate_interval])))",
                               "{{station}} p99", "s", about="Time from a query to its answer"))
            .with_panel(stat("Upstreams answering", f"sum by ({BY}) (gcsguard_dns_upstream_up{{{I}}})",
                             about="Upstream resolvers that answered their last query; 0 means "
                             "controllers get SERVFAIL", limits=thresholds((None, "red"), (1, "green"))))
            .with_row(Row("Appliance health"))
            .with_panel(series("Log records written",
                               f"sum by ({BY}) (rate(gcsguard_log_records_written_total{{{I}}}[$__rate_interval]))",
                               "{{station}}", "ops", about="Records appended to the signed log"))
            .with_panel(stat("Log write failures (24h)",
                             f"sum by ({BY}) (increase(gcsguard_log_write_failures_total{{{I}}}[24h]))",
                             about="Writes the disk refused; lost records are counted and recorded",
                             limits=GOOD_ZERO))
            .with_panel(stat("Events dropped (24h)",
                             f"sum by ({BY}) (increase(gcsguard_events_dropped_total{{{I}}}[24h]))",
                             about="Events a full sink queue dropped (counted, recorded)", limits=GOOD_ZERO))
            .with_panel(stat("Links up", f"gcsguard_link_up{{{I}}}", "{{station}}: {{interface}} ({{role}})",
                             about="1 up, 0 down", limits=thresholds((None, "red"), (1, "green"))))
            .with_panel(series("Event queue depth", f"gcsguard_event_queue_depth{{{I}}}",
                               "{{station}}: {{sink}}", about="Events waiting for each sink")))


def device() -> Dashboard:
    d = variables(Dashboard("gcsguard: device").uid("gcsguard-device").tags(["gcsguard"])
                  .refresh("30s").time("now-6h", "now"))
    d = d.with_variable(QueryVariable("device").label("Device").datasource(DS)
                        .query('label_values(gcsguard_egress_attempts_total{station=~"$station",instance=~"$instance"}, device)')
                        .refresh(ON_TIME_RANGE))
    D = f'device=~"$device",{I}'
    return (d
            .with_row(Row("What the device attempted"))
            .with_panel(series("Attempts by layer and action",
                               f"sum by (station, layer, action) (rate(gcsguard_egress_attempts_total{{{D}}}[$__rate_interval]))",
                               "{{station}}: {{layer}} {{action}}", "reqps",
                               about="Each attempt counted once, at the layer that decided it"))
            .with_panel(series("Blocked, by vendor",
                               f'sum by (station, vendor) (rate(gcsguard_egress_attempts_total{{action="block",{D}}}[$__rate_interval]))',
                               "{{station}}: {{vendor}}", "reqps", about="What the device tried to reach"))
            .with_panel(Table().title("Blocked by reason and layer (24h)").datasource(DS).height(8).span(12)
                        .description("Why each attempt was blocked, over the last day").decimals(0)
                        .with_target(query(f'sum by (station, reason, layer) (increase(gcsguard_egress_attempts_total{{action="block",{D}}}[24h]))')))
            # allowed flows (ip, new) and the gate's allowed connections (tls, http, tcp); a
            # flow through the gate is "redirect" until its verdict, so nothing counts twice
            .with_panel(stat("Connections allowed (24h)",
                             f'sum by ({BY}) (increase(gcsguard_egress_attempts_total{{action="allow",{D}}}[24h]))',
                             about="Allowed flows and the gate's allowed connections")))


def fleet() -> Dashboard:
    """One row per station (a row repeated over `station`): is it up, protecting as
    configured, verified, and what its devices tried today."""
    S = 'station=~"$station"'
    d = (Dashboard("gcsguard: fleet").uid("gcsguard-fleet").tags(["gcsguard"]).refresh("1m")
         .time("now-24h", "now")
         .with_variable(DatasourceVariable("datasource").label("Data source").type("prometheus"))
         .with_variable(QueryVariable("station").label("Station").datasource(DS)
                        .query("label_values(gcsguard_build_info, station)")
                        .include_all(True).multi(True).refresh(ON_TIME_RANGE)))
    row = lambda title, expr, unit="short", legend="{{station}}", limits=None, about="": stat(  # noqa: E731
        title, expr, legend, unit, about, limits).span(3).height(4)
    return (d
            .with_row(Row("$station").repeat("station"))
            .with_panel(row("Scraped", f'max by (station) (up{{job=~".*gcsguard.*",{S}}})',
                            limits=thresholds((None, "red"), (1, "green")), about="1: Prometheus reaches it"))
            .with_panel(row("Mode", f"gcsguard_firewall_mode{{{S}}} == 1", legend="{{mode}}",
                            about="isolate, vendor-block or audit").text_mode(BigValueTextMode.NAME))
            .with_panel(row("Policy age", f"time() - max by (station) (gcsguard_config_last_reload_success_timestamp_seconds{{{S}}})",
                            "s", about="Since the policy in force was loaded"))
            .with_panel(row("Last verification pass", f"time() - max by (station) (gcsguard_isolation_last_pass_timestamp_seconds{{{S}}})",
                            "s", limits=thresholds((None, "green"), (86400, "red")), about="gcsguard verify, hourly"))
            .with_panel(row("Vendor attempts today",
                            f'sum by (station) ((A unless A offset 24h) or increase(A[24h]))'
                            .replace("A", f'gcsguard_egress_attempts_total{{action="block",vendor!="",{S}}}')
                            + f" or max by (station) (gcsguard_build_info{{{S}}}) * 0",
                            limits=thresholds((None, "green"), (1, "orange")),
                            about="Blocked, each counted once; a series born today counts from zero"))
            .with_panel(row("Bypass attempts today",
                            f'sum by (station) (increase(gcsguard_firewall_packets_total{{reason=~"dns-bypass|dot|quic|bypass-address|ipv6",{S}}}[24h]))',
                            limits=thresholds((None, "green"), (1, "orange")), about="Foreign DNS, DoT, QUIC, IPv6 packets"))
            .with_panel(row("Upstreams answering", f"sum by (station) (gcsguard_dns_upstream_up{{{S}}})",
                            limits=thresholds((None, "red"), (1, "green")), about="DNS upstreams up"))
            .with_panel(row("Links down", f"count by (station) (gcsguard_link_up{{{S}}} == 0) "
                            f"or sum by (station) (gcsguard_link_up{{{S}}} * 0)",
                            limits=GOOD_ZERO, about="Configured interfaces that are down")))


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    for name, build in (("gcsguard-overview", overview), ("gcsguard-device", device),
                        ("gcsguard-fleet", fleet)):
        model = json.loads(JSONEncoder().encode(build().build()))
        for number, panel in enumerate(model["panels"], 1):  # unique ids: links and alerts name them
            panel["id"] = number
        text = json.dumps(model, sort_keys=True, indent=2)
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
