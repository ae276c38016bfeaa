"""The zones a dataset moves through: landing -> validated | quarantine -> lake -> curated."""

from __future__ import annotations

from workbench.lazy import lazy_exports

# Resolved on first use, so importing the package stays cheap (see workbench/lazy.py).
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".curated": ("build_curated",),
        ".joins": ("derive_columns",),
        ".landing": (
            "Batch",
            "land",
            "list_batches",
        ),
        ".promote": (
            "Promotion",
            "promote_batch",
        ),
        ".promote_rows": (
            "BATCH_COLUMN",
            "REASONS",
        ),
        ".quarantine": (
            "batch_balance",
            "quarantined",
            "quarantined_rows",
        ),
        ".tables": (
            "read_dataset",
            "table_path",
        ),
        ".verify": (
            "Verification",
            "verify_lake",
        ),
    },
)
