"""Registry validation errors name the bad entry; a new CSV shape is added by config alone."""

import copy
import re

import pytest
import yaml

from pixel_assets.lib import contract, registry
from pixel_assets.lib.ingest import ingest_family
from pixel_assets.lib.registry import RegistryError, parse_registry
from pixel_assets.lib.storage import LocalDataRoot


def minimal_registry() -> dict:
    return {"families": [
        {"name": name, "required": True, "license_tag": "l", "phase": "p",
         "sources": [{"path": f"sources/{name}/*.jsonl", "format": "chatml"}]}
        for name in registry.SEED_REQUIRED_FAMILIES
    ]}


def test_minimal_registry_is_valid():
    assert parse_registry(minimal_registry()).names == list(registry.SEED_REQUIRED_FAMILIES)


def test_packaged_registry_loads_and_every_format_has_a_loader():
    from pixel_assets.lib.ingest.formats import EXTRACTORS

    reg = registry.load_registry()
    assert set(registry.FORMAT_OPTIONS) == set(EXTRACTORS)
    assert {s.format for f in reg.families for s in f.sources} <= set(EXTRACTORS)


def mutated(edit) -> dict:
    data = copy.deepcopy(minimal_registry())
    edit(data["families"])
    return data


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda fs: fs[2]["sources"][0].update(format="parquet_magic"), [r"families\[2\]", "sources\\[0\\]", "unknown format 'parquet_magic'"]),
        (lambda fs: fs[3]["sources"][0].update(options={"no_such_option": 1}), [r"families\[3\]", "no_such_option"]),
        (lambda fs: fs.append(dict(fs[0])), [r"families\[14\]", "duplicate family name", "edge_case_generator"]),
        (lambda fs: fs[5].update(holdout={"mode": "test_slice", "fraction": 1.5}), [r"families\[5\]", "fraction"]),
        (lambda fs: fs[5].update(holdout={"mode": "sometimes"}), [r"families\[5\]", "holdout.mode"]),
        (lambda fs: fs.pop(7), ["lacks required seed families", registry.SEED_REQUIRED_FAMILIES[7]]),
        (lambda fs: fs[1].update(required=False), ["must be required", registry.SEED_REQUIRED_FAMILIES[1]]),
        (lambda fs: fs[0].update(name="Bad-Name"), [r"families\[0\]", "lower_snake_case"]),
    ],
    ids=["unknown_format", "bad_option", "duplicate_name", "bad_fraction", "bad_mode", "missing_seed",
         "seed_not_required", "bad_name"],
)
def test_registry_errors_name_the_bad_entry(edit, expected):
    with pytest.raises(RegistryError) as info:
        parse_registry(mutated(edit))
    for pattern in expected:
        assert re.search(pattern, str(info.value)), (pattern, str(info.value))


CSV_FAMILY_YAML = """
name: forum_answers
required: false
license_tag: cc-by-4.0
phase: stage1_foundation
sources:
  - path: "sources/forum_answers/*.csv"
    format: qa_csv
    options:
      question_columns: [subject, body]
      answer_column: reply_html
      html: true
"""


def test_csv_with_other_column_names_by_config_alone(tmp_path):
    data = minimal_registry()
    data["families"].append(yaml.safe_load(CSV_FAMILY_YAML))
    family = parse_registry(data)["forum_answers"]
    root = LocalDataRoot(tmp_path)
    root.write_text(
        "sources/forum_answers/export.csv",
        "id,subject,body,reply_html\n"
        '1,Can\'t sleep,"Every night I wake\nat 3am.",<p>Try a wind-down routine&nbsp;&amp; no screens.</p>\n'
        "2,Anxiety,,<p>Breathing exercises help.</p><p>So does talking.</p>\n"
        "3,,,<p>orphan answer</p>\n",
    )
    result = ingest_family(family, root)
    assert (result.read, result.valid, result.per_reason) == (3, 2, {"empty_content": 1})
    first, second = contract.frame_to_records(result.records)
    assert first["messages"] == [
        {"role": "user", "content": "Can't sleep\n\nEvery night I wake\nat 3am."},
        {"role": "assistant", "content": "Try a wind-down routine & no screens."},
    ]
    assert second["messages"][1]["content"] == "Breathing exercises help.\n\nSo does talking."
    assert first["metadata"]["license_tag"] == "cc-by-4.0"
    assert first["metadata"]["original_format"] == "qa_csv"
