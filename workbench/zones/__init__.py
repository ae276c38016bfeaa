"""The zones a dataset moves through: landing -> validated | quarantine -> lake -> curated."""

from workbench.zones.curated import build_curated
from workbench.zones.joins import derive_columns
from workbench.zones.landing import Batch, land, list_batches
from workbench.zones.promote import BATCH_COLUMN, REASONS, Promotion, promote_batch
from workbench.zones.quarantine import batch_balance, quarantined, quarantined_rows
from workbench.zones.tables import read_dataset, table_path

__all__ = [
    "BATCH_COLUMN",
    "REASONS",
    "Batch",
    "Promotion",
    "build_curated",
    "derive_columns",
    "land",
    "list_batches",
    "promote_batch",
    "batch_balance",
    "quarantined",
    "quarantined_rows",
    "read_dataset",
    "table_path",
]
