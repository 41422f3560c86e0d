"""The families: one builder per registry family (formats, sizes, planted defects), and the
cross-family exact duplicates."""

from __future__ import annotations

import random
from typing import Any, Callable

from faker import Faker

from . import phrases as P
from .compose import Bad, Composer, Conv, FamilyBuilder, FileSpec, scaled, with_system
from .defects import (
    fill_file,
    plant_pii_in,
    variant_of,
    malformed_reasons,
    plant_exact_dups,
    plant_malformed,
    plant_near_dups,
    plant_same_question,
)
from .plan import ROLE_ASSISTANT, ROLE_USER


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
    return lambda: with_system(system, b.comp.dialogue(theme, (3, 4), (2, 3)))


def build_professional(b: FamilyBuilder) -> None:
    psych = b.add_file("sources/professional_therapeutic/psych8k/psych8k_demo.jsonl", "context_response")
    fill_file(b, psych, scaled(300, b.scale), _two_turn(b, None, (3, 5)), encoding="html", encoding_rate=0.03)
    plant_exact_dups(b, psych, scaled(3, b.scale, 1))
    plant_same_question(b, psych, scaled(3, b.scale, 1), None)
    plant_malformed(b, psych)

    sft = b.add_file("sources/professional_therapeutic/therapist_sft/therapist_sft_demo.csv", "marker_text_csv")
    fill_file(b, sft, scaled(200, b.scale), lambda: b.comp.dialogue(None, (1, 3), (2, 3)))
    plant_exact_dups(b, sft, scaled(2, b.scale, 1))
    plant_malformed(b, sft)

    llama = b.add_file("sources/professional_therapeutic/llama3_counseling/llama3_mental_counseling.jsonl", "instruction")

    def llama_extra(c: Conv) -> dict[str, Any]:
        return {"instruction": LLAMA3_INSTRUCTION, "input": c.messages[0]["content"]}

    fill_file(b, llama, scaled(200, b.scale), _two_turn(b, None, (3, 5)), extra=llama_extra)
    plant_malformed(b, llama)


def build_priority(b: FamilyBuilder) -> None:
    for tier in (1, 2, 3):
        spec = b.add_file(f"sources/priority_datasets/priority_{tier}_FINAL.jsonl", "client_therapist")
        meta = lambda tier=tier: {"priority": tier, "topic": b.rng.choice(["anxiety", "depression", "grief", "relationships", "stress"])}
        fill_file(b, spec, scaled(150, b.scale), lambda: b.comp.dialogue(None, (2, 5), (2, 3)), meta=meta)
        plant_exact_dups(b, spec, scaled(2, b.scale, 1))
        if tier == 1:
            plant_near_dups(b, spec, scaled(3, b.scale, 1), _long(b, None))
            plant_malformed(b, spec)


def build_mental_health(b: FamilyBuilder) -> None:
    counseling = b.add_file("sources/mental_health_datasets/counseling/mental_health_counseling_conversations.jsonl", "context_response")
    fill_file(b, counseling, scaled(300, b.scale), _two_turn(b, None, (3, 5)), encoding="html", encoding_rate=0.04)
    plant_exact_dups(b, counseling, scaled(2, b.scale, 1))
    plant_same_question(b, counseling, scaled(3, b.scale, 1), None)
    plant_malformed(b, counseling)
    share = b.add_file("sources/mental_health_datasets/sharegpt/mental_health_sharegpt.json", "sharegpt")
    fill_file(b, share, scaled(250, b.scale), lambda: b.comp.dialogue(None, (1, 4), (2, 3)), encoding="mojibake", encoding_rate=0.04)
    plant_exact_dups(b, share, scaled(2, b.scale, 1))
    plant_near_dups(b, share, scaled(2, b.scale, 1), _long(b, None))
    plant_malformed(b, share)


def build_cot(b: FamilyBuilder) -> None:
    for name in ("cot_reasoning_filtered", "cot_clinical_diagnosis"):
        spec = b.add_file(f"sources/cot_reasoning/{name}.json", "cot_qa")

        def cot_extra(c: Conv) -> dict[str, Any]:
            steps = [b.comp.fill(t) for t in b.rng.sample(P.THERAPIST_SENTENCES, 3)]
            reasoning = " ".join(f"Step {i + 1}: {s}" for i, s in enumerate(steps))
            return {"answer": c.messages[1]["content"], "reasoning": reasoning}

        fill_file(b, spec, scaled(150, b.scale), _two_turn(b, b.rng.choice(["cptsd", None]), (2, 4)),
                   meta=lambda: {"topic": b.rng.choice(["assessment", "formulation", "intervention"])}, extra=cot_extra)
        plant_malformed(b, spec)


def _edge_meta(b: FamilyBuilder) -> dict[str, Any]:
    return {"category": b.rng.choice(EDGE_CATEGORIES), "difficulty_level": b.rng.choice(DIFFICULTY)}


def build_edge_prompt_response(b: FamilyBuilder, key: str) -> None:
    spec = b.add_file(key, "edge_case_prompt_response")
    # prompt = the therapist's line, response = the client's (roles inverted in this shape)
    make = lambda: b.comp.dialogue(b.rng.choice(["adversarial", "crisis"]), (1, 1), (3, 4), first=ROLE_ASSISTANT)
    fill_file(b, spec, scaled(300 if "generator" in key else 250, b.scale), make, extra=lambda c: _edge_meta(b))
    plant_exact_dups(b, spec, scaled(2, b.scale, 1))
    plant_malformed(b, spec)


def build_chatml_family(b: FamilyBuilder, key: str, count: int, theme: str | None, system: str | None,
                        pairs=(1, 4), near: int = 0, same_q: int = 0, encoding: str | None = None) -> FileSpec:
    spec = b.add_file(key, "chatml")
    fill_file(b, spec, scaled(count, b.scale), lambda: with_system(system, b.comp.dialogue(theme, pairs, (2, 3))),
               meta=lambda: {"theme": theme or "general"}, encoding=encoding, encoding_rate=0.03)
    plant_exact_dups(b, spec, scaled(2, b.scale, 1))
    if near:
        plant_near_dups(b, spec, scaled(near, b.scale, 1), _long(b, theme, system))
    if same_q:
        plant_same_question(b, spec, scaled(same_q, b.scale, 1), theme)
    plant_malformed(b, spec)
    return spec


def build_guardrails(b: FamilyBuilder) -> None:
    build_chatml_family(b, "sources/safety_guardrails_annihilator/guardrail_attacks.json", 200,
                        "adversarial", P.SYSTEM_PROMPTS["guardrails"])


def build_transcripts(b: FamilyBuilder) -> None:
    per_creator = scaled(40, b.scale, 3)
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
                plant_pii_in(b, c)
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
        messages = with_system(P.PERSONA_SYSTEM.format(creator=creator), b.comp.dialogue("cptsd", (1, 3), (2, 3)))
        if b.rng.random() < 0.4:
            i = b.rng.choice([i for i, m in enumerate(messages) if m["role"] == ROLE_USER])
            messages[i]["content"] += f" I watched a video by {creator} about this {b.comp.fill('{when}').lower()}."
        return messages

    fill_file(b, spec, scaled(250, b.scale), make, meta=lambda: {"persona": "creator_voice"})
    plant_exact_dups(b, spec, scaled(2, b.scale, 1))
    plant_near_dups(b, spec, scaled(2, b.scale, 1), _long(b, "cptsd", P.PERSONA_SYSTEM.format(creator=creators[0])))
    plant_malformed(b, spec)


def build_long_running(b: FamilyBuilder) -> None:
    spec = b.add_file("sources/long_running_therapy/long_sessions.jsonl", "client_therapist")
    fill_file(b, spec, scaled(150, b.scale), lambda: b.comp.dialogue(b.rng.choice([None, "cptsd", "addiction"]), (10, 20), (1, 3)),
               meta=lambda: {"session_number": b.rng.randint(5, 60), "modality": b.rng.choice(P.SLOTS["modality"])},
               pii_rate=0.2)
    plant_exact_dups(b, spec, scaled(1, b.scale, 1))
    plant_malformed(b, spec)


def build_addiction(b: FamilyBuilder) -> None:
    spec = b.add_file("sources/addiction/addiction_counseling.jsonl", "instruction")
    fill_file(b, spec, scaled(300, b.scale), _two_turn(b, "addiction", (3, 5)),
               extra=lambda c: {"output_key": b.rng.choice(["output", "response"])})
    plant_exact_dups(b, spec, scaled(2, b.scale, 1))
    plant_same_question(b, spec, scaled(2, b.scale, 1), "addiction")
    for c in spec.items:
        c.extra.setdefault("output_key", "output")
    plant_malformed(b, spec)


def build_sharegpt_family(b: FamilyBuilder, key: str, count: int, theme: str | None, system: str | None, near: int = 0) -> None:
    spec = b.add_file(key, "sharegpt")
    make = lambda: with_system(system, b.comp.dialogue(theme, (1, 4), (2, 3)))
    fill_file(b, spec, scaled(count, b.scale), make, encoding="mojibake", encoding_rate=0.03)
    plant_exact_dups(b, spec, scaled(2, b.scale, 1))
    if near:
        plant_near_dups(b, spec, scaled(near, b.scale, 1), _long(b, theme, system))
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
    fill_file(b, spec, scaled(300, b.scale), make,
               meta=lambda: {"category": b.rng.choice(["empathy", "safety", "boundaries"])}, extra=rejected)
    plant_exact_dups(b, spec, scaled(2, b.scale, 1))
    plant_malformed(b, spec)


def build_nemotron(b: FamilyBuilder) -> None:
    spec = b.add_file("sources/nemotron_generic/generic_reasoning.jsonl", "chatml")
    for _ in range(scaled(50, b.scale, 5)):
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


def cross_family_dups(builders: dict[str, FamilyBuilder], seed: int, scale: float) -> None:
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
                c = b.conv(variant_of(messages, rng.choice(("lower", "whitespace", "upper"))), dup_group=group)
                if spec.format == "preference_pairs":
                    c.extra["rejected"] = "Just stop thinking about it."
                if spec.format == "edge_case_prompt_response":
                    c.messages = [c.messages[1], c.messages[0]]  # therapist line is the prompt
                    c.extra.update(category="boundary_testing", difficulty_level="moderate")
                if spec.format == "instruction":
                    c.extra["output_key"] = "output"
                spec.items.insert(rng.randint(0, len(spec.items)), c)


# --- writing ----------------------------------------------------------------------------------
