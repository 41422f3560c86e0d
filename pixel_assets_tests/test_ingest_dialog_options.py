"""Per-source dialog options of the turn-list formats: role map, where the turns are, role and text
keys, consecutive turns by one speaker, fields carried as a system turn or metadata."""

import json
import re

import pytest

from pixel_assets.lib.ingest import IngestConfigError, load_source_bytes
from pixel_assets.lib.registry import Family, RegistryError, Source, parse_registry
from pixel_assets_tests.test_ingest_registry import minimal_registry


def load(fmt: str, items: list, **options):
    source = Source(path="sources/t/*.jsonl", format=fmt, options=options)
    family = Family(name="fam", required=False, license_tag="l", phase="p", sources=(source,))
    data = "\n".join(json.dumps(i) for i in items) + "\n"
    return load_source_bytes(data.encode(), source=source, family=family, source_key="file:///t/x.jsonl")


def pairs(record):
    return [(m["role"], m["content"]) for m in record["messages"]]


ESCONV_LIKE = {
    "situation": "Lost my job last week.",
    "meta": {"emotion": "anxiety", "problem": "job crisis", "turns": 4},
    "dialog": {"turns": [
        {"speaker": "seeker", "utterance": "Hi."},
        {"speaker": "seeker", "utterance": "I lost my job."},
        {"speaker": "supporter", "utterance": "I'm sorry to hear that."},
        {"speaker": "seeker", "utterance": "Thanks."},
    ]},
}


def test_role_map_names_the_speakers_that_the_aliases_do_not_know():
    turns = [{"role": "seeker", "content": "I feel alone."}, {"role": "Supporter", "content": "I'm here."}]
    recs, quar = load("chatml", [{"messages": turns}])
    assert recs == [] and [q["reason"] for q in quar] == ["unknown_role"]  # without the map
    recs, quar = load("chatml", [{"messages": turns}], role_map={"seeker": "user", "supporter": "assistant"})
    assert quar == [] and pairs(recs[0]) == [("user", "I feel alone."), ("assistant", "I'm here.")]


def test_role_map_takes_numeric_speaker_ids_and_overrides_an_alias():
    turns = [{"role": 0, "content": "q"}, {"role": 1, "content": "a"}, {"role": "bot", "content": "sys"}]
    recs, quar = load("chatml", [{"messages": turns}], role_map={0: "user", 1: "assistant", "bot": "system"})
    assert quar == [] and pairs(recs[0]) == [("user", "q"), ("assistant", "a"), ("system", "sys")]
    recs, quar = load("chatml", [{"messages": turns}])
    assert [q["reason"] for q in quar] == ["wrong_types"]  # a number no map names stays wrong_types


def test_nested_messages_key_and_own_role_and_content_keys():
    item = {"dialog": {"turns": [{"who": "client", "said": "q", "role": "assistant"}, {"who": "therapist", "said": "a"}]}}
    recs, quar = load("chatml", [item], messages_key="dialog.turns", role_key="who", content_key=["said"])
    assert quar == [] and pairs(recs[0]) == [("user", "q"), ("assistant", "a")]
    # With the default keys the nested list is not found at all.
    recs, quar = load("chatml", [item], messages_key="dialog")
    assert [q["reason"] for q in quar] == ["wrong_types"]


def test_consecutive_turns_keep_merge_quarantine():
    options = {"messages_key": "dialog.turns", "role_map": {"seeker": "user", "supporter": "assistant"}}
    recs, quar = load("chatml", [ESCONV_LIKE], **options)
    assert quar == [] and [r for r, _ in pairs(recs[0])] == ["user", "user", "assistant", "user"]
    assert "merged_turns" not in recs[0]["metadata"]
    recs, quar = load("chatml", [ESCONV_LIKE], consecutive_turns="merge", **options)
    assert quar == [] and pairs(recs[0]) == [
        ("user", "Hi.\n\nI lost my job."), ("assistant", "I'm sorry to hear that."), ("user", "Thanks.")]
    assert recs[0]["metadata"]["merged_turns"] == 1
    recs, quar = load("chatml", [ESCONV_LIKE], consecutive_turns="quarantine", **options)
    assert recs == [] and quar[0]["reason"] == "consecutive_turns" and "turn 2" in quar[0]["detail"]
    assert "job" not in quar[0]["detail"]  # position and role only, never the text


def test_system_fields_become_one_system_turn_and_metadata_fields_are_copied():
    recs, quar = load(
        "chatml", [ESCONV_LIKE], messages_key="dialog.turns", consecutive_turns="merge",
        role_map={"seeker": "user", "supporter": "assistant"},
        system_fields=["situation", "meta.problem"], metadata_fields=["meta.emotion", "meta.turns"],
    )
    assert quar == []
    assert recs[0]["messages"][0] == {"role": "system", "content": "situation: Lost my job last week.\nproblem: job crisis"}
    assert recs[0]["messages"][1]["role"] == "user"
    md = recs[0]["metadata"]
    assert md["emotion"] == "anxiety" and md["turns"] == 4


def test_system_field_goes_after_the_records_own_system_prompt_and_missing_fields_are_skipped():
    item = {"system": "Be kind.", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
            "situation": "Exams."}
    recs, quar = load("sharegpt", [item], system_fields=["situation", "absent"], metadata_fields=["absent"])
    assert quar == [] and pairs(recs[0])[:2] == [("system", "Be kind."), ("system", "situation: Exams.")]
    assert "absent" not in recs[0]["metadata"]


def test_a_carried_field_that_is_not_a_scalar_is_quarantined():
    item = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tags": ["x"]}
    recs, quar = load("chatml", [item], metadata_fields=["tags"])
    assert recs == [] and quar[0]["reason"] == "wrong_types" and "tags" in quar[0]["detail"]


@pytest.mark.parametrize("options, named", [
    ({"role_map": {"seeker": "client"}}, "role_map"),
    ({"role_map": ["seeker"]}, "role_map"),
    ({"consecutive_turns": "join"}, "consecutive_turns"),
    ({"role_key": []}, "role_key"),
    ({"content_key": ""}, "content_key"),
    ({"system_fields": "situation"}, "system_fields"),
    ({"metadata_fields": ["source_family"]}, "metadata_fields"),
    ({"metadata_fields": ["a.emotion", "b.emotion"]}, "metadata_fields"),
])
def test_unusable_option_values_are_config_errors(options, named):
    with pytest.raises(IngestConfigError, match=named):
        load("chatml", [{"messages": []}], **options)


def test_misspelt_dialog_option_is_a_registry_error_naming_the_entry_and_the_fix():
    data = minimal_registry()
    data["families"][4]["sources"][0]["options"] = {"role_mapp": {"seeker": "user"}}
    with pytest.raises(RegistryError) as info:
        parse_registry(data)
    message = str(info.value)
    assert re.search(r"families\[4\].*sources\[0\]", message)
    assert "role_mapp" in message and "did you mean 'role_map' for 'role_mapp'" in message


def test_every_dialog_format_takes_the_options():
    turns = [{"speaker": "seeker", "text": "q"}, {"speaker": "supporter", "text": "a"}]
    role_map = {"seeker": "user", "supporter": "assistant"}
    for fmt, key in (("chatml", "messages"), ("sharegpt", "conversations"), ("client_therapist", "conversation")):
        recs, quar = load(fmt, [{key: turns}], role_map=role_map)
        assert quar == [] and pairs(recs[0]) == [("user", "q"), ("assistant", "a")], fmt


@pytest.mark.parametrize("options, expected", [
    ({"consecutive_turns": "merg"}, "consecutive_turns"),
    ({"role_map": {"seeker": "usr"}}, "role_map"),
])
def test_a_misspelt_option_value_fails_the_registry_load_naming_the_entry(options, expected):
    data = minimal_registry()
    data["families"][2]["sources"][0]["options"] = options
    with pytest.raises(RegistryError, match=rf"families\[2\].*sources\[0\].*{expected}"):
        parse_registry(data)


def test_hf_dataset_takes_its_row_formats_options_and_no_others():
    data = minimal_registry()
    data["families"][0]["sources"][0] = {"path": "sources/x/saved", "format": "hf_dataset",
                                         "options": {"row_format": "qa_csv", "answer_column": "reply", "split": "test"}}
    source = parse_registry(data).families[0].sources[0]
    assert (source.row_format, source.option("answer_column"), source.option("html")) == ("qa_csv", "reply", True)
    data["families"][0]["sources"][0]["options"] = {"row_format": "qa_csv", "messages_key": "dialog"}
    with pytest.raises(RegistryError, match=r"families\[0\].*no options \['messages_key'\]"):
        parse_registry(data)
    data["families"][0]["sources"][0]["options"] = {"row_format": "transcripts"}
    with pytest.raises(RegistryError, match=r"families\[0\].*row_format 'transcripts'"):
        parse_registry(data)
