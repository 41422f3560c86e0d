"""Each loader on its real source shape, plus the real counsel-chat CSV and the content hash."""

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest

from pixel_assets import PIPELINE_NAME
from pixel_assets.lib import contract
from pixel_assets.lib.ingest import IngestConfigError, load_source_bytes
from pixel_assets.lib.registry import Family, Source

COUNSEL_CHAT = Path(__file__).resolve().parents[1] / "pixel_assets" / "data" / "counsel_chat" / "counselchat-data.csv"
PROCESSED_AT = "2026-01-02T03:04:05+00:00"


def family_for(fmt: str, **options) -> tuple[Family, Source]:
    source = Source(path=f"sources/t/*.{fmt}", format=fmt, options=options)
    family = Family(name="fam", required=False, license_tag="test-license", phase="stage_x", sources=(source,))
    return family, source


def load(fmt: str, data: bytes | str, key: str = "file:///data/src/file.jsonl", **options):
    family, source = family_for(fmt, **options)
    if isinstance(data, str):
        data = data.encode("utf-8")
    return load_source_bytes(data, source=source, family=family, source_key=key, processed_at=PROCESSED_AT)


def jsonl(*items) -> str:
    return "\n".join(json.dumps(i) for i in items) + "\n"


def pairs(records):
    return [[(m["role"], m["content"]) for m in r["messages"]] for r in records]


def test_chatml_jsonl_record_has_full_normalized_metadata():
    recs, quar = load("chatml", jsonl({
        "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi there"},
                     {"role": "assistant", "content": "Hello, how are you?"}],
        "metadata": {"quality_score": 0.7},
    }))
    assert quar == []
    [rec] = recs
    assert contract.record_errors(rec, compiled=False) == []
    md = rec["metadata"]
    assert pairs(recs) == [[("system", "Be kind."), ("user", "Hi there"), ("assistant", "Hello, how are you?")]]
    assert md["content_hash"] == contract.content_hash(rec["messages"])
    assert md["source_family"] == "fam" and md["license_tag"] == "test-license" and md["phase"] == "stage_x"
    assert md["source_key"] == "file:///data/src/file.jsonl"
    assert md["original_format"] == "chatml" and md["source_location"] == "line 1"
    assert md["record_type"] == "conversation" and md["conversation_length"] == 3
    assert md["total_tokens"] == contract.approx_tokens(rec["messages"])
    assert md["quality_score"] == 0.7
    assert md["provenance"] == {
        "original_s3_key": "file:///data/src/file.jsonl", "processing_pipeline": PIPELINE_NAME,
        "processed_at": PROCESSED_AT, "dedup_status": "unique",
        "processing_steps": ["ingest", "encoding_repair", "normalize"],
    }


def test_chatml_json_array_and_pretty_object():
    convo = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    recs, quar = load("chatml", json.dumps([convo, convo], indent=2))
    assert quar == [] and [r["metadata"]["source_location"] for r in recs] == ["item 1", "item 2"]
    recs, quar = load("chatml", json.dumps(convo, indent=2))
    assert quar == [] and len(recs) == 1


def test_concatenated_pretty_printed_objects_are_one_record_each():
    """`jq` output: objects one after another, each over several lines. Read line by line, two
    records became a quarantine entry per line; JSON Lines keeps its line numbers."""
    convo = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    other = {"messages": [{"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
    recs, quar = load("chatml", json.dumps(convo, indent=2) + "\n" + json.dumps(other, indent=2) + "\n")
    assert quar == [] and [r["metadata"]["source_location"] for r in recs] == ["object 1", "object 2"]
    assert pairs(recs) == [[("user", "a"), ("assistant", "b")], [("user", "c"), ("assistant", "d")]]
    recs, quar = load("chatml", jsonl(convo, other))
    assert quar == [] and [r["metadata"]["source_location"] for r in recs] == ["line 1", "line 2"]
    # A broken stream is read line by line: every line accounted for, nothing dropped.
    broken = json.dumps(convo, indent=2) + "\n{ broken\n"
    recs, quar = load("chatml", broken)
    assert recs == [] and len(quar) == broken.count("\n")


def test_client_therapist_roles_map_to_user_assistant():
    recs, quar = load("client_therapist", jsonl({"conversation": [
        {"role": "client", "content": "I can't sleep."}, {"role": "therapist", "content": "Tell me more."},
        {"speaker": "Patient", "text": "Since May."}, {"author": "counselor", "utterance": "I see."},
    ]}))
    assert quar == []
    assert pairs(recs) == [[("user", "I can't sleep."), ("assistant", "Tell me more."),
                            ("user", "Since May."), ("assistant", "I see.")]]


def test_sharegpt_from_value_and_system_field():
    recs, quar = load("sharegpt", json.dumps([{"system": "sys", "conversations": [
        {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}, {"from": "bot", "message": "b"}]}]))
    assert quar == []
    assert pairs(recs) == [[("system", "sys"), ("user", "q"), ("assistant", "a"), ("assistant", "b")]]


def test_turn_keys_skip_aliases_whose_value_is_null():
    recs, quar = load("sharegpt", jsonl({"conversations": [
        {"from": "human", "value": "hi", "role": None}, {"from": "gpt", "content": None, "text": "hello"}]}))
    assert quar == []
    assert pairs(recs) == [[("user", "hi"), ("assistant", "hello")]]


def test_context_response_and_custom_keys():
    recs, _ = load("context_response", jsonl({"Context": "ctx", "Response": "resp"}))
    assert pairs(recs) == [[("user", "ctx"), ("assistant", "resp")]]
    recs, _ = load("context_response", jsonl({"q": "ctx", "a": "resp"}), user_key="q", assistant_key="a")
    assert pairs(recs) == [[("user", "ctx"), ("assistant", "resp")]]


def test_cot_qa_reasoning_becomes_part_of_assistant_turn():
    recs, quar = load("cot_qa", json.dumps([
        {"question": "Why?", "answer": "Because.", "metadata": {"reasoning": "Step one."}},
        {"question": "How?", "answer": "Like this."},
    ]))
    assert quar == []
    assert pairs(recs) == [[("user", "Why?"), ("assistant", "Step one.\n\nBecause.")],
                           [("user", "How?"), ("assistant", "Like this.")]]


def test_instruction_input_joined_and_output_or_response():
    recs, quar = load("instruction", jsonl(
        {"instruction": "Help me.", "input": "I feel low.", "output": "I'm here."},
        {"instruction": "Advise.", "input": "", "response": "Rest."},
    ))
    assert quar == []
    assert pairs(recs) == [[("user", "Help me.\n\nI feel low."), ("assistant", "I'm here.")],
                           [("user", "Advise."), ("assistant", "Rest.")]]


def test_marker_text_csv_splits_turns():
    data = 'text\n"human: I am anxious.\ngpt: What worries you?\nHuman: Work. gpt: Let\'s talk."\n'
    recs, quar = load("marker_text_csv", data)
    assert quar == []
    assert pairs(recs) == [[("user", "I am anxious."), ("assistant", "What worries you?"),
                            ("user", "Work."), ("assistant", "Let's talk.")]]
    assert recs[0]["metadata"]["source_location"] == "row 1"


def test_edge_case_roles_inverted_and_extras_kept():
    recs, quar = load("edge_case_prompt_response", jsonl(
        {"prompt": "How are you feeling today?", "response": "Terrible.", "category": "crisis",
         "difficulty_level": "hard", "secret_internal": "x"}))
    assert quar == []
    assert pairs(recs) == [[("assistant", "How are you feeling today?"), ("user", "Terrible.")]]
    md = recs[0]["metadata"]
    assert md["category"] == "crisis" and md["difficulty_level"] == "hard" and "secret_internal" not in md


def test_preference_pairs():
    recs, quar = load("preference_pairs", jsonl({"prompt": "p", "chosen": "good", "rejected": "bad"}))
    assert quar == []
    assert pairs(recs) == [[("user", "p"), ("assistant", "good")]]
    assert recs[0]["metadata"]["record_type"] == "preference"
    assert recs[0]["metadata"]["rejected_response"] == "bad"


def test_transcript_is_one_text_record():
    recs, quar = load("transcripts", "Welcome back.\n\nToday   we talk about grief.\n",
                      key="file:///root/sources/video_transcripts/dr_kim/ep01.txt")
    assert quar == []
    [rec] = recs
    assert pairs(recs) == [[("assistant", "Welcome back.\n\nToday we talk about grief.")]]
    md = rec["metadata"]
    assert md["record_type"] == "text" and md["source_location"] == "file"
    assert md["creator"] == "dr_kim" and md["video"] == "ep01"
    assert contract.record_errors(rec, compiled=False) == []


def test_qa_csv_other_column_names_by_options():
    data = "Q,Detail,A\nTitle here,Body here,<p>Answer &amp; more</p>\n"
    recs, quar = load("qa_csv", data, question_columns=["Q", "Detail"], answer_column="A", html=True)
    assert quar == []
    assert pairs(recs) == [[("user", "Title here\n\nBody here"), ("assistant", "Answer & more")]]


def test_bad_option_value_is_a_config_error_not_quarantine():
    with pytest.raises(IngestConfigError, match="prompt_role"):
        load("edge_case_prompt_response", jsonl({"prompt": "a", "response": "b"}), prompt_role="client")
    with pytest.raises(IngestConfigError, match="question_columns"):
        load("qa_csv", "a,b\n1,2\n", question_columns="a")


def test_real_counsel_chat_csv_fully_accounted_html_stripped():
    data = COUNSEL_CHAT.read_bytes()
    with COUNSEL_CHAT.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    recs, quar = load("qa_csv", data)
    assert len(recs) + len(quar) == len(rows)
    # Rows whose answer is markup only or whose question is blank are quarantined, with reasons;
    # so are the Spanish answers (language policy, lib/language.py).
    assert {q["reason"] for q in quar} <= {"empty_content", "language"}
    assert sum(q["reason"] == "empty_content" for q in quar) < len(rows) * 0.01
    assert 0 < sum(q["reason"] == "language" for q in quar) < len(rows) * 0.03
    assert all(q["location"].startswith("row ") for q in quar)
    for rec in recs:
        answer = rec["messages"][-1]["content"]
        assert "<p>" not in answer and "</" not in answer and "<br" not in answer
        assert "&nbsp;" not in answer and "&#34;" not in answer and "&quot;" not in answer
        assert contract.record_errors(rec, compiled=False) == []
    # Paragraph breaks survive, and an answer known to use &#34; has real quotes.
    first_answer = recs[0]["messages"][1]["content"]
    assert "\n\n" in first_answer and '"triangulation"' in first_answer
    # Multi-line quoted question text stays one record with its line break.
    assert "\n" in recs[0]["messages"][0]["content"]
    assert recs[0]["messages"][0]["content"].startswith(rows[0]["questionTitle"])


@pytest.mark.parametrize(
    "contents, joined",
    [
        ([" Hello ", "WORLD"], "hello world"),
        (["b", "A", " c "], "a b c"),
        (["Zoë", "ÄRGER"], "zoë ärger"),
    ],
)
def test_content_hash_matches_hand_computed_sha256(contents, joined):
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(contents)]
    expected = "sha256:" + hashlib.sha256(joined.encode("utf-8")).hexdigest()
    assert contract.content_hash(messages) == expected
    assert contract.content_hash(list(reversed(messages))) == expected  # order-independent by design


def test_record_hash_is_over_cleaned_content():
    recs, _ = load("context_response", jsonl({"Context": "  Hello  ", "Response": "WORLD"}))
    expected = "sha256:" + hashlib.sha256(b"hello world").hexdigest()
    assert recs[0]["metadata"]["content_hash"] == expected


def test_mojibake_in_source_is_repaired_in_record():
    broken = "I can’t cope".encode("utf-8").decode("cp1252")
    recs, _ = load("context_response", jsonl({"Context": broken, "Response": "ok"}))
    assert recs[0]["messages"][0]["content"] == "I can't cope"


def test_jsonl_with_bom_and_crlf():
    data = b"\xef\xbb\xbf" + jsonl({"Context": "a", "Response": "b"}).replace("\n", "\r\n").encode()
    recs, quar = load("context_response", data)
    assert quar == [] and len(recs) == 1


def test_csv_reads_from_io_roundtrip_of_quoted_fields():
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["questionTitle", "questionText", "answerText"])
    writer.writerow(["T, with comma", 'He said "no"\nthen left', "<p>A</p>"])
    recs, quar = load("qa_csv", buf.getvalue())
    assert quar == []
    assert recs[0]["messages"][0]["content"] == 'T, with comma\n\nHe said "no"\nthen left'


def test_escaped_lone_surrogates_cannot_break_utf8_output():
    data = b'{"prompt": "a \\ud800 b", "response": "ok", "category": "c\\udcff"}\n'
    recs, quar = load("edge_case_prompt_response", data)
    assert quar == []
    contract.dumps_record(recs[0]).encode("utf-8")  # raises if a surrogate survived
    assert recs[0]["messages"][0]["content"] == "a \ufffd b"


def test_html_in_json_source_is_stripped_and_qa_csv_html_false_keeps_markup():
    recs, _ = load("context_response", jsonl({"Context": "q", "Response": "<p>One &amp; two.</p><p>Three</p>"}))
    assert recs[0]["messages"][1]["content"] == "One & two.\n\nThree"
    recs, _ = load("qa_csv", "questionTitle,questionText,answerText\nt,q,<b>x</b>\n", html=False)
    assert recs[0]["messages"][1]["content"] == "<b>x</b>"
