"""The OpenAPI 3.1 description of the prediction API, with the champion's inputs as the request schema.

It describes ``/predict`` and the other routes, and the Open Inference Protocol's ``/v2`` routes (``v2``).
"""

from __future__ import annotations

from typing import Any

from {{ cookiecutter.package_name }}.serving.model import Model
from {{ cookiecutter.package_name }}.serving.tensors import DATATYPES, output_names

PACKAGE = __name__.split(".", 1)[0]


def document(model: Model) -> dict[str, Any]:
    """A static OpenAPI 3.1 description of the server, with the model's inputs as the request schema."""
    types = {"integer": {"type": "integer"}, "number": {"type": "number"}}
    properties: dict[str, Any] = {}
    for feature in model.inputs:
        spec: dict[str, Any] = dict(types.get(feature.type, {"type": "string"}))
        if feature.type == "category":
            spec["examples"] = sorted(feature.categories)
            spec["description"] = "known categories: " + ", ".join(sorted(feature.categories))
        if feature.nullable:
            spec["type"] = [spec["type"], "null"]
        properties[feature.name] = spec
    record = {
        "type": "object",
        "properties": properties,
        "required": [f.name for f in model.inputs],
        "additionalProperties": False,
    }
    if model.task == "classification":
        prediction: dict[str, Any] = {
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": model.classes},
                "probabilities": {
                    "type": "object",
                    "properties": {c: {"type": "number"} for c in model.classes},
                },
            },
        }
    else:
        prediction = {"type": "object", "properties": {"value": {"type": "number"}}}
    error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    plain = {"200": {"description": "OK"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{PACKAGE} model server", "version": model.version},
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict a batch of instances (records or rows).",
                    "parameters": [
                        {
                            "name": "X-Request-ID",
                            "in": "header",
                            "description": (
                                "Echoed in the response (header and request_id); one is made up when absent. "
                                "Logged predictions carry it: join labels on it and the instance's index."
                            ),
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "X-Route-Key",
                            "in": "header",
                            "description": "In an A/B split, requests with the same key go to the same model.",
                            "schema": {"type": "string"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {
                                            "type": "object",
                                            "properties": {
                                                "instances": {"type": "array", "items": record, "minItems": 1}
                                            },
                                            "required": ["instances"],
                                        },
                                        {
                                            "type": "object",
                                            "properties": {
                                                "columns": {"type": "array", "items": {"type": "string"}},
                                                "rows": {"type": "array", "items": {"type": "array"}, "minItems": 1},
                                            },
                                            "required": ["rows"],
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "One prediction per instance, in order.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "predictions": {"type": "array", "items": prediction},
                                            "model_version": {"type": "string"},
                                            "request_id": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        },
                        "400": {"description": "Invalid request.", "content": error_ref},
                        "413": {"description": "Body too large.", "content": error_ref},
                        "503": {"description": "The model is not ready.", "content": error_ref},
                    },
                }
            },
            "/healthz": {"get": {"summary": "The process is alive.", "responses": plain}},
            "/readyz": {"get": {"summary": "The model passed its self-check.", "responses": plain}},
            "/metadata": {"get": {"summary": "The model's version, lineage and input schema.", "responses": plain}},
            "/metrics": {"get": {"summary": "Prometheus metrics.", "responses": plain}},
            "/openapi.json": {"get": {"summary": "This document.", "responses": plain}},
            **v2_paths(model, error_ref),
        },
        "components": {"schemas": {"Instance": record, "Prediction": prediction, "Error": error}},
    }


def v2_paths(model: Model, error_ref: dict[str, Any]) -> dict[str, Any]:
    """The Open Inference Protocol's routes (``serving/v2.py``; tensor conventions in ``serving/tensors.py``)."""
    obj: dict[str, Any] = {"type": "object"}
    text: dict[str, Any] = {"type": "string"}
    array: dict[str, Any] = {"type": "array"}
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "enum": [PACKAGE]}}
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "description": "A served version: the champion's, or the challenger's while one is served.",
        "schema": text,
    }
    tensor: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": text,
            "datatype": {"type": "string", "enum": sorted(DATATYPES)},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": 2},
            "data": {**array, "description": "Row-major, flat or nested; null for a missing value."},
            "parameters": obj,
        },
        "required": ["name", "datatype", "shape"],
    }
    inputs = {**tensor, "properties": {**tensor["properties"], "name": {"type": "string", "enum": model.names}}}
    request = {
        "type": "object",
        "properties": {
            "id": text,
            "parameters": {**obj, "description": 'content_type "pd" is accepted (the inputs are a table\'s columns).'},
            "inputs": {"type": "array", "items": inputs, "description": "One input per feature, named after it."},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "enum": output_names(model)}, "parameters": obj},
                    "required": ["name"],
                },
            },
        },
        "required": ["inputs"],
    }
    response = {
        "type": "object",
        "properties": {"model_name": text, "model_version": text, "id": text, "outputs": {**array, "items": tensor}},
        "required": ["model_name", "id", "outputs"],
    }
    described = {"description": "OK", "content": {"application/json": {"schema": obj}}}
    errors = {
        "404": {"description": "Unknown model or version.", "content": error_ref},
        "503": {"description": "Not ready.", "content": error_ref},
    }
    infer = {
        "post": {
            "summary": "Predict a batch given as one tensor per feature (as /predict: routing, metrics, log).",
            "parameters": [name],
            "requestBody": {"required": True, "content": {"application/json": {"schema": request}}},
            "responses": {
                "200": {"description": "The outputs.", "content": {"application/json": {"schema": response}}},
                "400": {"description": "Invalid request.", "content": error_ref},
                "413": {"description": "Body too large.", "content": error_ref},
                **errors,
            },
        }
    }
    metadata = {"get": {"summary": "The model's inputs, outputs and versions.", "responses": {"200": described}}}
    ready = {"get": {"summary": "The model is ready.", "responses": {"200": described, **errors}}}
    paths: dict[str, Any] = {
        "/v2": {"get": {"summary": "Server metadata (name, version, extensions).", "responses": {"200": described}}},
        "/v2/health/live": {"get": {"summary": "The process is alive.", "responses": {"200": described}}},
        "/v2/health/ready": {"get": {"summary": "The champion is ready.", "responses": {"200": described, **errors}}},
    }
    for base, parameters in (("/v2/models/{name}", [name]), ("/v2/models/{name}/versions/{version}", [name, version])):
        for suffix, operations in (("", metadata), ("/ready", ready), ("/infer", infer)):
            paths[base + suffix] = {
                method: {**operation, "parameters": parameters} for method, operation in operations.items()
            }
    return paths
