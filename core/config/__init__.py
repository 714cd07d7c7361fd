"""The hub's configuration: one typed model, loaded once from TOML and passed in.

Discovery order: ``--config FILE``, else ``$PDH_CONFIG``, else ``./pdh.toml``, else
``pdh.toml`` in the user config dir (platformdirs). Every key is optional. An unknown
key or a bad value raises :class:`ConfigError`, whose message names the file, the key
and what is allowed. Relative paths resolve against the config file's folder.

By role: :mod:`~core.config.model` (the sections and :class:`Config`),
:mod:`~core.config.loading` (discovery, TOML, overrides, error messages).
"""

from core.config.loading import (
    CONFIG_FILENAME,
    ENV_CONFIG,
    ConfigError,
    LoadedConfig,
    Override,
    discover_config_file,
    load_config,
    parse_config,
    user_config_file,
)
from core.config.model import (
    APP_AUTHOR,
    APP_NAME,
    DEFAULT_INDEXES,
    AlertsConfig,
    ApiConfig,
    Config,
    DashboardConfig,
    DatabaseConfig,
    DemoConfig,
    EmailConfig,
    FreshnessConfig,
    HealConfig,
    IndexSpec,
    LogConfig,
    StateConfig,
    StoreConfig,
    UiConfig,
    VerifyConfig,
    WatchConfig,
    WebhookConfig,
    default_indexes,
    legacy_dirs,
    lock_dir,
)

__all__ = [
    "APP_AUTHOR", "APP_NAME", "CONFIG_FILENAME", "DEFAULT_INDEXES", "ENV_CONFIG",
    "AlertsConfig", "ApiConfig", "Config", "ConfigError", "DashboardConfig", "DatabaseConfig",
    "DemoConfig", "EmailConfig", "FreshnessConfig", "HealConfig", "IndexSpec", "LoadedConfig",
    "LogConfig", "Override", "StateConfig", "StoreConfig", "UiConfig", "VerifyConfig",
    "WatchConfig", "WebhookConfig", "default_indexes", "discover_config_file", "legacy_dirs",
    "load_config", "lock_dir", "parse_config", "user_config_file",
]
