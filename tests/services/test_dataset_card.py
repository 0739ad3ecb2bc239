"""The dataset card's split sizes are read by `datasets`, so a copy with rows missing
fails to load."""

from __future__ import annotations

import re

import pytest

from tests.web.exports.helpers import build, create, decided, snapshot, use_export_dir


@pytest.fixture
def built_folder(app, factory, tmp_path):
    use_export_dir(app, tmp_path / "exports")
    factory.queue("support")
    reviewer, ml = factory.user("reviewer"), factory.user("ml")
    decided(app, "support", reviewer, 30, prefix="card")
    snapshot_id = create(app, "support", ml, format="jsonl")
    build(app, snapshot_id)
    return tmp_path / "exports" / snapshot(app, snapshot_id).storage_dir


def _load(datasets_lib, folder, cache_dir):
    return datasets_lib.load_dataset(str(folder), cache_dir=str(cache_dir))


def test_a_card_whose_row_count_disagrees_with_the_files_is_refused(
    built_folder, tmp_path, monkeypatch
):
    datasets_lib = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # As built, the card's counts match the files and the folder loads.
    loaded = _load(datasets_lib, built_folder, tmp_path / "cache-a")
    assert sum(len(split) for split in loaded.values()) == 30

    # Drop the last row of the train file, as a truncated copy would: the card now says more.
    train = built_folder / "data" / "train.jsonl"
    lines = train.read_text().splitlines(keepends=True)
    train.write_text("".join(lines[:-1]))
    card = (built_folder / "README.md").read_text()
    assert re.search(r"- name: train\n    num_bytes: \d+\n    num_examples: \d+", card)
    with pytest.raises(Exception, match="train"):
        _load(datasets_lib, built_folder, tmp_path / "cache-b")
