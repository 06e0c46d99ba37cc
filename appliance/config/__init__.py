from .load import DEFAULT_PATH, ConfigError, describe, load_config
from .schema import Config, Secret

__all__ = ["DEFAULT_PATH", "Config", "ConfigError", "Secret", "describe", "load_config"]
