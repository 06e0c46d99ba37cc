"""Parsing the TOML file into `Config`, reporting every error at once.

Each error names the file, the key (`[section] key`) and why. Nothing is applied
unless everything is valid: the caller gets a whole `Config` or a `ConfigError`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import tomllib
import typing
from typing import Any, Literal, Mapping, get_args, get_origin

from .schema import Config, Secret, cross_check

DEFAULT_PATH = "/etc/gcsguard/gcsguard.toml"


class ConfigError(Exception):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def load_config(path: str = DEFAULT_PATH, environ: Mapping[str, str] = os.environ) -> Config:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read: {e.strerror}"]) from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from None
    errors: list[str] = []
    base = os.path.dirname(os.path.abspath(path))
    sections: dict[str, Any] = {}
    hints = typing.get_type_hints(Config)
    for name, value in doc.items():
        if name not in hints or name in ("path", "sha256"):
            errors.append(f"{path}: [{name}]: unknown section")
        elif not isinstance(value, dict):
            errors.append(f"{path}: {name}: must be a [{name}] table")
        else:
            sections[name] = _section(hints[name], value, f"{path}: [{name}]", base, environ, errors)
    if not errors:
        errors += [f"{path}: {e}" for e in cross_check(sections)]
    if errors:
        raise ConfigError(errors)
    return Config(**sections, path=os.path.abspath(path), sha256=hashlib.sha256(data).hexdigest())


def _section(cls: type, table: dict[str, Any], where: str, base: str,
             environ: Mapping[str, str], errors: list[str]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in table.items():
        name, how = _secret_key(key, fields)
        f = fields.get(name)
        if f is None:
            errors.append(f"{where} {key}: unknown key (known: {', '.join(sorted(fields))})")
        elif f.metadata.get("secret") and how is None:
            errors.append(f"{where} {key}: secrets are not accepted inline; "
                          f"use {key}_file = \"/path\" or {key}_env = \"VARIABLE\"")
        elif how is not None:
            secret = _read_secret(key, value, how, base, environ)
            if isinstance(secret, str):
                errors.append(f"{where} {key}: {secret}")
            else:
                values[name] = secret
        else:
            checked = _convert(value, hints[name], f.metadata, base)
            if isinstance(checked, _Bad):
                errors.append(f"{where} {key}: {checked.why}")
            else:
                values[name] = checked
    return cls(**values)


def _secret_key(key: str, fields: dict[str, dataclasses.Field]) -> tuple[str, str | None]:
    for suffix in ("_file", "_env"):
        name = key.removesuffix(suffix)
        if name != key and name in fields and fields[name].metadata.get("secret"):
            return name, suffix[1:]
    return key, None


def _read_secret(key: str, value: Any, how: str, base: str, environ: Mapping[str, str]) -> Secret | str:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if how == "env":
        if value not in environ:
            return f"environment variable {value} is not set"
        return Secret(environ[value], f"${value}")
    path = os.path.join(base, value)
    try:
        with open(path) as f:
            return Secret(f.read().strip(), path)
    except OSError as e:
        return f"cannot read {path}: {e.strerror}"


@dataclasses.dataclass
class _Bad:
    why: str


def _convert(value: Any, hint: Any, meta: Mapping[str, Any], base: str) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        choices = get_args(hint)
        return value if value in choices else _Bad(f"{value!r} is not one of {', '.join(map(repr, choices))}")
    if origin is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return _Bad("must be a list of strings")
        value = tuple(os.path.join(base, v) for v in value) if meta.get("path") else tuple(value)
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _Bad(f"must be a number, not {type(value).__name__}")
        value = float(value)
    elif hint in (int, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            return _Bad(f"must be {hint.__name__}, not {type(value).__name__}")
        if hint is str and meta.get("path") and value:
            value = os.path.join(base, value)
    check = meta.get("check")
    why = check(value) if check else None
    return _Bad(why) if why else value


def describe(config: Config) -> str:
    """The effective configuration as TOML-like text, secrets redacted (for `check`)."""
    lines = [f"# {config.path}  sha256={config.sha256}"]
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        lines.append(f"[{section.name}]")
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            shown = "<redacted>" if isinstance(v, Secret) else repr(list(v) if isinstance(v, tuple) else v)
            lines.append(f"{f.name} = {shown}")
    return "\n".join(lines)
