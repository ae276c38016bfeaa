"""OpenLineage run events for ``workbench run``, so Marquez or DataHub users see its jobs.

One parent run for the whole ``workbench run`` and, inside it, a START and a COMPLETE or FAIL
event per step (job namespace ``workbench.openlineage.namespace``, job name the step name).
Inputs and outputs are the step's datasets, named as the lineage names them (``lake/flights``)
in the namespace ``file://<workspace>``, with the table's schema (from its Delta log) and the
column lineage the catalog declares. Events go to ``<workspace>/lineage/openlineage.jsonl`` by
default, or to ``workbench.openlineage.url`` over HTTP; an API key only ever comes from the
``OPENLINEAGE_API_KEY`` environment variable, never from a file in the repository.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deltalake import DeltaTable
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    error_message_run,
    job_type_job,
    parent_run,
    processing_engine_run,
    schema_dataset,
)

from workbench import config
from workbench.catalog.models import Catalog
from workbench.io.workspace import Workspace
from workbench.pipeline.lineage_columns import column_lineage
from workbench.pipeline.steps import Step, StepResult

log = logging.getLogger(__name__)
Listener = Callable[[str, Step, StepResult | None], None]
API_KEY_VARIABLE = "OPENLINEAGE_API_KEY"
PARENT_JOB = "pipeline"
# Zones stored as Delta tables: their schema facet comes from the table itself.
DELTA_ZONES = ("lake", "quarantine", "curated", "features", "predictions")


def openlineage_client(ws: Workspace) -> OpenLineageClient | None:
    """A client for the configured transport, None when ``workbench.openlineage.enabled`` is
    false: HTTP to ``workbench.openlineage.url`` when set, else a JSON-lines file."""
    if not config.get("openlineage.enabled"):
        return None
    url = config.get("openlineage.url")
    if url:
        transport: dict[str, Any] = {
            "type": "http",
            "url": url,
            "endpoint": config.get("openlineage.endpoint"),
            "timeout": float(config.get("openlineage.timeout")),
        }
        if os.environ.get(API_KEY_VARIABLE):
            transport["auth"] = {"type": "api_key", "apiKey": os.environ[API_KEY_VARIABLE]}
    else:
        path = Path(config.get("openlineage.file") or ws.path("lineage", "openlineage.jsonl"))
        path.parent.mkdir(parents=True, exist_ok=True)
        transport = {"type": "file", "log_file_path": str(path), "append": True}
    return OpenLineageClient(config={"transport": transport})


def lineage_listener(
    catalog: Catalog, ws: Workspace, run_id: str, steps: list[Step], on_step: Listener | None
) -> Listener | None:
    """``on_step`` with OpenLineage events added (unchanged when they are turned off); the
    parent run starts now and ends with the last step, or with the first that fails."""
    client = openlineage_client(ws)
    if client is None:
        return on_step
    emitter = RunEmitter(catalog, ws, run_id, [s.name for s in steps], client)
    emitter.start()

    def listener(event: str, step: Step, result: StepResult | None) -> None:
        emitter.on_step(event, step, result)
        if on_step:
            on_step(event, step, result)

    return listener


def run_uuid(run_id: str, step: str | None = None) -> str:
    """A stable OpenLineage run id for a workbench run (or one step of it): the same run
    always gets the same UUID, so events can be matched with the run store."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"workbench:{run_id}:{step or ''}"))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _producer() -> str:
    from workbench import __version__

    return config.get("openlineage.producer") or f"urn:workbench:{__version__}"


class RunEmitter:
    """The events of one ``workbench run``: the parent run and each of its steps."""

    def __init__(
        self, catalog: Catalog, ws: Workspace, run_id: str, steps: list[str], client
    ) -> None:
        self.catalog, self.ws, self.run_id, self.client = catalog, ws, run_id, client
        self.pending = list(steps)
        self.namespace = config.get("openlineage.namespace")

    def start(self) -> None:
        self._emit(self._parent_event(RunState.START))

    def on_step(self, event: str, step: Step, result: StepResult | None) -> None:
        failed = result is not None and result.status == "failed"
        state = (
            RunState.START if event == "start" else RunState.FAIL if failed else RunState.COMPLETE
        )
        self._emit(self._step_event(state, step, result))
        if event == "end":
            self.pending.remove(step.name)
            if failed or not self.pending:  # the runner stops at the first failure
                self._emit(self._parent_event(state, result.error if failed else None))

    def _emit(self, event: RunEvent) -> None:
        # Lineage reports on the pipeline; an unreachable Marquez must not fail the run.
        try:
            self.client.emit(event)
        except Exception as exc:
            log.warning("OpenLineage event for %s not sent: %s", event.job.name, exc)

    def _parent_event(self, state: RunState, error: str | None = None) -> RunEvent:
        facets = _run_facets(error)
        job = Job(self.namespace, PARENT_JOB, facets={"jobType": _job_type("PIPELINE")})
        run = Run(run_uuid(self.run_id), facets=facets)
        return RunEvent(eventType=state, eventTime=_now(), run=run, job=job, producer=_producer())

    def _step_event(self, state: RunState, step: Step, result: StepResult | None) -> RunEvent:
        parent = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run_uuid(self.run_id)),
            job=parent_run.Job(namespace=self.namespace, name=PARENT_JOB),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=run_uuid(self.run_id)),
                job=parent_run.RootJob(namespace=self.namespace, name=PARENT_JOB),
            ),
        )
        facets = {"parent": parent, **_run_facets(result.error if result else None)}
        reads, writes = step.datasets(self.catalog)
        done = state != RunState.START
        return RunEvent(
            eventType=state,
            eventTime=_now(),
            run=Run(run_uuid(self.run_id, step.name), facets=facets),
            job=Job(self.namespace, step.name, facets={"jobType": _job_type("STEP")}),
            inputs=[InputDataset(*self._ref(r), facets=self._facets(r)) for r in reads],
            outputs=[
                OutputDataset(*self._ref(w), facets=self._facets(w, columns=done)) for w in writes
            ],
            producer=_producer(),
        )

    def _ref(self, node: str) -> tuple[str, str]:
        return dataset_ref(self.catalog, self.ws, node)

    def _facets(self, node: str, *, columns: bool = False) -> dict[str, Any]:
        facets: dict[str, Any] = {}
        fields = _schema_fields(self.catalog, self.ws, node)
        if fields:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields)
        lineage = self._column_lineage(node) if columns else None
        if lineage:
            facets["columnLineage"] = lineage
        return facets

    def _column_lineage(self, node: str) -> column_lineage_dataset.ColumnLineageDatasetFacet | None:
        fields = {}
        for column, lin in column_lineage(self.catalog, node).items():
            inputs = [
                column_lineage_dataset.InputField(
                    *self._ref(src.dataset),
                    field=src.column,
                    transformations=[
                        column_lineage_dataset.Transformation(
                            type="DIRECT", subtype=lin.subtype, description=lin.how
                        )
                    ],
                )
                for src in lin.sources
            ]
            if inputs:
                fields[column] = column_lineage_dataset.Fields(inputFields=inputs)
        return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields) if fields else None


def dataset_ref(catalog: Catalog, ws: Workspace, node: str) -> tuple[str, str]:
    """(namespace, name) of a dataset: ``file://<workspace>`` and its lineage name for what the
    workbench stores; for source files, the scheme and host of their path and the rest."""
    zone, name = node.split("/", 1)
    if zone != "source":
        return f"file://{ws.root}", node
    path = catalog.datasets[name].source.path
    if "://" in path:
        scheme, rest = path.split("://", 1)
        host, _, tail = rest.partition("/")
        return f"{scheme}://{host}", tail
    base = catalog.path.parent if catalog.path else Path.cwd()
    return "file", str((base / path).resolve())


def _schema_fields(catalog: Catalog, ws: Workspace, node: str) -> list:
    zone, name = node.split("/", 1)
    if zone in DELTA_ZONES:
        path = str(ws.path(zone, name))
        if DeltaTable.is_deltatable(path):
            return [
                schema_dataset.SchemaDatasetFacetFields(
                    name=f.name, type=str(getattr(f.type, "type", f.type))
                )
                for f in DeltaTable(path).schema().fields
            ]
    if zone in ("source", "landing") and name in catalog.datasets:
        declared = catalog.datasets[name].schema_
        return [
            schema_dataset.SchemaDatasetFacetFields(name=c, type=t) for c, t in declared.items()
        ]
    return [schema_dataset.SchemaDatasetFacetFields(name=c) for c in column_lineage(catalog, node)]


def _run_facets(error: str | None) -> dict[str, Any]:
    from openlineage.client import __version__ as client_version

    from workbench import __version__

    facets: dict[str, Any] = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=__version__, name="workbench", openlineageAdapterVersion=client_version
        )
    }
    if error:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage="python"
        )
    return facets


def _job_type(kind: str) -> job_type_job.JobTypeJobFacet:
    return job_type_job.JobTypeJobFacet(
        processingType="BATCH", integration="WORKBENCH", jobType=kind
    )
