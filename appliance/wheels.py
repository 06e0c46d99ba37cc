"""`gcsguard wheels --out DIR`: everything an offline station installs from, built on a
connected machine.

    DIR/wheels/            gcsguard's own wheel and a wheel of every dependency it runs
                           with, for each platform (aarch64: Raspberry Pi; x86_64) and
                           Python (3.11: Debian 12 and Pi OS; 3.13: Debian 13)
    DIR/requirements.txt   every dependency pinned to the version this machine runs,
                           with the SHA-256 of each of its wheels (pip --require-hashes)
    DIR/gcsguard-src.tar.gz  the source tree (`python3 -m appliance.install` runs from it)

On the station: `sudo python3 -m appliance.install --wheels DIR/wheels`, from the unpacked
source: pip installs with no index at all and refuses any file whose hash is not listed.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import subprocess
import sys
import tarfile

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

PLATFORMS = {"x86_64": ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux_2_28_x86_64",
                        "linux_x86_64"),
             "aarch64": ("manylinux_2_17_aarch64", "manylinux2014_aarch64", "manylinux_2_28_aarch64",
                         "linux_aarch64")}
PYTHONS = ("3.11", "3.13")
SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEFT_OUT = {".git", ".venv", "build", "__pycache__", ".pytest_cache"}


def pins(name: str = "gcsguard") -> dict[str, str]:
    """Every distribution `name` needs at run time, at the version installed here."""
    found: dict[str, str] = {}
    todo = [Requirement(name)]
    while todo:
        requirement = todo.pop()
        key = canonicalize_name(requirement.name)
        if key in found:
            continue
        dist = metadata.distribution(requirement.name)
        found[key] = dist.version
        for text in dist.requires or []:
            needed = Requirement(text)
            if needed.marker is None or needed.marker.evaluate({"extra": ""}):
                todo.append(needed)
    found.pop(canonicalize_name(name))
    return dict(sorted(found.items()))


def build(out: str, arches: tuple[str, ...] = tuple(PLATFORMS), pythons: tuple[str, ...] = PYTHONS,
          say=print) -> list[str]:
    """Build the bundle; returns what could not be had as a wheel (empty: complete)."""
    wheels = os.path.join(out, "wheels")
    os.makedirs(wheels, exist_ok=True)
    pinned = pins()
    pins_file = os.path.join(out, "pins.txt")
    with open(pins_file, "w") as f:
        f.writelines(f"{name}=={version}\n" for name, version in pinned.items())
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", wheels, SOURCE], check=True)
    missing = []
    for arch in arches:
        for python in pythons:
            platforms = [a for p in PLATFORMS[arch] for a in ("--platform", p)]
            for name, version in pinned.items():
                got = subprocess.run([*pip, "download", "--no-deps", "--only-binary=:all:", "--dest",
                                      wheels, "--python-version", python, "--implementation", "cp",
                                      *platforms, f"{name}=={version}"], capture_output=True, text=True)
                if got.returncode and not _pure_wheel(pip, wheels, name, version):
                    missing.append(f"{name}=={version} ({arch}, Python {python})")
            say(f"wheels for {arch}, Python {python}: done")
    _requirements(out, wheels, pinned)
    _source(os.path.join(out, "gcsguard-src.tar.gz"))
    return missing


def _pure_wheel(pip: list[str], wheels: str, name: str, version: str) -> bool:
    """A package published only as source: built here, good everywhere if pure Python."""
    def pure() -> bool:
        return any(canonicalize_name(parse_wheel_filename(w)[0]) == name and w.endswith("-none-any.whl")
                   for w in os.listdir(wheels) if w.endswith(".whl"))
    if not pure():
        subprocess.run([*pip, "wheel", "--no-deps", "-w", wheels, f"{name}=={version}"],
                       capture_output=True)
    return pure()


def _requirements(out: str, wheels: str, pinned: dict[str, str]) -> None:
    hashes: dict[str, list[str]] = {}
    for name in sorted(os.listdir(wheels)):
        if name.endswith(".whl"):
            dist = canonicalize_name(parse_wheel_filename(name)[0])
            with open(os.path.join(wheels, name), "rb") as f:
                hashes.setdefault(dist, []).append(hashlib.sha256(f.read()).hexdigest())
    with open(os.path.join(out, "requirements.txt"), "w") as f:
        for name, version in pinned.items():
            f.write(f"{name}=={version} " + " ".join(f"--hash=sha256:{h}" for h in hashes.get(name, []))
                    + "\n")


def _source(path: str) -> None:
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if LEFT_OUT & set(info.name.split("/")) else info
    with tarfile.open(path, "w:gz") as tar:
        tar.add(SOURCE, arcname="gcsguard", filter=keep)
