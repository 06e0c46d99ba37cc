"""The appliance process: assembles the parts in one place and runs them.

Order matters: sinks first (so no event is published before something listens),
then the ruleset (enforcing before anything is served; if nft refuses it we do
not start, and whatever was loaded, e.g. the boot table, stays), then producers
(the local event socket, the packet log reader, the resolver, the address
learner), then the metrics endpoint. Shutdown runs in reverse, drains the log,
and leaves the ruleset in force.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from contextlib import suppress

from prometheus_client import CollectorRegistry

from . import __version__
from .config import ConfigError
from .dns.service import DnsService
from .dns.upstream import Forwarder, parse_servers
from .events.bus import EventBus
from .events.clock import Clock
from .events.senders import COMMANDS, GATE, Vocabulary
from .events.socket import EventSocketServer
from .evlog import signing
from .evlog.sink import LogSink
from .evlog.writer import LogMetrics, LogWriter
from .firewall.nft import NftError
from .metrics import MetricsServer, new_registry
from .metrics_sink import MetricsSink
from .policy import Policy, PolicyHolder, load_policy
from .sdnotify import credential, feed_watchdog, notify, watchdog_interval

log = logging.getLogger("gcsguard")


class TaskFailed(Exception):
    pass


def _both(first, second):
    def observe(req, answer) -> None:
        first(req, answer)
        second(req, answer)
    return observe


def _senders(config) -> dict[int, dict[str, str]]:
    """Who may send which events on the local socket, by uid: the gate its decisions; root
    and our own user (commands, dnsmasq's lease script) the commands' records."""
    commands = {0: COMMANDS, os.getuid(): COMMANDS}
    return {**commands, config.gate.uid: GATE} if config.gate.enabled else commands


class Appliance:
    def __init__(self, policy: Policy, clock: Clock | None = None,
                 registry: CollectorRegistry | None = None, with_socket: bool = True,
                 with_firewall: bool = True) -> None:
        config = policy.config
        self.registry = registry or new_registry(config.appliance.station)
        self.clock = clock or Clock()
        self.bus = EventBus(self.clock, self.registry)
        # Under systemd the key comes as a credential (the service user cannot read /etc's copy).
        key = credential("log-signing.key") or config.log.signing_key_file
        writer = LogWriter(config.log.directory, signing.load_private(key),
                           config.appliance.station, self.clock, LogMetrics(self.registry),
                           max_file_bytes=config.log.max_file_bytes, fsync=config.log.fsync,
                           fsync_interval=config.log.fsync_interval)
        self.bus.add_sink("log", LogSink(writer, checkpoint_interval=config.log.checkpoint_interval,
                                         retention_days=config.log.retention_days),
                          config.events.queue_size)
        self.bus.add_sink("metrics", MetricsSink(self.registry), config.events.queue_size)
        self.alerts = None
        if config.alerts.rules_file:
            from .alerts.service import AlertService
            self.alerts = AlertService(config, policy.alert_rules, self.bus, self.registry)
        self.holder = PolicyHolder(policy, self.bus, self.registry)
        if config.verify.enabled:
            from .verify.metrics import VerifyCollector
            from .verify.run import results_path
            self.registry.register(VerifyCollector(results_path(config)))
        if config.gate.enabled:
            from .gate.listening import GateListening
            self.registry.register(GateListening(config.gate.listen_port, config.gate.uid))
        if config.ship.collector:
            from .ship.rsyslog import STATS_FILE, work_directory
            from .ship.stats import ShipCollector
            self.registry.register(ShipCollector(os.path.join(work_directory(config), STATS_FILE)))
        self.firewall = self.observation = self.dhcp = None
        if with_firewall and config.firewall.enabled:
            self._network_parts(config)
        fw, obs = self.firewall, self.observation
        observe = _both(fw.learner.observe, obs.attribution.observe) if fw else None
        fresh = (lambda ip: obs.devices.identify(ip, fresh=True)) if obs else None
        self.dns = (DnsService(config.dns, lambda: self.holder.judge, self.bus, self.registry,
                               observe, fresh)
                    if config.dns.listen else None)
        self.holder.attach(learned=fw.store if fw else None,
                           aliases=self.dns.aliases if self.dns else None)
        self.socket = (EventSocketServer(config.events.socket, self.bus, self.registry,
                                         obs.devices.identify if obs else None,
                                         _senders(config), self._vocabulary())
                       if with_socket else None)
        m = config.metrics
        self.metrics = MetricsServer(self.registry, m.listen, m.basic_auth_user,
                                     m.basic_auth_password, m.tls_cert_file, m.tls_key_file)
        self._stop = asyncio.Event()
        self._failed = ""

    def _vocabulary(self) -> Vocabulary:
        """The lists' vendors and categories, as loaded now: bounded label values."""
        return Vocabulary(lambda: self.holder.policy.lists.label_values[0],
                          lambda: self.holder.policy.lists.label_values[1])

    def _network_parts(self, config) -> None:
        """The router's parts: ruleset and learned sets, observation, the LAN's DHCP."""
        from .firewall.service import FirewallService
        from .network.dhcp import DhcpService
        from .observe.service import Observation
        forwarder = Forwarder(parse_servers(config.dns.upstreams), config.dns.upstream_timeout,
                              self.registry) if not config.dns.listen else None
        self.firewall = FirewallService(self.holder.policy, self.bus, self.registry,
                                        lambda q: (forwarder or self.dns.forwarder).resolve(q))
        self.observation = Observation(config, self.bus, self.registry, lambda: self.holder.judge,
                                       self.holder.policy.inventory, set(),
                                       self.firewall.counters, self.firewall.while_down)
        self.dhcp = DhcpService(config, self.bus, self.registry,
                                lambda: [mac.lower() for mac in self.holder.policy.inventory])

    async def _check_links(self) -> None:
        """Configured interfaces and listen addresses exist, or we do not start (exit 2)."""
        from .network.links import LinkWatcher, read_links, validate
        # pyroute2's synchronous API runs its own loop: keep it off ours
        links, addresses, names, neighbours = await asyncio.to_thread(read_links)
        problems = validate(self.holder.policy.config, links, addresses)
        if problems:
            raise ConfigError(problems)
        self.links = LinkWatcher(self.holder.policy.config, self.bus, self.registry)
        self.links.local_addresses = self.observation.local          # one set, kept current
        devices = self.observation.devices
        self.links.on_neighbour = lambda ip, mac: devices.learn(ip, mac, "neighbour")
        self.links.start(links, addresses, names, neighbours)

    def _task_done(self, task: asyncio.Task) -> None:
        """A part that stops by itself is a fault: stop (rules stay in force) and let systemd
        restart us, rather than run on half-blind."""
        if task.cancelled() or self._stop.is_set():
            return
        error = task.exception()
        self._failed = f"{task.get_name()}: {error!r}" if error else f"{task.get_name()}: ended"
        log.error("part failed, stopping: %s", self._failed, exc_info=error)
        self._stop.set()

    async def serve(self) -> None:
        events = self.holder.policy.config.events
        tasks = [*self.bus.start(),      # the sinks first: nothing is published before they listen
                 asyncio.create_task(self.bus.report_drops(events.drop_report_interval), name="drops")]
        stop_reason, error = "stop", ""
        firewall_started = False
        try:
            if self.firewall:
                await self._check_links()
                self.firewall.start()
                firewall_started = True
                tasks += [asyncio.create_task(self.links.run(), name="links"),
                          asyncio.create_task(self.firewall.learner.run(), name="learn"),
                          asyncio.create_task(self.firewall.maintain(), name="firewall"),
                          *self.observation.start()]
            if self.socket:
                await self.socket.start()
                tasks.append(asyncio.create_task(self.socket.report(events.drop_report_interval),
                                                 name="socket-report"))
            if self.dhcp:
                self.dhcp.apply(self.holder.policy.config)
            if self.dns:
                await self.dns.start()
                tasks.append(asyncio.create_task(self.dns.report_rate_limits(events.drop_report_interval)))
            await self.metrics.start()
            if self.alerts:
                tasks += self.alerts.tasks()
            for task in tasks:
                task.add_done_callback(self._task_done)
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stop.set)
            notify("READY=1")
            interval = watchdog_interval()
            if interval:
                tasks.append(asyncio.create_task(feed_watchdog(interval), name="watchdog"))
                tasks[-1].add_done_callback(self._task_done)
            self.bus.emit("appliance.started", reason="start", details={
                "version": __version__, "config_sha256": self.holder.policy.config.sha256,
                "lists_sha256": self.holder.policy.lists.sha256})
            self.holder.announce()
            log.info("gcsguard %s running; metrics on %s", __version__, ", ".join(
                self.holder.policy.config.metrics.listen) or "(disabled)")
            await self._stop.wait()
            if self._failed:
                stop_reason, error = "task-failed", self._failed
                raise TaskFailed(self._failed)
        except (OSError, NftError, ConfigError) as e:   # address in use, nft refused, no such link
            stop_reason, error = "start-failed", str(e)
            raise
        finally:
            notify("STOPPING=1")
            self.bus.emit("appliance.stopped", action="error" if error else "info",
                          reason=stop_reason, details={"error": error} if error else {})
            self.metrics.close()
            if self.dhcp:
                self.dhcp.stop()
            if self.dns:
                self.dns.close()
            if self.socket:
                self.socket.close()
            if firewall_started:
                self.firewall.save()             # the ruleset itself stays in force
            await self.bus.close()               # the sinks drain; the log signs a final checkpoint
            for task in tasks:
                task.cancel()
            for task in tasks:
                with suppress(asyncio.CancelledError):
                    await task

    async def reload(self) -> bool:
        """SIGHUP: lists load in a thread so the loop keeps serving meanwhile."""
        current = self.holder.policy
        try:
            new = await asyncio.to_thread(load_policy, current.config.path, current)
        except ConfigError as e:
            log.error("reload rejected; the running policy stays:\n%s", e)
            self.holder.reject(e)
            return False
        if self.firewall:          # resolver and ruleset change together, or neither does
            try:
                self.firewall.apply(new)
            except NftError as e:
                log.error("reload rejected: nft refused the ruleset; the running policy stays:\n%s", e)
                self.holder.reject(ConfigError([f"ruleset refused by nft: {e}"]))
                return False
        self.holder.apply(new)     # on the loop: the bus is not thread-safe
        if self.dhcp:
            self.dhcp.apply(new.config)
        if self.dns and (new.lists.sha256 != current.lists.sha256
                         or new.config.firewall.mode != current.config.firewall.mode):
            self.dns.lists_changed()
        log.info("reload applied (config %s)", new.config.sha256[:12])
        return True
