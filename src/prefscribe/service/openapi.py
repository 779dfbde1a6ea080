"""The OpenAPI document says what this service really accepts and answers.

FastAPI builds it from the routes and models; this adds what depends on the running settings (the
per-field and per-batch limits) and the ingest body, which the route reads itself (it also takes JSON Lines,
which a schema cannot describe, so the document shows the JSON forms). The schema is a contract both
ways: a body it allows is accepted, a body it refuses is refused (tests/service/test_fuzz.py checks both).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from ..schema import Interaction
from .openai_schemas import ChatCompletionChunk
from .schemas import NOT_BLANK, SHORT_CHARS, STORABLE
from .settings import Settings

INGEST_PATH = "/v1/users/{user_id}/interactions"


def _string(prop: dict) -> dict:
    """The string branch of a property (`str | None` is anyOf [string, null])."""
    if prop.get("type") == "string":
        return prop
    return next(branch for branch in prop.get("anyOf", ()) if branch.get("type") == "string")


def interaction_schema(max_chars: int) -> dict:
    """Interaction's schema with the limits the ingest route applies."""
    schema = copy.deepcopy(Interaction.model_json_schema())
    props = schema["properties"]
    for name, limit in (("context", max_chars), ("chosen", max_chars), ("rejected", max_chars),
                        ("id", SHORT_CHARS), ("domain", SHORT_CHARS), ("timestamp", SHORT_CHARS)):
        _string(props[name]).update(maxLength=limit, pattern=STORABLE)
    props["chosen"]["pattern"] = NOT_BLANK
    props["meta"]["description"] = (f"Any JSON object: at most {max_chars} characters as JSON, nested at most "
                                    "32 deep, numbers of at most 100 characters.")
    return schema


def ingest_body(max_items: int, max_chars: int) -> dict:
    item = interaction_schema(max_chars)
    batch = {"type": "array", "items": item, "minItems": 1, "maxItems": max_items}
    return {
        "required": True,
        "description": "A JSON array of interactions, or an object {idempotency_key, interactions}. JSON Lines "
                       "(one interaction per line) are accepted too.",
        "content": {"application/json": {"schema": {"oneOf": [
            batch,
            {"type": "object", "required": ["interactions"], "additionalProperties": False,
             "properties": {"idempotency_key": {"anyOf": [
                 {"type": "string", "minLength": 1, "maxLength": SHORT_CHARS}, {"type": "null"}]},
                            "interactions": batch}},
        ]}}},
    }


def _limit(components: dict, model: str, field: str, limit: int) -> None:
    _string(components[model]["properties"][field])["maxLength"] = limit


def document(schema: dict[str, Any], settings: Settings, chat_model: str) -> dict[str, Any]:
    components = schema["components"]["schemas"]
    for model, field in (("ChooseIn", "a"), ("ChooseIn", "b"), ("ChooseIn", "context"), ("RespondIn", "context"),
                         ("FeedbackIn", "preferred")):
        _limit(components, model, field, settings.max_field_chars)
    components["ChatIn"]["properties"]["model"]["enum"] = [chat_model]  # the one /v1/models lists
    _, chunk = models_json_schema([(ChatCompletionChunk, "serialization")],
                                  ref_template="#/components/schemas/{model}")
    components.update(chunk["$defs"])  # the stream's events name it; no route returns it as JSON
    _limit(components, "EditIn", "profile", settings.max_profile_chars)
    schema["paths"][INGEST_PATH]["post"]["requestBody"] = ingest_body(settings.max_batch_items,
                                                                      settings.max_field_chars)
    return schema


def install(app: FastAPI, settings: Settings, chat_model: str) -> None:
    """Make app.openapi() return the document for `settings` and the proxy's `chat_model` (built once, on first
    request)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate(), settings, chat_model)
        return app.openapi_schema

    app.openapi = openapi
