"""Training data is checked against the published test split by content, whatever its labels say:
a test record relabelled `train` under a new content hash is refused by every writer (stage files,
phase-A blocks, preference pairs, KTO rows), nothing is written; the published train split itself
passes, and a single assistant turn shared with a test record (templated data) does not count."""

from __future__ import annotations

import copy
import json

import pytest

from pixel_assets.lib import contract
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.storage import LocalDataRoot
from pixel_assets.lib.training.content_guard import TestContent, TestSplitLeak, refuse_test_content
from pixel_assets.lib.training.plan import read_published_split
from pixel_assets.lib.training.preference import DATA_PREFIX, FILES, PreferenceData, kto_rows, write_preference_data
from pixel_assets.lib.training.stage_data import StageData, assert_no_test_records, stage_keys, write_stage_data
from pixel_assets_tests import test_gates_helpers as h


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A data root with a published dataset (the real pipeline code, a few records per family)."""
    root = LocalDataRoot(tmp_path_factory.mktemp("published"))
    registry = load_registry()
    h.build_clean_dataset(root, registry, records=h.clean_records(registry, per_family=6))
    splits = {s: read_published_split(root, s) for s in ("train", "val", "test")}
    assert len(splits["test"]) >= 5
    return root, splits


def relabelled(record: dict) -> dict:
    """A test record disguised as train: label `train`, holdout `none`, and a new content hash (a
    changed system prompt and extra spaces in its assistant turn, so the hash recomputed from its
    messages is new too)."""
    out = copy.deepcopy(record)
    out["messages"][0]["content"] = "You are a kind and careful counselor."
    out["messages"][-1]["content"] = "  " + out["messages"][-1]["content"].replace(" ", "  ") + "\n"
    out["metadata"].update(split="train", holdout="none", content_hash=contract.content_hash(out["messages"]))
    assert out["metadata"]["content_hash"] != record["metadata"]["content_hash"]
    return out


def pair_of(record: dict) -> dict:
    messages = record["messages"]
    return {"prompt": messages[:-1], "chosen": [messages[-1]],
            "rejected": [{"role": "assistant", "content": "A worse answer."}],
            "metadata": {"source": "stage_data", "content_hash": record["metadata"]["content_hash"], "split": "train"}}


def test_a_relabelled_test_record_is_refused_by_the_stage_writer(published, tmp_path):
    root, splits = published
    planted = relabelled(splits["test"][0])
    assert_no_test_records([planted], "stage2", "train")  # the label guard alone lets it through
    clean = StageData(train=splits["train"], val=splits["val"], stats={})
    write_stage_data(root, "stage_clean", clean)  # the published train/val splits pass
    leaky = StageData(train=[*splits["train"], planted], val=splits["val"], stats={})
    with pytest.raises(TestSplitLeak, match=r"train.jsonl line \d+: the content of test record sha256:") as err:
        write_stage_data(root, "stage_leaky", leaky)
    assert splits["test"][0]["metadata"]["content_hash"][:23] in str(err.value)
    assert planted["messages"][-1]["content"].split()[0] not in str(err.value)  # a hash, never text
    assert not (root.path / stage_keys("stage_leaky")["train"]).exists()


def test_a_phase_a_block_holding_a_test_record_is_refused(published):
    root, splits = published
    texts = [r["messages"][-1]["content"] for r in splits["train"][:3]]
    test_record = splits["test"][1]
    block = "\n\n".join([texts[0], test_record["messages"][1]["content"], test_record["messages"][2]["content"],
                         texts[1]])
    line = {"text": block, "metadata": {"source_family": "x", "content_hashes": [], "split": "train", "tokens": 1}}
    clean = {"text": "\n\n".join(texts), "metadata": {"content_hashes": [], "split": "train"}}
    write_stage_data(root, "pretrained_clean", StageData(train=[clean], val=[], stats={}))
    with pytest.raises(TestSplitLeak, match="pretrained"):
        write_stage_data(root, "pretrained_leaky", StageData(train=[clean, line], val=[], stats={}))


def test_preference_pairs_and_kto_rows_of_a_test_record_are_refused(published):
    root, splits = published
    planted = pair_of(relabelled(splits["test"][2]))
    clean = [pair_of(r) for r in splits["train"][:5]]
    write_preference_data(root, PreferenceData(train=clean, val=[], kto_train=kto_rows(clean), kto_val=[]))
    for field in ("train", "kto_train"):
        data = PreferenceData(train=clean, val=[], kto_train=kto_rows(clean), kto_val=[])
        setattr(data, field, [*getattr(data, field), *([planted] if field == "train" else kto_rows([planted]))])
        with pytest.raises(TestSplitLeak, match=f"{FILES[field]} line"):
            write_preference_data(root, data, prefix=f"{DATA_PREFIX}_{field}")
        assert not (root.path / f"{DATA_PREFIX}_{field}").exists()
    # and a pair labelled test is refused by its label (preference files had no guard on write)
    labelled = pair_of(splits["train"][0]) | {"metadata": {"split": "test"}}
    with pytest.raises(TestSplitLeak, match="labelled test"):
        write_preference_data(root, PreferenceData(train=[labelled], val=[], kto_train=[], kto_val=[]),
                              prefix=f"{DATA_PREFIX}_labelled")


def test_a_shared_single_turn_is_not_a_whole_record():
    def conv(*answers):
        messages = [{"role": "system", "content": "s"}]
        for i, a in enumerate(answers):
            messages += [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": a}]
        return {"messages": messages, "metadata": {"content_hash": contract.content_hash(messages), "split": "train"}}

    test = TestContent.from_records([conv("That sounds hard.", "What helped last time?")])
    assert test.match(conv("That sounds hard.", "Tell me more.")) is None  # templated turn, other record
    assert test.match(conv("That sounds hard.")) is None
    copy_ = conv("That  sounds hard.", "what helped LAST time?")
    copy_["messages"][1]["content"] = "another question"  # new hash, same whole assistant text
    assert test.match(copy_) is not None
    refuse_test_content(LocalDataRoot("/nonexistent"), {"train.jsonl": [conv("Tell me more.")]}, "stage", test=test)
    # phase A: the record's text in a row is the record; its turns scattered among others are not
    in_a_row = "Other text.\n\nquestion 0\n\nThat sounds hard.\n\nquestion 1\n\nWhat helped last time?\n\nMore."
    scattered = "question 0\n\nThat sounds hard.\n\nOther text.\n\nquestion 1\n\nWhat helped last time?"
    assert test.match({"text": in_a_row}) is not None and test.match({"text": scattered}) is None


def test_nothing_published_means_only_labels_are_checked(tmp_path):
    root = LocalDataRoot(tmp_path)
    write_stage_data(root, "s", StageData(train=[{"messages": [], "metadata": {"split": "train"}}], val=[], stats={}))
    assert json.loads((tmp_path / stage_keys("s")["stats"]).read_text()) == {}
