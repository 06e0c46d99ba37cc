"""A real station for the real-boot tests: a Debian root (debootstrap, cached) installed the
way docs/deploy.md says, booted with systemd as PID 1 (systemd-nspawn) inside the lab's
appliance namespace, so the lab's controller LAN and simulated internet are its LAN and WAN
(../shared/reference/libraries.md §8)."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tarfile
import time

CACHE = "/var/cache/gcsguard-realboot"
SUITE = "bookworm"                                  # Python 3.11, as Raspberry Pi OS
PACKAGES = ("systemd,systemd-sysv,dbus,iproute2,nftables,python3,python3-venv,kmod,procps,"
            "dnsmasq-base,dnsutils,curl,openssl,netcat-openbsd,ca-certificates")


def mirror() -> str:
    """The Debian mirror apt already uses here."""
    try:
        for line in open("/etc/apt/sources.list.d/debian.sources"):
            if line.startswith("URIs:"):
                return line.split()[1]
    except OSError:
        pass
    return "http://deb.debian.org/debian"


def base_root() -> str:
    """The debootstrapped root, built once and kept in CACHE (about a minute to build)."""
    key = hashlib.sha256(f"{SUITE} {PACKAGES}".encode()).hexdigest()[:12]
    root = os.path.join(CACHE, f"root-{key}")
    if not os.path.isdir(root):
        os.makedirs(CACHE, exist_ok=True)
        scratch = root + ".new"
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", SUITE, scratch,
                        mirror()], check=True, capture_output=True, timeout=900)
        os.rename(scratch, root)
    return root


class Station:
    """One booted container at a time, in `netns`; `root` is its own copy of the base."""

    def __init__(self, root: str, netns: str, log_path: str) -> None:
        self.root, self.netns, self.log_path = root, netns, log_path
        self.nspawn: subprocess.Popen | None = None

    @classmethod
    def fresh(cls, directory: str, netns: str) -> "Station":
        root = os.path.join(directory, "root")
        subprocess.run(["cp", "-a", base_root(), root], check=True)
        with open(os.path.join(root, "etc", "hostname"), "w") as f:
            f.write("station\n")
        return cls(root, netns, os.path.join(directory, "console.log"))

    # --- before boot: commands in the root, no systemd running --------------------------
    def chroot(self, *cmd: str, binds: tuple[str, ...] = (), timeout: float = 600) -> subprocess.CompletedProcess:
        args = [f"--bind-ro={b}" for b in binds]
        return subprocess.run(["systemd-nspawn", "-q", "-D", self.root, "--register=no",
                               "--keep-unit", "--pipe", *args, *cmd],
                              capture_output=True, text=True, timeout=timeout)

    def unpack_source(self, tarball: str) -> str:
        with tarfile.open(tarball) as tar:
            tar.extractall(os.path.join(self.root, "usr", "local", "src"), filter="data")
        return "/usr/local/src/gcsguard"

    # --- booted --------------------------------------------------------------------------
    def boot(self, timeout: float = 90, binds: tuple[str, ...] = ()) -> None:
        """nspawn withholds CAP_NET_ADMIN from a container in a namespace it did not make,
        and mounts /proc/sys/net read-only, unless told: a station's nft and sysctl need both."""
        console = open(self.log_path, "ab")
        self.binds = binds or getattr(self, "binds", ())
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "-q", "-D", self.root, "--register=no", "--keep-unit",
             f"--network-namespace-path=/run/netns/{self.netns}", "--capability=CAP_NET_ADMIN",
             "-b", "--console=pipe",
             *[f"--bind-ro={b}" for b in self.binds]],
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, SYSTEMD_NSPAWN_API_VFS_WRITABLE="network"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise AssertionError(f"the station exited ({self.nspawn.returncode}) while booting")
            state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.5)
        raise AssertionError(f"the station did not finish booting in {timeout} s")

    def init_pid(self) -> int:
        """The container's PID 1: the child of nspawn that runs systemd."""
        for _ in range(100):
            children = subprocess.run(["pgrep", "-P", str(self.nspawn.pid)], capture_output=True,
                                      text=True).stdout.split()
            for pid in children:
                try:
                    comm = open(f"/proc/{pid}/comm").read().strip()
                except FileNotFoundError:  # a short-lived child of nspawn, already gone
                    continue
                if comm == "systemd":
                    return int(pid)
            time.sleep(0.1)
        raise AssertionError("no systemd in the container")

    def run(self, *cmd: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(["nsenter", "-t", str(self.init_pid()), "-a", *cmd],
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode:
            raise AssertionError(f"{' '.join(cmd)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def reboot(self) -> None:
        """`systemctl reboot` inside ends nspawn (status 133); the loop boots it again."""
        self.run("systemctl", "reboot", check=False)
        self.nspawn.wait(timeout=60)
        self.boot()

    def power_cut(self) -> None:
        """The whole container killed at once (its PID 1, and with it every process in it):
        no unit stops, no file is synced."""
        os.kill(self.init_pid(), signal.SIGKILL)
        self.nspawn.wait(timeout=30)

    def shutdown(self) -> None:
        if self.nspawn is not None and self.nspawn.poll() is None:
            self.run("systemctl", "poweroff", check=False)
            try:
                self.nspawn.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.power_cut()
