"""Row-level validation: the rule registry, vectorised checks, reports."""

from __future__ import annotations

from workbench.lazy import lazy_exports

# Resolved on first use, so importing the package stays cheap (see workbench/lazy.py).
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".check": (
            "CheckPlan",
            "check_partition",
            "prepare_context",
        ),
        ".report": (
            "previous_reports",
            "rule_table",
        ),
        ".rules": (
            "RuleContext",
            "cast_columns",
            "evaluate",
            "register",
        ),
    },
)
