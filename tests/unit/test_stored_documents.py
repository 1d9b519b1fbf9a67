"""A stored document's text decodes as `json.loads` decodes it, whatever its spacing,
and text that is not one JSON value fails the same way."""

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pastools_jobs.datasets.records import decode_document

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=10,
)


@given(VALUES, st.sampled_from(["", " ", "\n", "\t "]), st.booleans())
def test_a_document_decodes_as_json_loads_decodes_it(value: Any, space: str, compact: bool) -> None:
    text = space + json.dumps(value, separators=(",", ":") if compact else None) + space

    assert decode_document(text) == json.loads(text)


@pytest.mark.parametrize("text", ['{"a": 1} x', '{"a": 1}{}', "", " ", "{", "\ufeff{}"])
def test_text_that_is_not_one_value_fails_as_json_loads_fails(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)

    with pytest.raises(json.JSONDecodeError) as raised:
        decode_document(text)

    assert str(raised.value) == str(expected.value)
