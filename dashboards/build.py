#!/usr/bin/env python3
"""Builds gcsguard's Grafana dashboards with Grafana's own SDK (grafana-foundation-sdk), so
the JSON follows Grafana's schema by construction. Writes dashboards/grafana/*.json:

    .venv/bin/python dashboards/build.py        # a test checks the files match this output

Every query filters by the `instance` variable (and the drill-down by `device`, the
inventory name): the tests run each panel's query against a real Prometheus that
scraped the lab, and a panel without data fails.
"""
from __future__ import annotations

import os

from grafana_foundation_sdk.builders.dashboard import Dashboard, DatasourceVariable, QueryVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

ON_TIME_RANGE = VariableRefresh.ON_TIME_RANGE_CHANGED

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grafana")
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
I = 'instance=~"$instance"'


def query(expr: str, legend: str = "") -> Dataquery:
    q = Dataquery().expr(expr).datasource(DS).ref_id("A")
    return q.legend_format(legend) if legend else q


def series(title: str, expr: str, legend: str, unit: str = "short") -> Timeseries:
    return Timeseries().title(title).unit(unit).datasource(DS).height(8).span(12).with_target(
        query(expr, legend))


def stat(title: str, expr: str, legend: str = "", unit: str = "short") -> Stat:
    return Stat().title(title).unit(unit).datasource(DS).height(5).span(6).with_target(
        query(expr, legend))


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
            .with_panel(stat("Mode", f"gcsguard_firewall_mode{{{I}}} == 1", "{{instance}}: {{mode}}"))
            .with_panel(stat("Rulesets refused (24h)",
                             f'sum(increase(gcsguard_firewall_ruleset_loads_total{{result="failure",{I}}}[24h]))'))
            .with_panel(stat("Config reloads applied", f"gcsguard_config_last_reload_successful{{{I}}}",
                             "{{instance}}"))
            .with_panel(stat("Learned vendor addresses",
                             f'sum(gcsguard_firewall_learned_addresses{{kind="vendor",{I}}})'))
            .with_panel(stat("Last full verification pass, ago",
                             f"time() - max by (instance) (gcsguard_isolation_last_pass_timestamp_seconds{{{I}}})",
                             "{{instance}}", "s"))
            .with_panel(stat("Isolation checks failing (gcsguard verify)",
                             f"count(gcsguard_isolation_check_passed{{{I}}} == 0) or vector(0)"))
            .with_row(Row("Blocked attempts"))
            .with_panel(series("Blocked attempts by vendor and layer",
                               f'sum by (vendor, layer) (rate(gcsguard_egress_attempts_total{{action="block",{I}}}[$__rate_interval]))',
                               "{{vendor}} ({{layer}})", "reqps"))
            .with_panel(series("Bypass attempts by kind",
                               f'sum by (reason) (rate(gcsguard_firewall_packets_total{{reason=~"dns-bypass|dot|quic|bypass-address|ipv6",{I}}}[$__rate_interval]))',
                               "{{reason}}", "pps"))
            .with_panel(series("Direct-IP attempts",
                               f"sum by (action) (rate(gcsguard_direct_ip_attempts_total{{{I}}}[$__rate_interval]))",
                               "{{action}}", "reqps"))
            .with_row(Row("Devices"))
            .with_panel(series("Attempts by device",
                               f"sum by (device, action) (rate(gcsguard_egress_attempts_total{{{I}}}[$__rate_interval]))",
                               "{{device}} {{action}}", "reqps"))
            .with_panel(stat("Devices not in the inventory", f'sum(gcsguard_devices{{known="false",{I}}})'))
            .with_panel(stat("Devices in the inventory seen", f'sum(gcsguard_devices{{known="true",{I}}})'))
            .with_row(Row("DNS"))
            .with_panel(series("DNS queries by verdict",
                               f"sum by (verdict) (rate(gcsguard_dns_queries_total{{{I}}}[$__rate_interval]))",
                               "{{verdict}}", "reqps"))
            .with_panel(series("DNS answer time, p99",
                               f"histogram_quantile(0.99, sum by (le) (rate(gcsguard_dns_query_duration_seconds_bucket{{{I}}}[$__rate_interval])))",
                               "p99", "s"))
            .with_panel(stat("Upstreams answering", f"sum(gcsguard_dns_upstream_up{{{I}}})"))
            .with_row(Row("Appliance health"))
            .with_panel(series("Log records written",
                               f"rate(gcsguard_log_records_written_total{{{I}}}[$__rate_interval])",
                               "{{instance}}", "ops"))
            .with_panel(stat("Log write failures (24h)",
                             f"sum(increase(gcsguard_log_write_failures_total{{{I}}}[24h]))"))
            .with_panel(stat("Events dropped (24h)",
                             f"sum(increase(gcsguard_events_dropped_total{{{I}}}[24h]))"))
            .with_panel(stat("Links up", f"gcsguard_link_up{{{I}}}", "{{interface}} ({{role}})"))
            .with_panel(series("Event queue depth", f"gcsguard_event_queue_depth{{{I}}}", "{{sink}}")))


def device() -> Dashboard:
    d = variables(Dashboard("gcsguard: device").uid("gcsguard-device").tags(["gcsguard"])
                  .refresh("30s").time("now-6h", "now"))
    d = d.with_variable(QueryVariable("device").label("Device").datasource(DS)
                        .query('label_values(gcsguard_egress_attempts_total{instance=~"$instance"}, device)')
                        .refresh(ON_TIME_RANGE))
    D = f'device=~"$device",{I}'
    return (d
            .with_row(Row("What the device attempted"))
            .with_panel(series("Attempts by layer and action",
                               f"sum by (layer, action) (rate(gcsguard_egress_attempts_total{{{D}}}[$__rate_interval]))",
                               "{{layer}} {{action}}", "reqps"))
            .with_panel(series("Blocked, by vendor",
                               f'sum by (vendor) (rate(gcsguard_egress_attempts_total{{action="block",{D}}}[$__rate_interval]))',
                               "{{vendor}}", "reqps"))
            .with_panel(Table().title("Blocked by reason and layer (24h)").datasource(DS).height(8).span(12)
                        .with_target(query(f'sum by (reason, layer) (increase(gcsguard_egress_attempts_total{{action="block",{D}}}[24h]))')))
            # allowed flows (ip, new) and the gate's allowed connections (tls, http, tcp); a
            # flow through the gate is "redirect" until its verdict, so nothing counts twice
            .with_panel(stat("Connections allowed (24h)",
                             f'sum(increase(gcsguard_egress_attempts_total{{action="allow",reason!="direct-ip",{D}}}[24h]))')))


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    for name, build in (("gcsguard-overview", overview), ("gcsguard-device", device)):
        text = JSONEncoder(sort_keys=True, indent=2).encode(build().build())
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
