"""Compiling a project's JSON Schema (Draft 2020-12) safely and fast.

jsonschema-rs compiles the schema to native code; it is checked when it is set, so a
job never meets an invalid schema. Remote `$ref`s are refused (no network fetches on
a user's behalf) and `pattern`s use a linear-time regex engine.
"""

from typing import Any

import jsonschema_rs

from pastools_jobs.domain import InvalidJobInput


def _no_remote_refs(uri: str) -> Any:
    raise ValueError(f"remote references are not allowed ({uri})")


def compile_schema(schema: Any) -> jsonschema_rs.Draft202012Validator:
    """A validator for `schema`; raises InvalidJobInput naming what is wrong."""
    if not isinstance(schema, dict | bool):
        raise InvalidJobInput("A JSON Schema must be an object or a boolean.")
    try:
        jsonschema_rs.meta.validate(schema)
    except jsonschema_rs.ValidationError as error:
        raise InvalidJobInput(
            f"The JSON Schema is not valid Draft 2020-12: {error.message}"
        ) from None
    try:
        return jsonschema_rs.Draft202012Validator(
            schema,
            retriever=_no_remote_refs,
            pattern_options=jsonschema_rs.RegexOptions(),
            validate_formats=True,
        )
    except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as error:
        first_line = str(error).splitlines()[0]
        raise InvalidJobInput(f"The JSON Schema cannot be used: {first_line}") from None
