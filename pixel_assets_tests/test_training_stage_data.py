"""Stage datasets: weighted mix, length awareness (drop / split at turns), stage-5 packing that never
truncates, phase A blocks, the test-split guard, writers through DataRoot (local and S3) that
`datasets` loads, reproducibility and the data version. Small synthetic records, the tiny tokenizer."""

from __future__ import annotations

import dataclasses
import random

import pytest

from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.storage import LocalDataRoot, S3DataRoot
from pixel_assets.lib.training.curriculum import load_curriculum
from pixel_assets.lib.training.mixing import TOLERANCE
from pixel_assets.lib.training.packing import PackingError, pack_sessions, packed_dataset, template_ids
from pixel_assets.lib.training.stage_data import (
    TestSplitLeak,
    build_stage_data,
    read_stage_lines,
    stage_data_version,
    stage_input_hashes,
    stage_keys,
    write_stage_data,
)
from pixel_assets.lib.training.text_blocks import paragraphs, record_text
from pixel_assets_tests.training_records import SYSTEM, record, records, sentence, tiny_tokenizer

CURRICULUM = load_curriculum(registry=load_registry(), profile="demo")


def stage(name: str, **changes):
    return dataclasses.replace(CURRICULUM.stage(name), **changes)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def stage1_input():
    train = (records("professional_therapeutic", 90) + records("priority_datasets", 40)
             + records("mental_health_datasets", 300) + records("cptsd", 20))
    val = records("professional_therapeutic", 6, "val") + records("mental_health_datasets", 6, "val")
    return train, val


def hashes(lines):
    return [line["metadata"]["content_hash"] for line in lines]


def test_mix_meets_the_weights_by_down_sampling(tok):
    train, val = stage1_input()
    s = stage("stage1_foundation", max_train_records=None, max_val_records=None)
    data = build_stage_data(s, train, val, tok)
    fams = data.stats["families"]
    for f, target in s.families.items():
        assert abs(fams[f]["achieved_weight"] - target) <= TOLERANCE, (f, fams[f])
        assert fams[f]["repeated"] == 0
    # priority_datasets is the scarcest for its weight: used whole; the others sampled down.
    assert fams["priority_datasets"]["selected"] == 40 and fams["mental_health_datasets"]["selected"] == 20
    assert len(set(hashes(data.train))) == len(data.train) == 100
    assert {line["metadata"]["source_family"] for line in data.train} == set(s.families)  # cptsd not in stage 1
    # Token counts are the real tokenizer + template's.
    for f in s.families:
        lines = [line for line in data.train if line["metadata"]["source_family"] == f]
        assert fams[f]["tokens"] == sum(len(ids) for ids in template_ids(tok, [line["messages"] for line in lines]))
    # Validation: the val split of the same families, nothing else.
    assert sorted(hashes(data.val)) == sorted(hashes(val))


def test_mix_oversamples_only_when_the_stage_says_so(tok):
    train, val = stage1_input()
    data = build_stage_data(stage("stage1_foundation", max_train_records=None, oversample=True), train, val, tok)
    fams = data.stats["families"]
    assert fams["mental_health_datasets"]["selected"] == 300 and fams["mental_health_datasets"]["repeated"] == 0
    assert fams["priority_datasets"]["selected"] == 600 and fams["priority_datasets"]["distinct"] == 40
    for f, target in stage("stage1_foundation").families.items():
        assert abs(fams[f]["achieved_weight"] - target) <= TOLERANCE


def test_record_cap_keeps_the_weights(tok):
    train, val = stage1_input()
    data = build_stage_data(stage("stage1_foundation", max_train_records=50), train, val, tok)
    assert len(data.train) == 50
    for f, target in stage("stage1_foundation").families.items():
        assert abs(data.stats["families"][f]["achieved_weight"] - target) <= TOLERANCE


def test_reproducible_with_the_seed_whatever_the_input_order(tok):
    train, val = stage1_input()
    s = stage("stage1_foundation")
    a = build_stage_data(s, train, val, tok)
    shuffled = list(train)
    random.Random(7).shuffle(shuffled)
    b = build_stage_data(s, shuffled, list(reversed(val)), tok)
    assert a.train == b.train and a.val == b.val and a.stats == b.stats
    c = build_stage_data(dataclasses.replace(s, seed=s.seed + 1), train, val, tok)
    assert hashes(c.train) != hashes(a.train)


def long_and_short(n_long: int = 3):
    short = records("cot_reasoning", 20, turns=2, words=6)
    long = [record("cot_reasoning", seed=100 + i, turns=12, words=14) for i in range(n_long)]
    return short, long


def test_overlength_conversations_are_counted_and_dropped_not_cut(tok):
    short, long = long_and_short()
    s = stage("stage2_therapeutic_expertise", max_length=256, max_train_records=None)
    assert all(len(ids) > 256 for ids in template_ids(tok, [r["messages"] for r in long]))
    assert all(len(ids) <= 256 for ids in template_ids(tok, [r["messages"] for r in short]))
    data = build_stage_data(s, short + long, [], tok, min_val_records=0)
    assert data.stats["overlength"] == 3
    assert data.stats["families"]["cot_reasoning"]["overlength_dropped"] == 3
    assert sorted(hashes(data.train)) == sorted(hashes(short))
    by_hash = {r["metadata"]["content_hash"]: r for r in short}
    assert all(line["messages"] == by_hash[line["metadata"]["content_hash"]]["messages"] for line in data.train)


def test_split_windows_keep_the_system_prompt_and_every_turn(tok):
    short, long = long_and_short()
    s = stage("stage2_therapeutic_expertise", max_length=256, max_train_records=None, long_conversations="split")
    data = build_stage_data(s, short + long, [], tok, min_val_records=0)
    fam = data.stats["families"]["cot_reasoning"]
    assert fam["overlength"] == 3 and fam["overlength_split"] == 3 and fam["turns_left_out"] == 0
    for original in long:
        windows = sorted((line for line in data.train if line["metadata"]["content_hash"] == original["metadata"]["content_hash"]),
                         key=lambda line: line["metadata"]["window"]["index"])
        assert len(windows) >= 2 and all(w["metadata"]["window"]["of"] == len(windows) for w in windows)
        assert all(w["messages"][0] == {"role": "system", "content": SYSTEM} for w in windows)
        assert all(w["messages"][1]["role"] == "user" for w in windows)  # cut between exchanges
        assert all(len(ids) <= 256 for ids in template_ids(tok, [w["messages"] for w in windows]))
        assert [t for w in windows for t in w["messages"][1:]] == original["messages"][1:]  # every turn, in order


def sessions(n: int = 30):
    return [record("long_running_therapy", seed=i, turns=1 + (i * 7) % 6, words=12) for i in range(n)]


def test_stage5_packs_whole_sessions_and_never_truncates(tok):
    s = stage("stage5_long_running", max_length=1024, max_train_records=None)
    planted = [record("long_running_therapy", seed=999, turns=30, words=12)]  # ~2,900 tokens
    data = build_stage_data(s, sessions() + planted, [], tok, min_val_records=0)
    assert data.stats["overlength"] == 1 and planted[0]["metadata"]["content_hash"] not in hashes(data.train)
    ids = template_ids(tok, [line["messages"] for line in data.train])
    packed = packed_dataset(ids, s.max_length)
    assert data.stats["packing"]["sequences"] == len(packed) == data.stats["examples"] < len(ids)
    seen = []
    for row in packed:
        assert len(row["input_ids"]) <= s.max_length
        start = 0
        for n in row["seq_lengths"]:
            session = row["session"][start]
            assert set(row["session"][start:start + n]) == {session}
            assert row["input_ids"][start:start + n] == ids[session]  # complete and in order
            assert row["position_ids"][start:start + n] == list(range(n))  # attention stays in the session
            seen.append(session)
            start += n
    assert sorted(seen) == list(range(len(ids)))  # every session exactly once
    # Best-fit decreasing: no two bins could be merged.
    lengths = sorted(len(row["input_ids"]) for row in packed)
    assert lengths[0] + lengths[1] > s.max_length


def test_packing_refuses_what_trl_bfd_would_truncate():
    from datasets import Dataset
    from trl.data_utils import pack_dataset

    too_long = [[1] * 10, [2] * 3]
    trl_packed = pack_dataset(Dataset.from_dict({"input_ids": too_long}), 8, strategy="bfd")
    assert sum(len(r) for r in trl_packed["input_ids"]) < 13  # TRL's bfd cuts silently
    with pytest.raises(PackingError, match="longer than the packing length 8"):
        pack_sessions(too_long, 8)
    assert pack_sessions([[1] * 5, [2] * 3, [3] * 4], 8) == [[0, 1], [2]]


def transcripts(n: int, split: str = "train"):
    out = []
    for i in range(n):
        rng = random.Random(i)
        text = "\n\n".join(" ".join(sentence(rng, 10) for _ in range(rng.randint(1, 4))) for _ in range(12))
        out.append(record("video_transcripts", split, seed=i, text=text))
    return out


def test_phase_a_blocks_fit_the_context_at_paragraph_boundaries(tok):
    s = stage("pretrained", max_length=256, max_train_records=None)
    train = transcripts(4) + records("mental_health_datasets", 40)
    data = build_stage_data(s, train, transcripts(1, "val"), tok)
    assert data.train and data.val
    by_hash = {r["metadata"]["content_hash"]: r for r in train}
    for line in data.train:
        assert len(tok(line["text"], add_special_tokens=False)["input_ids"]) <= s.max_length - 1
        assert line["metadata"]["tokens"] <= s.max_length - 1 and line["metadata"]["split"] == "train"
        source_paragraphs = {p for h in line["metadata"]["content_hashes"] for p in paragraphs(record_text(by_hash[h]))}
        assert set(paragraphs(line["text"])) <= source_paragraphs  # whole paragraphs only
    # Nothing lost: a transcript used in the mix comes back paragraph for paragraph, in order.
    used = {h for line in data.train for h in line["metadata"]["content_hashes"]}
    video_text = [p for line in data.train if line["metadata"]["source_family"] == "video_transcripts"
                  for p in paragraphs(line["text"])]
    expected = [p for r in transcripts(4) if r["metadata"]["content_hash"] in used for p in paragraphs(record_text(r))]
    assert sorted(video_text) == sorted(expected)
    assert data.stats["paragraph_cuts"] == 0
    for f in s.families:
        assert abs(data.stats["families"][f]["achieved_token_weight"] - s.families[f]) <= 0.1


def test_phase_a_paragraph_longer_than_the_context_is_cut_at_sentence_ends_and_counted(tok):
    rng = random.Random(3)
    sentences = [sentence(rng, 10) for _ in range(6)]
    long_paragraph = record("video_transcripts", seed=1, text=" ".join(sentences))
    data = build_stage_data(stage("pretrained", max_length=64, max_train_records=None), [long_paragraph], [], tok, min_val_records=0)
    assert data.stats["paragraph_cuts"] >= 1
    assert " ".join(p for line in data.train for p in paragraphs(line["text"])) == " ".join(sentences)
    assert all(len(tok(line["text"], add_special_tokens=False)["input_ids"]) <= 63 for line in data.train)


def test_no_test_record_reaches_any_stage_file(tok, tmp_path):
    registry_families = {f for st in CURRICULUM.sft_chain() for f in st.families}
    train, val, test = [], [], []
    for fam in sorted(registry_families):
        train += records(fam, 6)
        val += records(fam, 2, "val")
        test += records(fam, 2, "test", words=9)
    train += transcripts(2)
    planted = test + transcripts(1, "test")
    test_hashes = {r["metadata"]["content_hash"] for r in planted}
    root = LocalDataRoot(tmp_path)
    for st in CURRICULUM.sft_chain():
        # the test records are handed in on both sides, as a careless caller might
        data = build_stage_data(st, train + planted, val + planted, tok)
        assert data.stats["test_records_excluded"] == 2 * sum(
            1 for r in planted if r["metadata"]["source_family"] in st.families)
        write_stage_data(root, st.name, data)
        for split in ("train", "val"):
            for line in read_stage_lines(root, st.name, split):
                meta = line["metadata"]
                assert meta["split"] == split
                assert not ({meta.get("content_hash")} | set(meta.get("content_hashes", []))) & test_hashes
    # The writer's own guard: a test line planted after building is refused, nothing is written.
    data = build_stage_data(CURRICULUM.stage("stage7_roleplay"), train, val, tok)
    data.val.append(record("roleplay_simulator", "test", seed=5))
    with pytest.raises(TestSplitLeak, match="stage 'stage7_roleplay' val line"):
        write_stage_data(LocalDataRoot(tmp_path / "other"), "stage7_roleplay", data)
    assert not (tmp_path / "other" / stage_keys("stage7_roleplay")["train"]).exists()


def test_stage_files_load_with_datasets(tok, tmp_path):
    from datasets import load_dataset

    short, long = long_and_short()
    root = LocalDataRoot(tmp_path)
    sft = build_stage_data(stage("stage2_therapeutic_expertise", max_length=256, long_conversations="split",
                                 max_train_records=None), short + long, records("cot_reasoning", 3, "val"), tok)
    write_stage_data(root, "stage2_therapeutic_expertise", sft)
    pre = build_stage_data(stage("pretrained", max_length=128), transcripts(2), transcripts(1, "val"), tok)
    write_stage_data(root, "pretrained", pre)
    for name, data in (("stage2_therapeutic_expertise", sft), ("pretrained", pre)):
        keys = stage_keys(name)
        ds = load_dataset("json", data_files={s: str(tmp_path / keys[s]) for s in ("train", "val")})
        assert ds["train"].num_rows == len(data.train) and ds["val"].num_rows == len(data.val)
    ds = load_dataset("json", data_files=str(tmp_path / stage_keys("stage2_therapeutic_expertise")["train"]))["train"]
    assert ds[0]["messages"][0]["role"] == "system"


def test_writer_goes_through_the_data_root_on_s3(tok, s3_client):
    s3_client.create_bucket(Bucket="stages")
    root = S3DataRoot(s3_client, "stages", "pixel")
    data = build_stage_data(stage("stage7_roleplay"), records("roleplay_simulator", 10), records("roleplay_simulator", 2, "val"), tok)
    uris = write_stage_data(root, "stage7_roleplay", data)
    assert uris["train"] == "s3://stages/pixel/training/stages/stage7_roleplay/train.jsonl"
    assert read_stage_lines(root, "stage7_roleplay", "train") == data.train


def test_stage_data_version_follows_the_records_the_stage_reads_and_its_config():
    s = stage("stage3_edge_stress_test")
    train = records("edge_case_generator", 5) + records("cptsd", 5)
    val = records("edge_case_synthetic", 2, "val")
    v = stage_data_version(s, stage_input_hashes(s, train, val), {"tokenizer": "t1"})
    assert v == stage_data_version(s, stage_input_hashes(s, list(reversed(train)), val), {"tokenizer": "t1"})
    other_family_changed = records("edge_case_generator", 5) + records("cptsd", 5, words=11)
    assert v == stage_data_version(s, stage_input_hashes(s, other_family_changed, val), {"tokenizer": "t1"})
    own_family_changed = records("edge_case_generator", 5, words=11) + records("cptsd", 5)
    assert v != stage_data_version(s, stage_input_hashes(s, own_family_changed, val), {"tokenizer": "t1"})
    assert v != stage_data_version(s, stage_input_hashes(s, train, val), {"tokenizer": "t2"})
    assert v != stage_data_version(dataclasses.replace(s, seed=1), stage_input_hashes(s, train, val), {"tokenizer": "t1"})


def test_an_exchange_that_cannot_fit_is_left_out_and_counted_not_cut(tok):
    one_long_exchange = record("cot_reasoning", seed=5, turns=1, words=90)  # ~ 400 tokens in one exchange
    s = stage("stage2_therapeutic_expertise", max_length=256, max_train_records=None, long_conversations="split")
    data = build_stage_data(s, [one_long_exchange] + records("cot_reasoning", 4), [], tok, min_val_records=0)
    fam = data.stats["families"]["cot_reasoning"]
    assert fam["overlength"] == 1 and fam["overlength_dropped"] == 1 and fam["turns_left_out"] == 2
    assert one_long_exchange["metadata"]["content_hash"] not in hashes(data.train) and len(data.train) == 4


def test_phase_a_text_without_sentence_ends_or_spaces_still_fits(tok):
    blob = record("video_transcripts", seed=2, text="x" * 3000)  # no paragraph, sentence or word boundary
    data = build_stage_data(stage("pretrained", max_length=64, max_train_records=None), [blob], [], tok, min_val_records=0)
    assert "".join(line["text"] for line in data.train) == "x" * 3000
    assert all(len(tok(line["text"], add_special_tokens=False)["input_ids"]) <= 63 for line in data.train)


# --- small families: validation from train, or none ------------------------------------------


def test_too_few_val_records_take_a_seeded_slice_of_train_never_a_test_record(tok):
    """A stage whose families have under MIN_VAL_RECORDS val records (small family, small scale):
    a seeded slice of its own train records becomes validation, out of train, counted; a test
    record handed in stays out."""
    from pixel_assets.lib.training.stage_data import MIN_VAL_RECORDS

    s = stage("stage2_therapeutic_expertise", max_train_records=None, max_val_records=None)
    train = records("cot_reasoning", 30)
    test = records("cot_reasoning", 3, split="test")
    data = build_stage_data(s, train + test, test, tok)
    moved = data.stats["val_from_train"]
    assert data.stats["val_source"] == "train" and moved >= MIN_VAL_RECORDS
    assert len(data.val) == moved and len(data.train) == len(train) - moved
    val_hashes = {r["metadata"]["content_hash"] for r in data.val}
    assert val_hashes <= {r["metadata"]["content_hash"] for r in train}  # from train, not from test
    assert not val_hashes & {r["metadata"]["content_hash"] for r in data.train}  # taken out of train
    assert all(r["metadata"]["split"] == "val" and r["metadata"]["val_from"] == "train" for r in data.val)
    assert build_stage_data(s, list(reversed(train)), [], tok).val == data.val  # seeded, order-free
    # Enough val records of its own: the val split is used as it is.
    own = build_stage_data(s, train, records("cot_reasoning", MIN_VAL_RECORDS, split="val"), tok)
    assert own.stats["val_source"] == "val_split" and own.stats["val_from_train"] == 0
    assert len(own.train) == len(train)


def test_val_records_too_long_for_the_context_give_way_to_a_slice_of_train(tok):
    """`pixel demo --scale 0.2`: stage 7's two val records were over-long at the demo's 512 tokens,
    so the stage trained unevaluated although it had train records to spare. The length rules
    decide how many val records are usable; the over-long ones stay counted."""
    s = stage("stage7_roleplay", max_train_records=None, max_val_records=None, long_conversations="drop")
    train = records("roleplay_simulator", 20, turns=2, words=6)
    long_train = record("roleplay_simulator", turns=40, words=30, seed=99)
    long_val = records("roleplay_simulator", 2, split="val", turns=40, words=30)
    data = build_stage_data(s, train + [long_train], long_val, tok)
    fam = data.stats["families"]["roleplay_simulator"]
    assert fam["val_overlength"] == 2  # counted, not silently lost
    assert data.stats["overlength"] == 1  # the over-long train record, once: the retry does not count it twice
    assert data.stats["val_source"] == "train" and data.stats["val_from_train"] >= 2
    assert len(data.val) == data.stats["val_from_train"] and len(data.train) == len(train) - len(data.val)
    # Phase A packs val text into blocks: fewer blocks than records is not a shortage.
    phase_a = build_stage_data(stage("pretrained", max_train_records=None, max_val_records=None),
                               records("video_transcripts", 6, text="a talk about sleep. " * 5),
                               records("video_transcripts", 3, split="val", text="short. "), tok)
    assert phase_a.stats["val_source"] == "val_split" and phase_a.stats["val_from_train"] == 0


def test_a_one_record_family_trains_unevaluated_rather_than_failing(tok):
    s = stage("stage7_roleplay", max_train_records=None, max_val_records=None)
    data = build_stage_data(s, records("roleplay_simulator", 1), [], tok)
    assert len(data.train) == 1 and data.val == []
    assert data.stats["val_source"] == "none" and data.stats["val_from_train"] == 0
    phase_a = build_stage_data(stage("pretrained", max_train_records=None, max_val_records=None),
                               records("video_transcripts", 6, text="a talk about sleep. " * 20), [], tok)
    assert phase_a.stats["val_source"] == "train" and phase_a.val  # phase A blocks from moved records
