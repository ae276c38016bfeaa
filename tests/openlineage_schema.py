"""The OpenLineage 2-0-2 RunEvent and the facets the workbench sends, as a JSON Schema.

openlineage-python 1.54 does not ship the spec's JSON files (only the attrs classes generated
from them), and no package on the registries we may use carries them, so this is a transcription
of what the spec requires: the event's required fields and enum, UUID run ids, URI producers and
schema URLs, the base facet's ``_producer`` and ``_schemaURL`` on every facet, and the fields each
facet we emit requires (SchemaDatasetFacet 1-2-0, ColumnLineageDatasetFacet 1-2-0,
ParentRunFacet 1-2-0, ErrorMessageRunFacet 1-0-1, ProcessingEngineRunFacet 1-1-1,
JobTypeJobFacet 2-0-4).
"""

from __future__ import annotations

URI = {"type": "string", "format": "uri"}
UUID = {"type": "string", "format": "uuid"}
NAME = {"type": "string", "minLength": 1}


def _facet(required: list[str], properties: dict, schema_name: str) -> dict:
    return {
        "type": "object",
        "required": ["_producer", "_schemaURL", *required],
        "properties": {
            "_producer": URI,
            "_schemaURL": {**URI, "pattern": f"#/\\$defs/{schema_name}$"},
            **properties,
        },
    }


BASE_FACET = {
    "type": "object",
    "required": ["_producer", "_schemaURL"],
    "properties": {"_producer": URI, "_schemaURL": URI},
}
SCHEMA_FIELD = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": NAME, "type": {"type": "string"}, "fields": {"type": "array"}},
}
INPUT_FIELD = {
    "type": "object",
    "required": ["namespace", "name", "field"],
    "properties": {
        "namespace": NAME,
        "name": NAME,
        "field": NAME,
        "transformations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"enum": ["DIRECT", "INDIRECT"]},
                    "subtype": {"type": "string"},
                    "description": {"type": "string"},
                },
            },
        },
    },
}
DATASET_FACETS = {
    "type": "object",
    "additionalProperties": BASE_FACET,
    "properties": {
        "schema": _facet(
            ["fields"],
            {"fields": {"type": "array", "items": SCHEMA_FIELD}},
            "SchemaDatasetFacet",
        ),
        "columnLineage": _facet(
            ["fields"],
            {
                "fields": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["inputFields"],
                        "properties": {"inputFields": {"type": "array", "items": INPUT_FIELD}},
                    },
                }
            },
            "ColumnLineageDatasetFacet",
        ),
    },
}
DATASET = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {"namespace": NAME, "name": NAME, "facets": DATASET_FACETS},
}
JOB_REF = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {"namespace": NAME, "name": NAME},
}
RUN_REF = {"type": "object", "required": ["runId"], "properties": {"runId": UUID}}
RUN_FACETS = {
    "type": "object",
    "additionalProperties": BASE_FACET,
    "properties": {
        "parent": _facet(
            ["run", "job"],
            {
                "run": RUN_REF,
                "job": JOB_REF,
                "root": {
                    "type": "object",
                    "required": ["run", "job"],
                    "properties": {"run": RUN_REF, "job": JOB_REF},
                },
            },
            "ParentRunFacet",
        ),
        "errorMessage": _facet(
            ["message", "programmingLanguage"],
            {"message": {"type": "string"}, "programmingLanguage": {"type": "string"}},
            "ErrorMessageRunFacet",
        ),
        "processing_engine": _facet(
            ["version"],
            {"version": {"type": "string"}, "name": {"type": "string"}},
            "ProcessingEngineRunFacet",
        ),
    },
}
JOB_FACETS = {
    "type": "object",
    "additionalProperties": BASE_FACET,
    "properties": {
        "jobType": _facet(
            ["processingType", "integration"],
            {
                "processingType": {"enum": ["BATCH", "STREAMING"]},
                "integration": {"type": "string"},
                "jobType": {"type": "string"},
            },
            "JobTypeJobFacet",
        )
    },
}
RUN_EVENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": URI,
        "schemaURL": {**URI, "pattern": "/spec/2-0-2/OpenLineage.json#/\\$defs/RunEvent$"},
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "run": {
            "type": "object",
            "required": ["runId"],
            "properties": {"runId": UUID, "facets": RUN_FACETS},
        },
        "job": {
            "type": "object",
            "required": ["namespace", "name"],
            "properties": {"namespace": NAME, "name": NAME, "facets": JOB_FACETS},
        },
        "inputs": {"type": "array", "items": DATASET},
        "outputs": {"type": "array", "items": DATASET},
    },
}
