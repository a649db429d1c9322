"""The OpenAPI 3.1 description of the prediction API, with the champion's inputs as the request schema."""

from __future__ import annotations

from typing import Any

from {{ cookiecutter.package_name }}.serving.model import Model

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
        },
        "components": {"schemas": {"Instance": record, "Prediction": prediction, "Error": error}},
    }
