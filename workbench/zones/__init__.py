"""The zones a dataset moves through: landing -> validated | quarantine -> lake -> curated."""

from workbench.zones.curated import build_curated
from workbench.zones.joins import derive_columns
from workbench.zones.landing import Batch, land, list_batches
from workbench.zones.promote import Promotion, promote_batch
from workbench.zones.tables import read_dataset, table_path
from workbench.zones.verify import Verification, verify_lake

__all__ = [
    "Batch",
    "Promotion",
    "Verification",
    "build_curated",
    "derive_columns",
    "land",
    "list_batches",
    "promote_batch",
    "read_dataset",
    "table_path",
    "verify_lake",
]
