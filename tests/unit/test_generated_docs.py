"""The docs quote no figure or key by hand: their marked parts are what `make docs` writes from
lifecycle/store/keys.py and bench/results.json (and bench/simulation.json)."""

from __future__ import annotations

import pytest

from lifecycle.store import keys
from local import docs


@pytest.mark.parametrize("path", docs.DOCUMENTS, ids=lambda path: path.name)
def test_the_generated_parts_of_the_docs_are_as_make_docs_writes_them(path):
    text = path.read_text(encoding="utf-8")
    assert docs.rewrite(text) == text, f"{path.name} drifted: run `make docs`"


def test_both_documents_show_the_data_model_and_every_renderer_is_used():
    found = [name for path in docs.DOCUMENTS for name in docs.blocks(path.read_text())]
    assert found.count("keys:data-model") == 2
    assert set(docs.RENDERERS) <= set(found)


def test_every_key_builder_of_the_store_is_in_the_data_model():
    table = keys.data_model_table()
    for prefix in ("ACCOUNT#", "INTEGRATION#", "SETTINGS#", "HISTORY#", "ACTIVITY#", "QUOTE#"):
        assert f"`{prefix}" in table or prefix in table
    for sk in (keys.OUTBOX_PREFIX, keys.CHARGE_PREFIX, keys.USER_PREFIX, keys.RECEIPTS_SK):
        assert sk in table
