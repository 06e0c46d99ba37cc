import dataclasses
import os

import pytest

from appliance.config import Config, ConfigError, Secret, describe, load_config

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "appliance", "config", "example.toml")


def write(tmp_path, text):
    p = tmp_path / "g.toml"
    p.write_text(text)
    return str(p)


def test_every_error_at_once_with_file_and_key(tmp_path):
    path = write(tmp_path, """
[appliance]
station = 5
[log]
fsync = "sometimes"
bogus = 1
checkpoint_interval = -1
[metrics]
listen = ["nohost"]
[nope]
""")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    errors = e.value.errors
    assert f"{path}: [appliance] station: must be str, not int" in errors
    assert any(x.startswith(f"{path}: [log] fsync: 'sometimes' is not one of") for x in errors)
    assert any(x.startswith(f"{path}: [log] bogus: unknown key") for x in errors)
    assert f"{path}: [log] checkpoint_interval: must be greater than 0" in errors
    assert any(x.startswith(f"{path}: [metrics] listen: 'nohost' is not host:port") for x in errors)
    assert f"{path}: [nope]: unknown section" in errors
    assert len(errors) == 6


def test_toml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "[log]\nfsync = \n")
    with pytest.raises(ConfigError, match=r"g.toml: not valid TOML: .*line 2"):
        load_config(path)


def test_example_shows_every_key_at_its_default():
    config = load_config(EXAMPLE)
    defaults = Config()
    text = open(EXAMPLE).read()
    for section in dataclasses.fields(Config):
        value = getattr(defaults, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        assert getattr(config, section.name) == value, section.name
        for f in dataclasses.fields(value):
            assert f.name in text, f"example lacks [{section.name}] {f.name}"


def test_relative_paths_resolve_against_the_file(tmp_path):
    config = load_config(write(tmp_path, '[log]\ndirectory = "logs"\n[lists]\nblock = ["l"]\n'))
    assert config.log.directory == str(tmp_path / "logs")
    assert config.lists.block == (str(tmp_path / "l"),)
    assert len(config.sha256) == 64


def test_secrets_from_file_or_env_never_inline(tmp_path):
    (tmp_path / "pass").write_text("hunter2\n")
    config = load_config(write(tmp_path, '[metrics]\nbasic_auth_user = "prom"\n'
                                         'basic_auth_password_file = "pass"\n'))
    assert config.metrics.basic_auth_password.reveal() == "hunter2"
    assert "hunter2" not in repr(config) and "hunter2" not in describe(config)
    assert "<redacted>" in describe(config)
    config = load_config(write(tmp_path, '[metrics]\nbasic_auth_user = "prom"\n'
                                         'basic_auth_password_env = "PROM_PASS"\n'),
                         environ={"PROM_PASS": "s3cret"})
    assert config.metrics.basic_auth_password == Secret("s3cret", "x")
    with pytest.raises(ConfigError, match="secrets are not accepted inline"):
        load_config(write(tmp_path, '[metrics]\nbasic_auth_password = "hunter2"\n'))
    with pytest.raises(ConfigError, match="PROM_PASS is not set"):
        load_config(write(tmp_path, '[metrics]\nbasic_auth_user = "p"\n'
                                    'basic_auth_password_env = "PROM_PASS"\n'), environ={})
    with pytest.raises(ConfigError, match="go together"):
        load_config(write(tmp_path, '[metrics]\nbasic_auth_user = "prom"\n'))
