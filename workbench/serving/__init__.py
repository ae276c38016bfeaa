"""Serving the dashboards: ``panel serve`` with safe defaults, authentication and roles."""

from workbench.serving.access import (
    AccessPolicy,
    CredentialsFile,
    add_user,
    hash_password,
    load_credentials,
    verify_password,
)
from workbench.serving.server import (
    SERVED_KEY,
    Served,
    ServeOptions,
    current_viewer,
    panel_arguments,
    serve_apps,
    serve_options,
)

__all__ = [
    "SERVED_KEY",
    "AccessPolicy",
    "CredentialsFile",
    "ServeOptions",
    "Served",
    "add_user",
    "current_viewer",
    "hash_password",
    "load_credentials",
    "panel_arguments",
    "serve_apps",
    "serve_options",
    "verify_password",
]
