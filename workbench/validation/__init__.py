"""Row-level validation: the rule registry, vectorised checks, reports."""

from workbench.validation.check import CheckPlan, check_partition, prepare_context
from workbench.validation.report import previous_reports, rule_table
from workbench.validation.rules import RuleContext, cast_columns, evaluate, register

__all__ = [
    "CheckPlan",
    "RuleContext",
    "cast_columns",
    "check_partition",
    "evaluate",
    "prepare_context",
    "previous_reports",
    "register",
    "rule_table",
]
