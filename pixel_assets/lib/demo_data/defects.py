"""Planted defects: PII sentences, broken encodings, exact / near duplicates, the same question
answered twice, malformed records of every quarantine reason."""

from __future__ import annotations

import json
import random
from typing import Any, Callable

from pixel_assets.lib import contract

from . import phrases as P
from .compose import Bad, Composer, Conv, FamilyBuilder, FileSpec
from .plan import OVERSIZE_BYTES, ROLE_ASSISTANT, ROLE_SYSTEM, ROLE_USER


_AREA_CODES = ["212", "415", "617", "312", "503", "206", "404", "713", "303", "602", "718", "919"]


def _phone(rng: random.Random) -> str:
    a, b, c = rng.choice(_AREA_CODES), rng.randint(201, 989), rng.randint(1000, 9999)
    fmt = rng.choice(["({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "+1 {a} {b} {c}", "1-{a}-{b}-{c}"])
    return fmt.format(a=a, b=b, c=c)


def plant_pii(comp: Composer) -> tuple[str, list[tuple[str, str]]]:
    """A sentence carrying 1-2 planted PII values, and the (type, value) pairs it carries."""
    rng, fake = comp.rng, comp.fake
    kind = rng.choices(
        ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "STREET_ADDRESS", "CREDIT_CARD",
         "IP_ADDRESS", "URL", "SOCIAL_HANDLE", "PERSON+PHONE"],
        weights=[24, 14, 16, 8, 10, 3, 3, 3, 3, 6],
    )[0]
    if kind == "PERSON":
        name = fake.name_nonbinary() if rng.random() < 0.2 else f"{fake.first_name()} {fake.last_name()}"
        tpl = rng.choice([
            "My coworker {v} keeps taking credit for my work.", "I finally told {v} how I felt.",
            "{v} from my support group checked in on me.", "Honestly {v} is the only one who gets it.",
            "My ex, {v}, texted me again out of nowhere.",
        ])
        return tpl.format(v=name), [("PERSON", name)]
    if kind == "PERSON+PHONE":
        name, phone = f"{fake.first_name()} {fake.last_name()}", _phone(rng)
        return f"My sponsor {name} said I can call {phone} any time.", [("PERSON", name), ("PHONE_NUMBER", phone)]
    if kind == "EMAIL_ADDRESS":
        v = fake.free_email() if rng.random() < 0.5 else fake.company_email()
        tpl = rng.choice(["You can email me at {v} if that's easier.", "My old account was {v}, I deleted it."])
    elif kind == "PHONE_NUMBER":
        v = _phone(rng)
        tpl = rng.choice(["My number is {v}, text me before the next session.", "The clinic called from {v} and I didn't pick up."])
    elif kind == "US_SSN":
        v = fake.ssn()
        tpl = "They asked for my social, {v}, and I panicked at the front desk."
    elif kind == "STREET_ADDRESS":
        v = fake.street_address()
        tpl = rng.choice(["We moved into {v} last spring.", "I still drive past {v} where it happened."])
    elif kind == "CREDIT_CARD":
        v = fake.credit_card_number(card_type=rng.choice(["visa16", "mastercard", "amex"]))
        tpl = "I maxed out the card ending in all of it, {v}, on things I don't need."
    elif kind == "IP_ADDRESS":
        v = fake.ipv4_public()
        tpl = "I got banned from the forum, they said my IP {v} was flagged."
    elif kind == "URL":
        v = f"https://{fake.domain_name()}/{fake.slug()}"
        tpl = "I posted the whole story on {v} and regretted it."
    else:  # SOCIAL_HANDLE
        v = "@" + fake.user_name()
        tpl = "People kept messaging my account {v} after the post went around."
    return tpl.format(v=v), [(kind, v)]


def _insert_sentence(text: str, sentence: str, rng: random.Random) -> str:
    sentences = text.split(". ")
    at = rng.randint(0, len(sentences))
    if at == len(sentences):
        return f"{text} {sentence}"
    sentences.insert(at, sentence[:-1] if sentence.endswith(".") else sentence)
    return ". ".join(sentences)


# --- encoding problems ---------------------------------------------------------------------

_FANCY = [
    ("I don't", "I don’t"), ("it's", "it’s"), ("I'm", "I’m"), ("can't", "can’t"),
]


def mojibake(text: str, rng: random.Random) -> str:
    """Add typographic characters, then mis-decode the UTF-8 bytes as cp1252 (classic mojibake)."""
    for plain, fancy in _FANCY:
        text = text.replace(plain, fancy)
    text += rng.choice([
        " It’s like a café with no exit — nobody notices.", " Señora Ruiz’s class was the only calm part…",
        " I’m fine — that’s what I tell everyone.", " We used to go to the crêpe place together…",
    ])
    return text.encode("utf-8").decode("cp1252")


def htmlize(text: str) -> str:
    text = text.replace("'", "&#39;").replace(", and ", ", &amp; ")
    return "<p>" + text.replace(". ", ".</p><p>", 1) + "</p>"


def fill_file(
    b: FamilyBuilder, spec: FileSpec, count: int, make: Callable[[], list[dict[str, str]]],
    *, meta: Callable[[], dict[str, Any]] | None = None, extra: Callable[[Conv], dict[str, Any]] | None = None,
    pii_rate: float = 0.12, encoding: str | None = None, encoding_rate: float = 0.0,
) -> None:
    for _ in range(count):
        c = b.conv(make(), meta=meta() if meta else {})
        r = b.rng.random()
        if r < pii_rate:
            plant_pii_in(b, c)
        elif encoding and r < pii_rate + encoding_rate:
            _break_encoding(b, c, encoding)
        if extra:
            c.extra.update(extra(c))
        spec.items.append(c)


def plant_pii_in(b: FamilyBuilder, c: Conv) -> None:
    sentence, found = plant_pii(b.comp)
    targets = [i for i, m in enumerate(c.messages) if m["role"] == ROLE_USER] or [
        i for i, m in enumerate(c.messages) if m["role"] != ROLE_SYSTEM
    ]
    i = b.rng.choice(targets)
    c.messages[i] = {**c.messages[i], "content": _insert_sentence(c.messages[i]["content"], sentence, b.rng)}
    c.pii.extend(found)


def _break_encoding(b: FamilyBuilder, c: Conv, kind: str) -> None:
    i = b.rng.choice([i for i, m in enumerate(c.messages) if m["role"] != ROLE_SYSTEM])
    text = c.messages[i]["content"]
    c.messages[i] = {**c.messages[i], "content": mojibake(text, b.rng) if kind == "mojibake" else htmlize(text)}
    c.encoding = kind


# planted duplicates / near-dups / same question ------------------------------------------


_CASE_WS_VARIANTS = ("upper", "lower", "whitespace", "reverse")


def variant_of(messages: list[dict[str, str]], how: str) -> list[dict[str, str]]:
    """A copy with the same content hash: case, outer whitespace or order changed."""
    out = [dict(m) for m in messages]
    if how == "upper":
        out[-1]["content"] = out[-1]["content"].upper()
    elif how == "lower":
        out[0]["content"] = out[0]["content"].lower()
    elif how == "whitespace":
        out[0]["content"] = "  " + out[0]["content"] + " \n"
        out[-1]["content"] = "\t" + out[-1]["content"] + "  "
    elif how == "reverse" and not any(m["role"] == ROLE_SYSTEM for m in out):
        out.reverse()
    return out


def plant_exact_dups(b: FamilyBuilder, spec: FileSpec, groups: int) -> None:
    """Copies of existing clean conversations (same content hash), placed later in the file."""
    clean = [c for c in spec.items if isinstance(c, Conv) and not c.encoding and not c.dup_group]
    for g in range(min(groups, len(clean))):
        src = clean[b.rng.randrange(len(clean))]
        if src.dup_group:
            continue
        src.dup_group = f"{b.family}-f{b.files.index(spec)}-dup{g}"
        copies = 2 if g % 3 == 0 else 1
        for k in range(copies):
            how = _CASE_WS_VARIANTS[(g + k) % len(_CASE_WS_VARIANTS)]
            if spec.format in ("context_response", "instruction", "edge_case_prompt_response", "preference_pairs", "cot_qa"):
                how = "lower" if how == "reverse" else how  # fixed two-field shapes: no reordering
            dup = b.conv(variant_of(src.messages, how), meta=dict(src.meta), extra=dict(src.extra))
            dup.pii, dup.dup_group = list(src.pii), src.dup_group
            spec.items.insert(b.rng.randint(spec.items.index(src) + 1, len(spec.items)), dup)


def _substitute_words(text: str, count: int, rng: random.Random) -> str:
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 3]
    for i in rng.sample(candidates, min(count, len(candidates))):
        replacement = rng.choice(["really", "often", "quietly", "somehow", "truly", "mostly", "nearly"])
        words[i] = replacement if words[i].lower() != replacement else "again"
    return " ".join(words)


def plant_near_dups(b: FamilyBuilder, spec: FileSpec, pairs: int, make_long: Callable[[], list[dict[str, str]]]) -> None:
    """Long conversations (~150-300 words) and a copy with 1-2 words changed."""
    for p in range(pairs):
        for _ in range(50):
            messages = make_long()
            words = sum(len(m["content"].split()) for m in messages if m["role"] != ROLE_SYSTEM)
            if 150 <= words <= 300:
                break
        changed = [dict(m) for m in messages]
        targets = [i for i, m in enumerate(changed) if m["role"] != ROLE_SYSTEM]
        for i in b.rng.sample(targets, min(2, len(targets))):
            changed[i]["content"] = _substitute_words(changed[i]["content"], 1, b.rng)
        if contract.content_hash(changed) == contract.content_hash(messages):
            continue
        pair_id = f"{b.family}-near{p}"
        a = b.conv(messages, meta={"topic": "near_duplicate_source"}, near_pair=(pair_id, "a"))
        c = b.conv(changed, meta={"topic": "near_duplicate_source"}, near_pair=(pair_id, "b"))
        spec.items.insert(b.rng.randint(0, len(spec.items)), a)
        spec.items.insert(b.rng.randint(spec.items.index(a) + 1, len(spec.items)), c)


def plant_same_question(b: FamilyBuilder, spec: FileSpec, pairs: int, theme: str | None) -> None:
    """The same first user turn answered twice, differently (long distinct answers)."""
    for p in range(pairs):
        question = b.comp.turn(ROLE_USER, theme, (1, 2))
        pair_id = f"{b.family}-sameq{p}"
        for side in ("a", "b"):
            answer = b.comp.turn(ROLE_ASSISTANT, theme, (5, 7))
            c = b.conv([{"role": ROLE_USER, "content": question}, {"role": ROLE_ASSISTANT, "content": answer}],
                       same_question=(pair_id, side))
            spec.items.insert(b.rng.randint(0, len(spec.items)), c)


# malformed records --------------------------------------------------------------------------

# Quarantine reasons each source shape can express (CSV/JSON-array shapes cannot hold a broken
# line; only message-list shapes have roles).
_LIST_SHAPES = {"chatml", "client_therapist", "sharegpt"}
_JSONL_REASONS = ("invalid_json", "undecodable_bytes", "empty_content", "wrong_types")
_ARRAY_REASONS = ("empty_content", "wrong_types")
_ROLE_REASONS = ("unknown_role", "no_user_or_assistant_turn")
OVERSIZE_FAMILIES = ("priority_datasets", "cptsd", "roleplay_simulator", "edge_case_generator")


def malformed_reasons(fmt: str, is_jsonl: bool, family: str) -> list[str]:
    if fmt == "transcripts":
        return ["undecodable_bytes", "unreadable_source"]  # whitespace-only file: unreadable
    if fmt == "marker_text_csv":
        return ["empty_content", "no_user_or_assistant_turn"]
    if fmt == "qa_csv":
        return []
    reasons = list(_JSONL_REASONS if is_jsonl else _ARRAY_REASONS)
    if fmt in _LIST_SHAPES:
        reasons += _ROLE_REASONS
    if is_jsonl and family in OVERSIZE_FAMILIES:
        reasons.append("oversize_record")
    return reasons


def raw_object(spec: FileSpec, c: Conv) -> Any:
    """A valid conversation in the file's source shape."""
    fmt, m, meta = spec.format, c.messages, {"demo_id": c.demo_id, **c.meta}
    user = [x["content"] for x in m if x["role"] == ROLE_USER]
    assistant = [x["content"] for x in m if x["role"] == ROLE_ASSISTANT]
    if fmt == "chatml":
        return {"messages": m, "metadata": meta}
    if fmt == "client_therapist":
        roles = {ROLE_USER: "client", ROLE_ASSISTANT: "therapist", ROLE_SYSTEM: "system"}
        return {"conversation": [{"role": roles[x["role"]], "content": x["content"]} for x in m], "metadata": meta}
    if fmt == "sharegpt":
        roles = {ROLE_USER: "human", ROLE_ASSISTANT: "gpt", ROLE_SYSTEM: "system"}
        return {"id": c.demo_id, "conversations": [{"from": roles[x["role"]], "value": x["content"]} for x in m]}
    if fmt == "context_response":
        return {"Context": user[0], "Response": assistant[0]}
    if fmt == "instruction":
        if "instruction" in c.extra:  # shared instruction, the client's words in input
            out = {"instruction": c.extra["instruction"], "input": c.extra["input"]}
        else:
            out = {"instruction": user[0], "input": ""}
        out[c.extra.get("output_key", "output")] = assistant[0]
        return out
    if fmt == "cot_qa":
        return {"question": user[0], "answer": c.extra["answer"], "metadata": {**meta, "reasoning": c.extra["reasoning"]}}
    if fmt == "edge_case_prompt_response":
        return {"prompt": assistant[0], "response": user[0], **c.extra, "demo_id": c.demo_id}
    if fmt == "preference_pairs":
        return {"prompt": user[0], "chosen": assistant[0], "rejected": c.extra["rejected"], "metadata": meta}
    raise ValueError(f"no object shape for format {fmt!r}")


def _bad_object(spec: FileSpec, reason: str, base: Any) -> Any:
    """Break a valid source object in exactly one way."""
    obj = json.loads(json.dumps(base))
    fmt = spec.format
    if fmt in _LIST_SHAPES:
        list_key = {"chatml": "messages", "client_therapist": "conversation", "sharegpt": "conversations"}[fmt]
        text_key = "value" if fmt == "sharegpt" else "content"
        role_key = "from" if fmt == "sharegpt" else "role"
        turns = obj[list_key]
        if reason == "empty_content":
            turns[-1][text_key] = "   "
        elif reason == "wrong_types":
            turns[-1][text_key] = 12345
        elif reason == "unknown_role":
            turns[-1][role_key] = "narrator"
        elif reason == "no_user_or_assistant_turn":
            obj[list_key] = [{role_key: "system", text_key: P.SYSTEM_PROMPTS["therapist"]}]
        return obj
    text_field = {
        "context_response": "Response", "instruction": "output", "cot_qa": "answer",
        "edge_case_prompt_response": "response", "preference_pairs": "chosen",
    }[fmt]
    if fmt == "instruction":
        text_field = next(k for k in ("output", "response") if k in obj)
    if reason == "empty_content":
        # cot_qa: the reasoning is joined into the assistant turn, so empty the question
        obj["question" if fmt == "cot_qa" else text_field] = ""
    elif reason == "wrong_types":
        obj[text_field] = ["not", "a", "string"]
    return obj


def plant_malformed(b: FamilyBuilder, spec: FileSpec) -> None:
    is_jsonl = spec.key.endswith(".jsonl")
    donors = [c for c in spec.items if isinstance(c, Conv) and not (c.dup_group or c.near_pair or c.same_question)]
    for reason in malformed_reasons(spec.format, is_jsonl, b.family):
        at = b.rng.randint(1, len(spec.items))
        if spec.format == "marker_text_csv":
            payload = {"text": "human: \ngpt: Thank you for telling me." if reason == "empty_content"
                       else "Just a note without any speaker markers at all."}
        else:
            donor = b.rng.choice(donors)
            base = raw_object(spec, donor)
            if reason == "invalid_json":
                line = json.dumps(base, ensure_ascii=False)
                payload = line[: len(line) // 2].encode("utf-8")
            elif reason == "undecodable_bytes":
                line = json.dumps(base, ensure_ascii=False).encode("utf-8")
                cut = line.index(b'"', line.index(b":") + 2) + 1  # inside the first string value
                payload = line[:cut] + b"\xff\xfe\xc3\x28" + line[cut:]
            elif reason == "oversize_record":
                big = json.loads(json.dumps(base))
                filler = " ".join(["I keep writing because nobody reads these anyway."] * (OVERSIZE_BYTES // 50 + 1))
                _set_first_text(spec.format, big, filler)
                payload = json.dumps(big, ensure_ascii=False).encode("utf-8")
            else:
                obj = _bad_object(spec, reason, base)
                payload = json.dumps(obj, ensure_ascii=False).encode("utf-8") if is_jsonl else obj
        spec.items.insert(at, Bad(reason, payload))


def _set_first_text(fmt: str, obj: dict[str, Any], text: str) -> None:
    if fmt in _LIST_SHAPES:
        list_key = {"chatml": "messages", "client_therapist": "conversation", "sharegpt": "conversations"}[fmt]
        turns = [t for t in obj[list_key] if t.get("role", t.get("from")) != "system"]
        turns[0]["value" if fmt == "sharegpt" else "content"] = text
    else:
        key = {"context_response": "Context", "instruction": "instruction", "edge_case_prompt_response": "prompt",
               "preference_pairs": "prompt", "cot_qa": "question"}[fmt]
        obj[key] = text
