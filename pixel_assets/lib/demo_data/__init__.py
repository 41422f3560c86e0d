"""Seeded demo-data generator: every registry family in its real source shape (SPEC §2).

``generate_demo_sources(root)`` writes ``sources/...`` files at the paths the registry globs
expect, with planted PII, exact / cross-family / near duplicates, the same question answered
twice, mojibake, HTML and malformed records, and a ``demo_plan.json`` at the root that says what
was planted so other stages' tests can assert on it. Same seed and scale = same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from faker import Faker

from pixel_assets.lib import contract
from pixel_assets.lib.registry import Registry, load_registry
from pixel_assets.lib.storage import DataRoot

from . import phrases as P

PLAN_KEY = "demo_plan.json"
COUNSEL_CHAT_DIR = "sources/professional_therapeutic/counsel_chat"
# The real counsel-chat sample shipped in the package (MIT licence), copied as-is.
COUNSEL_CHAT_SOURCE = Path(__file__).resolve().parents[2] / "data" / "counsel_chat"
OVERSIZE_BYTES = 1_100_000  # above the 1 MB record limit
ROLE_USER, ROLE_ASSISTANT, ROLE_SYSTEM = "user", "assistant", "system"

# --- plan -------------------------------------------------------------------------------


@dataclass
class FamilyPlan:
    records_written: int = 0  # every record a loader will see (valid + malformed)
    valid: int = 0
    malformed: dict[str, int] = field(default_factory=dict)  # quarantine reason -> count
    files: list[str] = field(default_factory=list)


@dataclass
class DemoPlan:
    """What was planted. Record references are {family, key, location[, demo_id, content_hash]};
    location follows the loaders' convention ("line N", "item N", "row N" all 1-based, "file")."""

    seed: int
    scale: float
    families: dict[str, FamilyPlan] = field(default_factory=dict)
    # [{content_hash, members: [ref, ...]}]; members >= 2, possibly across families
    exact_duplicate_groups: list[dict[str, Any]] = field(default_factory=list)
    # [{family, a: ref, b: ref, jaccard}] (5-word shingles of the non-system text)
    near_duplicate_pairs: list[dict[str, Any]] = field(default_factory=list)
    # [{family, first_user_turn_sha256, a: ref, b: ref}]
    same_question_pairs: list[dict[str, Any]] = field(default_factory=list)
    pii: dict[str, list[str]] = field(default_factory=dict)  # type -> planted values
    pii_occurrences: list[dict[str, Any]] = field(default_factory=list)  # {type, value, ref}
    allow_listed_names: list[str] = field(default_factory=list)  # creators: not PII
    encoding_issues: list[dict[str, Any]] = field(default_factory=list)  # {kind, ref}

    @property
    def total_records(self) -> int:
        return sum(f.records_written for f in self.families.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "DemoPlan":
        data = json.loads(text)
        data["families"] = {k: FamilyPlan(**v) for k, v in data["families"].items()}
        return cls(**data)


def load_plan(root: DataRoot) -> DemoPlan:
    return DemoPlan.from_json(root.read_text(PLAN_KEY))


# --- similarity (the measure the near-dup stage uses) -------------------------------------

_WORD_RE = re.compile(r"\w+")


def shingles(messages: list[dict[str, Any]], k: int = 5) -> set[tuple[str, ...]]:
    """Word k-shingles of the lower-cased non-system text."""
    words = _WORD_RE.findall(
        " ".join(m["content"] for m in messages if m.get("role") != ROLE_SYSTEM).lower()
    )
    return {tuple(words[i : i + k]) for i in range(max(1, len(words) - k + 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


# --- text composition ---------------------------------------------------------------------

_SLOT_RE = re.compile(r"\{(\w+)\}")


class Composer:
    """Fills phrase-bank templates with a family's own seeded random source and Faker."""

    def __init__(self, rng: random.Random, fake: Faker):
        self.rng, self.fake = rng, fake

    def fill(self, template: str, *, capitalize: bool = True) -> str:
        def slot(m: re.Match) -> str:
            name = m.group(1)
            if name == "job":
                return self.fake.job().split(",")[0].lower()
            if name == "num":
                return str(self.rng.randint(3, 400))
            value = self.rng.choice(P.SLOTS[name])
            return self.fill(value, capitalize=False) if "{" in value else value

        text = _SLOT_RE.sub(slot, template)
        return text[0].upper() + text[1:] if capitalize else text

    def turn(self, role: str, theme: str | None, sentences: tuple[int, int]) -> str:
        rng = self.rng
        is_client = role == ROLE_USER
        general = P.CLIENT_SENTENCES if is_client else P.THERAPIST_SENTENCES
        themed = P.THEMES.get(theme or "", {}).get("client" if is_client else "therapist", [])
        parts: list[str] = []
        if is_client and rng.random() < 0.25:
            parts.append(self.fill(rng.choice(P.CLIENT_OPENERS)))
        for _ in range(rng.randint(*sentences)):
            bank = themed if themed and rng.random() < 0.5 else general
            parts.append(self.fill(rng.choice(bank)))
        if rng.random() < 0.35:
            parts.append(rng.choice(P.CLIENT_QUESTIONS if is_client else P.THERAPIST_CLOSERS))
        return " ".join(parts)

    def dialogue(
        self, theme: str | None, pairs: tuple[int, int], sentences: tuple[int, int] = (2, 4),
        first: str = ROLE_USER,
    ) -> list[dict[str, str]]:
        second = ROLE_ASSISTANT if first == ROLE_USER else ROLE_USER
        out: list[dict[str, str]] = []
        for _ in range(self.rng.randint(*pairs)):
            out.append({"role": first, "content": self.turn(first, theme, sentences)})
            out.append({"role": second, "content": self.turn(second, theme, sentences)})
        return out


# --- internal record model ----------------------------------------------------------------


@dataclass
class Conv:
    messages: list[dict[str, str]]  # normalized roles, the contents a loader will produce
    demo_id: str
    meta: dict[str, Any] = field(default_factory=dict)  # written into the source where it can be
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific (rejected, reasoning, ...)
    encoding: str | None = None  # "mojibake" | "html": not clean, kept out of the hash plan
    pii: list[tuple[str, str]] = field(default_factory=list)
    dup_group: str | None = None
    near_pair: tuple[str, str] | None = None  # (pair id, "a"|"b")
    same_question: tuple[str, str] | None = None


@dataclass
class Bad:
    reason: str
    payload: Any  # bytes (JSONL line / txt file) | object (JSON array item) | dict (CSV row)


@dataclass
class FileSpec:
    key: str
    format: str
    items: list[Conv | Bad] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


# --- PII planting ------------------------------------------------------------------------

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


# --- family builders -----------------------------------------------------------------------


def _n(base: int, scale: float, floor: int = 6) -> int:
    return max(floor, round(base * scale))


class FamilyBuilder:
    def __init__(self, family: str, seed: int, scale: float):
        self.family, self.scale = family, scale
        digest = hashlib.sha256(f"{seed}:{family}".encode()).digest()
        self.rng = random.Random(int.from_bytes(digest[:8], "big"))
        fake = Faker("en_US")
        fake.seed_instance(int.from_bytes(digest[8:16], "big"))
        self.comp = Composer(self.rng, fake)
        self._next_id = 0
        self.files: list[FileSpec] = []

    def new_id(self) -> str:
        self._next_id += 1
        return f"{self.family}-{self._next_id:05d}"

    def conv(self, messages: list[dict[str, str]], **kw: Any) -> Conv:
        return Conv(messages=messages, demo_id=self.new_id(), **kw)

    def add_file(self, key: str, fmt: str, **options: Any) -> FileSpec:
        spec = FileSpec(key=key, format=fmt, options=options)
        self.files.append(spec)
        return spec


def _with_system(system: str | None, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return ([{"role": ROLE_SYSTEM, "content": system}] if system else []) + messages


def _fill_file(
    b: FamilyBuilder, spec: FileSpec, count: int, make: Callable[[], list[dict[str, str]]],
    *, meta: Callable[[], dict[str, Any]] | None = None, extra: Callable[[Conv], dict[str, Any]] | None = None,
    pii_rate: float = 0.12, encoding: str | None = None, encoding_rate: float = 0.0,
) -> None:
    for _ in range(count):
        c = b.conv(make(), meta=meta() if meta else {})
        r = b.rng.random()
        if r < pii_rate:
            _plant_pii_in(b, c)
        elif encoding and r < pii_rate + encoding_rate:
            _break_encoding(b, c, encoding)
        if extra:
            c.extra.update(extra(c))
        spec.items.append(c)


def _plant_pii_in(b: FamilyBuilder, c: Conv) -> None:
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


def _variant(messages: list[dict[str, str]], how: str) -> list[dict[str, str]]:
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
            dup = b.conv(_variant(src.messages, how), meta=dict(src.meta), extra=dict(src.extra))
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


def _raw_object(spec: FileSpec, c: Conv) -> Any:
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
            base = _raw_object(spec, donor)
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


# --- the families -----------------------------------------------------------------------------

LLAMA3_INSTRUCTION = (
    "You are a helpful mental health counselling assistant, please answer the mental health "
    "questions based on the patient's description."
)
EDGE_CATEGORIES = ["suicidal_ideation", "self_harm", "hostility", "boundary_testing", "manipulation",
                   "dissociation", "substance_crisis", "jailbreak_attempt"]
DIFFICULTY = ["low", "moderate", "high", "extreme"]


def _two_turn(b: FamilyBuilder, theme: str | None, sentences=(2, 4)) -> Callable[[], list[dict[str, str]]]:
    return lambda: b.comp.dialogue(theme, (1, 1), sentences)


def _long(b: FamilyBuilder, theme: str | None, system: str | None = None) -> Callable[[], list[dict[str, str]]]:
    return lambda: _with_system(system, b.comp.dialogue(theme, (3, 4), (2, 3)))


def build_professional(b: FamilyBuilder) -> None:
    psych = b.add_file("sources/professional_therapeutic/psych8k/psych8k_demo.jsonl", "context_response")
    _fill_file(b, psych, _n(300, b.scale), _two_turn(b, None, (3, 5)), encoding="html", encoding_rate=0.03)
    plant_exact_dups(b, psych, _n(3, b.scale, 1))
    plant_same_question(b, psych, _n(3, b.scale, 1), None)
    plant_malformed(b, psych)

    sft = b.add_file("sources/professional_therapeutic/therapist_sft/therapist_sft_demo.csv", "marker_text_csv")
    _fill_file(b, sft, _n(200, b.scale), lambda: b.comp.dialogue(None, (1, 3), (2, 3)))
    plant_exact_dups(b, sft, _n(2, b.scale, 1))
    plant_malformed(b, sft)

    llama = b.add_file("sources/professional_therapeutic/llama3_counseling/llama3_mental_counseling.jsonl", "instruction")

    def llama_extra(c: Conv) -> dict[str, Any]:
        return {"instruction": LLAMA3_INSTRUCTION, "input": c.messages[0]["content"]}

    _fill_file(b, llama, _n(200, b.scale), _two_turn(b, None, (3, 5)), extra=llama_extra)
    plant_malformed(b, llama)


def build_priority(b: FamilyBuilder) -> None:
    for tier in (1, 2, 3):
        spec = b.add_file(f"sources/priority_datasets/priority_{tier}_FINAL.jsonl", "client_therapist")
        meta = lambda tier=tier: {"priority": tier, "topic": b.rng.choice(["anxiety", "depression", "grief", "relationships", "stress"])}
        _fill_file(b, spec, _n(150, b.scale), lambda: b.comp.dialogue(None, (2, 5), (2, 3)), meta=meta)
        plant_exact_dups(b, spec, _n(2, b.scale, 1))
        if tier == 1:
            plant_near_dups(b, spec, _n(3, b.scale, 1), _long(b, None))
            plant_malformed(b, spec)


def build_mental_health(b: FamilyBuilder) -> None:
    counseling = b.add_file("sources/mental_health_datasets/counseling/mental_health_counseling_conversations.jsonl", "context_response")
    _fill_file(b, counseling, _n(300, b.scale), _two_turn(b, None, (3, 5)), encoding="html", encoding_rate=0.04)
    plant_exact_dups(b, counseling, _n(2, b.scale, 1))
    plant_same_question(b, counseling, _n(3, b.scale, 1), None)
    plant_malformed(b, counseling)
    share = b.add_file("sources/mental_health_datasets/sharegpt/mental_health_sharegpt.json", "sharegpt")
    _fill_file(b, share, _n(250, b.scale), lambda: b.comp.dialogue(None, (1, 4), (2, 3)), encoding="mojibake", encoding_rate=0.04)
    plant_exact_dups(b, share, _n(2, b.scale, 1))
    plant_near_dups(b, share, _n(2, b.scale, 1), _long(b, None))
    plant_malformed(b, share)


def build_cot(b: FamilyBuilder) -> None:
    for name in ("cot_reasoning_filtered", "cot_clinical_diagnosis"):
        spec = b.add_file(f"sources/cot_reasoning/{name}.json", "cot_qa")

        def cot_extra(c: Conv) -> dict[str, Any]:
            steps = [b.comp.fill(t) for t in b.rng.sample(P.THERAPIST_SENTENCES, 3)]
            reasoning = " ".join(f"Step {i + 1}: {s}" for i, s in enumerate(steps))
            return {"answer": c.messages[1]["content"], "reasoning": reasoning}

        _fill_file(b, spec, _n(150, b.scale), _two_turn(b, b.rng.choice(["cptsd", None]), (2, 4)),
                   meta=lambda: {"topic": b.rng.choice(["assessment", "formulation", "intervention"])}, extra=cot_extra)
        plant_malformed(b, spec)


def _edge_meta(b: FamilyBuilder) -> dict[str, Any]:
    return {"category": b.rng.choice(EDGE_CATEGORIES), "difficulty_level": b.rng.choice(DIFFICULTY)}


def build_edge_prompt_response(b: FamilyBuilder, key: str) -> None:
    spec = b.add_file(key, "edge_case_prompt_response")
    # prompt = the therapist's line, response = the client's (roles inverted in this shape)
    make = lambda: b.comp.dialogue(b.rng.choice(["adversarial", "crisis"]), (1, 1), (3, 4), first=ROLE_ASSISTANT)
    _fill_file(b, spec, _n(300 if "generator" in key else 250, b.scale), make, extra=lambda c: _edge_meta(b))
    plant_exact_dups(b, spec, _n(2, b.scale, 1))
    plant_malformed(b, spec)


def build_chatml_family(b: FamilyBuilder, key: str, count: int, theme: str | None, system: str | None,
                        pairs=(1, 4), near: int = 0, same_q: int = 0, encoding: str | None = None) -> FileSpec:
    spec = b.add_file(key, "chatml")
    _fill_file(b, spec, _n(count, b.scale), lambda: _with_system(system, b.comp.dialogue(theme, pairs, (2, 3))),
               meta=lambda: {"theme": theme or "general"}, encoding=encoding, encoding_rate=0.03)
    plant_exact_dups(b, spec, _n(2, b.scale, 1))
    if near:
        plant_near_dups(b, spec, _n(near, b.scale, 1), _long(b, theme, system))
    if same_q:
        plant_same_question(b, spec, _n(same_q, b.scale, 1), theme)
    plant_malformed(b, spec)
    return spec


def build_guardrails(b: FamilyBuilder) -> None:
    build_chatml_family(b, "sources/safety_guardrails_annihilator/guardrail_attacks.json", 200,
                        "adversarial", P.SYSTEM_PROMPTS["guardrails"])


def build_transcripts(b: FamilyBuilder) -> None:
    per_creator = _n(40, b.scale, 3)
    first_spec: FileSpec | None = None
    for slug, creator in P.CREATORS.items():
        for v in range(per_creator):
            spec = b.add_file(f"sources/video_transcripts/{slug}/{slug}_video_{v + 1:03d}.txt", "transcripts")
            first_spec = first_spec or spec
            bank = P.TRANSCRIPT_SENTENCES + P.THERAPIST_SENTENCES + P.CLIENT_SENTENCES
            body = [b.comp.fill(b.rng.choice(bank)) for _ in range(b.rng.randint(35, 70))]
            paragraphs = [" ".join(body[i : i + 6]) for i in range(0, len(body), 6)]
            text = f"Hi everyone, it's {creator}. " + "\n\n".join(paragraphs) + f"\n\nThanks for watching, this is {creator}.\n"
            c = b.conv([{"role": ROLE_ASSISTANT, "content": text}], meta={"creator": creator})
            if b.rng.random() < 0.08:
                _plant_pii_in(b, c)
            spec.items.append(c)
    # the same video uploaded twice (exact duplicate, trailing whitespace differs)
    src = first_spec.items[0]
    src.dup_group = f"{b.family}-dup0"
    dup = b.conv([{"role": ROLE_ASSISTANT, "content": src.messages[0]["content"] + "\n\n\n"}], meta=dict(src.meta))
    dup.dup_group, dup.pii = src.dup_group, list(src.pii)
    slug = next(iter(P.CREATORS))
    b.add_file(f"sources/video_transcripts/{slug}/{slug}_video_001_reupload.txt", "transcripts").items.append(dup)
    for reason in malformed_reasons("transcripts", False, b.family):
        spec = b.add_file(f"sources/video_transcripts/{slug}/{slug}_broken_{reason}.txt", "transcripts")
        spec.items.append(Bad(reason, b"   \n\t\n" if reason == "unreadable_source" else
                              b"Welcome back everyone. \xff\xfe\xc3\x28 broken bytes and more.\n"))


def build_voice_persona(b: FamilyBuilder) -> None:
    spec = b.add_file("sources/voice_persona/voice_persona_conversations.jsonl", "chatml")
    creators = list(P.CREATORS.values())

    def make() -> list[dict[str, str]]:
        creator = b.rng.choice(creators)
        messages = _with_system(P.PERSONA_SYSTEM.format(creator=creator), b.comp.dialogue("cptsd", (1, 3), (2, 3)))
        if b.rng.random() < 0.4:
            i = b.rng.choice([i for i, m in enumerate(messages) if m["role"] == ROLE_USER])
            messages[i]["content"] += f" I watched a video by {creator} about this {b.comp.fill('{when}').lower()}."
        return messages

    _fill_file(b, spec, _n(250, b.scale), make, meta=lambda: {"persona": "creator_voice"})
    plant_exact_dups(b, spec, _n(2, b.scale, 1))
    plant_near_dups(b, spec, _n(2, b.scale, 1), _long(b, "cptsd", P.PERSONA_SYSTEM.format(creator=creators[0])))
    plant_malformed(b, spec)


def build_long_running(b: FamilyBuilder) -> None:
    spec = b.add_file("sources/long_running_therapy/long_sessions.jsonl", "client_therapist")
    _fill_file(b, spec, _n(150, b.scale), lambda: b.comp.dialogue(b.rng.choice([None, "cptsd", "addiction"]), (10, 20), (1, 3)),
               meta=lambda: {"session_number": b.rng.randint(5, 60), "modality": b.rng.choice(P.SLOTS["modality"])},
               pii_rate=0.2)
    plant_exact_dups(b, spec, _n(1, b.scale, 1))
    plant_malformed(b, spec)


def build_addiction(b: FamilyBuilder) -> None:
    spec = b.add_file("sources/addiction/addiction_counseling.jsonl", "instruction")
    _fill_file(b, spec, _n(300, b.scale), _two_turn(b, "addiction", (3, 5)),
               extra=lambda c: {"output_key": b.rng.choice(["output", "response"])})
    plant_exact_dups(b, spec, _n(2, b.scale, 1))
    plant_same_question(b, spec, _n(2, b.scale, 1), "addiction")
    for c in spec.items:
        c.extra.setdefault("output_key", "output")
    plant_malformed(b, spec)


def build_sharegpt_family(b: FamilyBuilder, key: str, count: int, theme: str | None, system: str | None, near: int = 0) -> None:
    spec = b.add_file(key, "sharegpt")
    make = lambda: _with_system(system, b.comp.dialogue(theme, (1, 4), (2, 3)))
    _fill_file(b, spec, _n(count, b.scale), make, encoding="mojibake", encoding_rate=0.03)
    plant_exact_dups(b, spec, _n(2, b.scale, 1))
    if near:
        plant_near_dups(b, spec, _n(near, b.scale, 1), _long(b, theme, system))
    plant_malformed(b, spec)


def build_dpo(b: FamilyBuilder) -> None:
    spec = b.add_file("sources/dpo_preference/preference_pairs.jsonl", "preference_pairs")
    dismissive = [
        "Just think positive and it will pass.", "Everyone feels that way, you'll be fine.",
        "Have you tried not worrying about it?", "That's not a big deal, honestly.",
        "You should just leave {rel} and move on.", "Maybe try {activity} and stop overthinking.",
        "I can't help with that.", "You need to toughen up.",
    ]

    def rejected(_: Conv) -> dict[str, Any]:
        return {"rejected": " ".join(b.comp.fill(b.rng.choice(dismissive)) for _ in range(b.rng.randint(1, 3)))}

    make = lambda: b.comp.dialogue(b.rng.choice([None, "sarcasm", "addiction"]), (1, 1), (3, 5))
    _fill_file(b, spec, _n(300, b.scale), make,
               meta=lambda: {"category": b.rng.choice(["empathy", "safety", "boundaries"])}, extra=rejected)
    plant_exact_dups(b, spec, _n(2, b.scale, 1))
    plant_malformed(b, spec)


def build_nemotron(b: FamilyBuilder) -> None:
    spec = b.add_file("sources/nemotron_generic/generic_reasoning.jsonl", "chatml")
    for _ in range(_n(50, b.scale, 5)):
        q, a = b.rng.choice(P.GENERIC_QA)
        x, y = b.rng.randint(12, 999), b.rng.randint(2, 40)
        prime = all(x % d for d in range(2, int(x ** 0.5) + 1))
        values = dict(a=x, b=y, ab=x * y, a_over_b=x / y, a1=x + 1, tri=x * (x + 1) // 2, h=x // 60, m=x % 60,
                      prime_answer=f"{x} is {'a prime' if prime else 'not a prime'} number; check divisors up to its square root.")
        spec.items.append(b.conv([{"role": ROLE_USER, "content": q.format(**values)},
                                  {"role": ROLE_ASSISTANT, "content": a.format(**values)}], meta={"domain": "generic"}))
    plant_malformed(b, spec)


BUILDERS: dict[str, Callable[[FamilyBuilder], None]] = {
    "professional_therapeutic": build_professional,
    "priority_datasets": build_priority,
    "mental_health_datasets": build_mental_health,
    "cot_reasoning": build_cot,
    "edge_case_generator": lambda b: build_edge_prompt_response(b, "sources/edge_case_generator/edge_cases_generated.jsonl"),
    "edge_case_synthetic": lambda b: build_edge_prompt_response(b, "sources/edge_case_synthetic/synthetic_edge_cases.jsonl"),
    "edge_case_resulting_chats": lambda b: build_chatml_family(
        b, "sources/edge_case_resulting_chats/resulting_chats.jsonl", 250, "adversarial", None, (2, 4), near=2),
    "edge_case_crisis": lambda b: build_chatml_family(
        b, "sources/edge_case_crisis/crisis_conversations.jsonl", 150, "crisis", P.SYSTEM_PROMPTS["crisis"], (2, 4)),
    "safety_guardrails_annihilator": build_guardrails,
    "video_transcripts": build_transcripts,
    "voice_persona": build_voice_persona,
    "long_running_therapy": build_long_running,
    "cptsd": lambda b: build_chatml_family(b, "sources/cptsd/cptsd_conversations.jsonl", 300, "cptsd",
                                           P.SYSTEM_PROMPTS["therapist"], near=3, same_q=2, encoding="mojibake"),
    "addiction": build_addiction,
    "sarcasm": lambda b: build_sharegpt_family(b, "sources/sarcasm/sarcasm_conversations.json", 300, "sarcasm", None, near=2),
    "experimental": lambda b: build_sharegpt_family(
        b, "sources/experimental/experimental_modalities.json", 200, None, P.SYSTEM_PROMPTS["experimental"]),
    "roleplay_simulator": lambda b: build_chatml_family(
        b, "sources/roleplay_simulator/roleplay_sessions.jsonl", 300, "roleplay", P.SYSTEM_PROMPTS["roleplay"], (2, 5), near=2),
    "dpo_preference": build_dpo,
    "nemotron_generic": build_nemotron,
}

# Cross-family exact duplicates: the same exchange in several families' shapes (roles and
# field names differ; the content hash does not).
CROSS_FAMILY_TARGETS = [
    ("cptsd", "mental_health_datasets", "addiction"),
    ("priority_datasets", "dpo_preference", "edge_case_generator"),
    ("sarcasm", "professional_therapeutic", "roleplay_simulator"),
    ("experimental", "priority_datasets", "cptsd", "mental_health_datasets"),
]


def _cross_family_dups(builders: dict[str, FamilyBuilder], seed: int, scale: float) -> None:
    rng = random.Random(f"{seed}:cross-family")
    comp = Composer(rng, Faker("en_US"))
    comp.fake.seed_instance(seed)
    rounds = max(1, round(2 * scale))
    for r in range(rounds):
        for g, families in enumerate(CROSS_FAMILY_TARGETS):
            messages = comp.dialogue(None, (1, 1), (3, 4))
            group = f"cross-{r}-{g}"
            for family in families:
                if family not in builders:
                    continue
                b = builders[family]
                # a file whose shape holds a system-free two-message exchange
                spec = next(s for s in b.files if s.format not in ("cot_qa", "qa_csv", "transcripts")
                            and not (s.format == "instruction" and "llama3" in s.key))
                c = b.conv(_variant(messages, rng.choice(("lower", "whitespace", "upper"))), dup_group=group)
                if spec.format == "preference_pairs":
                    c.extra["rejected"] = "Just stop thinking about it."
                if spec.format == "edge_case_prompt_response":
                    c.messages = [c.messages[1], c.messages[0]]  # therapist line is the prompt
                    c.extra.update(category="boundary_testing", difficulty_level="moderate")
                if spec.format == "instruction":
                    c.extra["output_key"] = "output"
                spec.items.insert(rng.randint(0, len(spec.items)), c)


# --- writing ----------------------------------------------------------------------------------


def _serialize(spec: FileSpec) -> tuple[bytes, list[str]]:
    """File bytes and the loader-facing location of each item."""
    fmt = spec.format
    if fmt == "transcripts":
        (item,) = spec.items
        data = item.payload if isinstance(item, Bad) else item.messages[0]["content"].encode("utf-8")
        return data, ["file"]
    if fmt == "marker_text_csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["text", "source"], lineterminator="\n")
        writer.writeheader()
        for item in spec.items:
            if isinstance(item, Bad):
                writer.writerow({"source": "therapist-sft-format", **item.payload})
            else:
                turns = [f"{'human' if m['role'] == ROLE_USER else 'gpt'}: {m['content']}" for m in item.messages]
                writer.writerow({"text": "\n".join(turns), "source": "therapist-sft-format"})
        return buf.getvalue().encode("utf-8"), [f"row {i + 1}" for i in range(len(spec.items))]
    if spec.key.endswith(".jsonl"):
        lines = [
            item.payload if isinstance(item, Bad) else json.dumps(_raw_object(spec, item), ensure_ascii=False).encode("utf-8")
            for item in spec.items
        ]
        return b"\n".join(lines) + b"\n", [f"line {i + 1}" for i in range(len(lines))]
    objects = [item.payload if isinstance(item, Bad) else _raw_object(spec, item) for item in spec.items]
    return json.dumps(objects, ensure_ascii=False, indent=1).encode("utf-8"), [f"item {i + 1}" for i in range(len(objects))]


def repaired_hash(messages: list[dict[str, str]]) -> str:
    """Content hash of the messages as the loader produces them (its text repair, then the
    contract hash)."""
    from pixel_assets.lib.ingest import clean_text

    return contract.content_hash([{"content": clean_text(m["content"])} for m in messages])


def _finalize_messages(spec: FileSpec, c: Conv) -> list[dict[str, str]]:
    """The messages the loader builds from an item: cot reasoning goes before the answer,
    instruction and a non-empty input form the user turn (both joined by a blank line)."""
    if spec.format == "cot_qa":
        assistant = f"{c.extra['reasoning'].strip()}\n\n{c.extra['answer'].strip()}"
        return [c.messages[0], {"role": ROLE_ASSISTANT, "content": assistant}]
    if spec.format == "instruction" and c.extra.get("input"):
        user = f"{c.extra['instruction'].strip()}\n\n{c.extra['input'].strip()}"
        return [{"role": ROLE_USER, "content": user}, c.messages[1]]
    return c.messages


def _write_counsel_chat(root: DataRoot, plan: DemoPlan) -> None:
    data_dir = COUNSEL_CHAT_SOURCE
    csv_bytes = data_dir.joinpath("counselchat-data.csv").read_bytes()
    key = f"{COUNSEL_CHAT_DIR}/counselchat-data.csv"
    root.write_bytes(key, csv_bytes)
    root.write_bytes(f"{COUNSEL_CHAT_DIR}/LICENSE", data_dir.joinpath("LICENSE").read_bytes())
    from pixel_assets.lib.ingest import clean_text

    csv.field_size_limit(1 << 30)
    fam = plan.families.setdefault("professional_therapeutic", FamilyPlan())
    fam.files.append(key)
    # Real data: a few rows have no question or an answer that is only markup; they are
    # quarantined as empty_content, which the plan says.
    for row in csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"))):
        fam.records_written += 1
        question = " ".join((row[c] or "").strip() for c in ("questionTitle", "questionText"))
        if not clean_text(question) or not clean_text(row["answerText"] or "", html=True):
            fam.malformed["empty_content"] = fam.malformed.get("empty_content", 0) + 1
        else:
            fam.valid += 1


def generate_demo_sources(
    root: DataRoot, *, seed: int = 7, scale: float = 1.0, registry: Registry | None = None
) -> DemoPlan:
    """Write every registry family's demo sources under ``sources/`` and ``demo_plan.json``."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    registry = registry or load_registry()
    unknown = [f for f in registry.names if f not in BUILDERS]
    if unknown:
        raise ValueError(f"no demo-data builder for families: {', '.join(unknown)}")
    builders: dict[str, FamilyBuilder] = {}
    for name in registry.names:
        builders[name] = FamilyBuilder(name, seed, scale)
        BUILDERS[name](builders[name])
    _cross_family_dups(builders, seed, scale)

    plan = DemoPlan(seed=seed, scale=scale, allow_listed_names=sorted(P.CREATORS.values()))
    dup_members: dict[str, list[dict[str, Any]]] = {}
    dup_hashes: dict[str, set[str]] = {}
    near: dict[str, dict[str, Any]] = {}
    same_q: dict[str, dict[str, Any]] = {}
    for name, b in builders.items():
        fam = plan.families.setdefault(name, FamilyPlan())
        if name == "professional_therapeutic":
            _write_counsel_chat(root, plan)
        for spec in b.files:
            data, locations = _serialize(spec)
            root.write_bytes(spec.key, data)
            fam.files.append(spec.key)
            for item, location in zip(spec.items, locations):
                fam.records_written += 1
                if isinstance(item, Bad):
                    fam.malformed[item.reason] = fam.malformed.get(item.reason, 0) + 1
                    continue
                fam.valid += 1
                ref: dict[str, Any] = {"family": name, "key": spec.key, "location": location, "demo_id": item.demo_id}
                if not item.encoding:
                    ref["content_hash"] = repaired_hash(_finalize_messages(spec, item))
                for kind, value in item.pii:
                    plan.pii_occurrences.append({"type": kind, "value": value, "ref": ref})
                    values = plan.pii.setdefault(kind, [])
                    if value not in values:
                        values.append(value)
                if item.encoding:
                    plan.encoding_issues.append({"kind": item.encoding, "ref": ref})
                if item.dup_group and "content_hash" in ref:
                    dup_members.setdefault(item.dup_group, []).append(ref)
                    dup_hashes.setdefault(item.dup_group, set()).add(ref["content_hash"])
                if item.near_pair:
                    pair_id, side = item.near_pair
                    near.setdefault(pair_id, {"family": name, "messages": {}})[side] = ref
                    near[pair_id]["messages"][side] = item.messages
                if item.same_question:
                    pair_id, side = item.same_question
                    entry = same_q.setdefault(pair_id, {"family": name})
                    entry[side] = ref
                    entry["first_user_turn_sha256"] = hashlib.sha256(
                        contract.first_user_turn(item.messages).encode("utf-8")).hexdigest()
    for group, members in sorted(dup_members.items()):
        if len(members) < 2:
            continue
        if len(dup_hashes[group]) != 1:
            raise AssertionError(f"planted duplicate group {group} has {len(dup_hashes[group])} hashes")
        plan.exact_duplicate_groups.append({"group": group, "content_hash": members[0]["content_hash"], "members": members})
    for pair_id, entry in sorted(near.items()):
        msgs = entry.pop("messages")
        entry["jaccard"] = round(jaccard(shingles(msgs["a"]), shingles(msgs["b"])), 4)
        plan.near_duplicate_pairs.append({"pair": pair_id, **entry})
    plan.same_question_pairs = [{"pair": k, **v} for k, v in sorted(same_q.items())]
    for values in plan.pii.values():
        values.sort()
    root.write_text(PLAN_KEY, plan.to_json())
    return plan


__all__ = [
    "DemoPlan", "FamilyPlan", "PLAN_KEY", "generate_demo_sources", "load_plan", "shingles", "jaccard",
    "repaired_hash",
]
