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
    POLICY_KEY,
    ServeOptions,
    panel_arguments,
    serve_apps,
    serve_options,
)

__all__ = [
    "POLICY_KEY",
    "AccessPolicy",
    "CredentialsFile",
    "ServeOptions",
    "add_user",
    "hash_password",
    "load_credentials",
    "panel_arguments",
    "serve_apps",
    "serve_options",
    "verify_password",
]
