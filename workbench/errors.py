"""One exception hierarchy for the workbench.

Every message names the thing at fault (dataset, file, key path, step) and says what to do.
The CLI maps the classes to exit codes: data failures 1, usage and catalog errors 2, runtime 3.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""

    exit_code = 3


class CatalogError(WorkbenchError):
    """The catalog file cannot be read or does not describe a valid pipeline."""

    exit_code = 2


class DatasetNotFound(CatalogError):
    """A name does not match any dataset, feature set, cube or model in the catalog."""


class WorkspaceError(WorkbenchError):
    """A path leaves the workspace, or a stored output is missing or unreadable."""

    exit_code = 2


class CubeError(WorkbenchError):
    """A cube cannot be built or queried as asked: an unknown cube, measure or level, levels
    the data does not nest, or more cells than the configured limit."""

    exit_code = 2


class CubeNotFound(DatasetNotFound, CubeError):
    """No cube of that name in the catalog (a DatasetNotFound, so one except catches names)."""


class ValidationFailed(WorkbenchError):
    """A batch failed its rules past the threshold the catalog allows."""

    exit_code = 1


class ClusterError(WorkbenchError):
    """A Dask cluster could not be started or reached."""


class ProfileError(ClusterError):
    """A cluster profile is unknown, or its settings are missing or invalid."""

    exit_code = 2


class StepFailed(WorkbenchError):
    """A pipeline step raised; the run store holds the record."""


class ServeError(WorkbenchError):
    """The dashboards cannot be served as asked: options that do not fit, a bad credentials file."""

    exit_code = 2


class ModelNotFound(WorkbenchError):
    """No registered model (or model version) under that name."""

    exit_code = 2


class FeatureNotKnown(WorkbenchError):
    """A record names a feature the model was not trained on."""

    exit_code = 2


class SigningKeyError(WorkbenchError):
    """The signing key is missing, too short, or its file is open to others."""

    exit_code = 2


class TargetLocked(WorkbenchError):
    """Another process is writing the same target (its run, pid, host and start are named)."""


class SignatureError(WorkbenchError):
    """An artifact (model version, compiled forest, checkpoint) is unsigned or its signature
    does not match: it is refused rather than loaded."""
