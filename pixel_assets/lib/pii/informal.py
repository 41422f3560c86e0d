"""Informal (chat-style) labeled PII samples: lowercase names, accents, lowercase titles, names at
sentence start. Same presidio-research format as labeled.py; `pixel pii-eval --informal`.

Names come from `names.eval_name_pool()`, the evaluation side of the hash split, so none of them is
on the detector's name list; a fifth are drawn from non-English locales (accented spellings).
Each name is lowercased with probability `lowercase` (1/3 and 1.0 are the two targets).
TUNE_INFORMAL_TEMPLATES were looked at while writing the cue lists; EVAL_INFORMAL_TEMPLATES were not.
Slots: {PERSON} (first + last), {FIRST}, {LAST}, {CITY}.
"""

from __future__ import annotations

import random
from typing import Any

TUNE_INFORMAL_TEMPLATES = [
    "my husband {FIRST} hit me again last night and i dont know what to do",
    "i met {FIRST} at the clinic on tuesday and she seemed nice",
    "my therapist dr. {PERSON} said i should call her if it gets bad",
    "{FIRST} keeps texting me even after i asked for space",
    "talked to my sister {FIRST} about the panic attacks, she didnt get it",
    "ok so {PERSON} from my old job reached out and i froze",
    "idk why but when {FIRST} yells i just shut down completely",
    "my ex {FIRST} still has my dog and wont answer",
    "went to see dr {LAST} again, more meds, same feeling",
    "a friend named {FIRST} invited me to a group thing in {CITY}",
    "mrs. {LAST} from next door called the cops on us",
    "honestly {FIRST} is the only one who checks on me",
]

EVAL_INFORMAL_TEMPLATES = [
    "so yesterday {FIRST} showed up at my door drunk and started screaming",
    "my wife {FIRST} thinks im overreacting but i cant sleep",
    "the psychiatrist, dr. {LAST}, upped my dose and now im numb",
    "{PERSON} was my best friend for ten years and now she wont even look at me",
    "i keep having dreams about {FIRST}, is that normal after a breakup?",
    "my boss {PERSON} made a joke about my weight in front of everyone",
    "lol my mom and {FIRST} are fighting again over thanksgiving",
    "we moved to {CITY} to be closer to my dad but it feels lonely",
    "can you remind me what {FIRST} said about boundaries last time",
    "my counselor ms. {LAST} told me to write the letter and not send it",
    "since {FIRST} left i barely eat, maybe one meal a day",
    "my son {FIRST} has been refusing to go to school for two weeks",
    "{FIRST} and i broke up in march and i still check his instagram",
    "i told dr {PERSON} about the flashbacks and she recommended emdr",
    "tbh i miss {FIRST} more than i thought i would",
    "my roommate {PERSON} brings people over every night and i feel unsafe",
    "grandma {FIRST} passed last month and nobody in the family talks about it",
    "i was with {FIRST} and {SECOND} at the party when the panic started",
]

SLOT_TYPES = {"PERSON": "PERSON", "FIRST": "PERSON", "SECOND": "PERSON", "LAST": "PERSON", "CITY": "LOCATION"}


def _draw(slot: str, rng: random.Random, pool, lowercase: float, international: float) -> str:
    if slot == "CITY":
        value = rng.choice(["Cleveland", "Sacramento", "Albuquerque", "Tulsa", "Leeds", "Rotterdam", "Marseille"])
    else:
        english = [loc for loc in pool if loc.startswith("en_")]
        other = [loc for loc in pool if not loc.startswith("en_")]
        loc = rng.choice(other if rng.random() < international else english)
        firsts, lasts = pool[loc]
        value = {"FIRST": rng.choice(firsts), "SECOND": rng.choice(firsts), "LAST": rng.choice(lasts)}.get(
            slot, f"{rng.choice(firsts)} {rng.choice(lasts)}")
    return value.lower() if rng.random() < lowercase else value


def informal_set(n: int, *, seed: int = 17, split: str = "eval", lowercase: float = 1 / 3,
                 international: float = 0.2, formal_share: float = 0.5) -> list[dict[str, Any]]:
    """n samples with exact gold spans (names from the evaluation side only): `formal_share` of
    them from labeled.py's templates of the same split with person names lowercased at the same
    rate, the rest chat-style informal templates."""
    from pixel_assets.lib.pii.labeled import fill, labeled_set
    from pixel_assets.lib.pii.names import eval_name_pool

    if split not in ("eval", "tune"):
        raise ValueError("split must be 'eval' or 'tune'")
    if not 0 <= lowercase <= 1:
        raise ValueError("lowercase must be within 0..1")
    templates = EVAL_INFORMAL_TEMPLATES if split == "eval" else TUNE_INFORMAL_TEMPLATES
    rng, pool = random.Random(seed), eval_name_pool()
    n_formal = round(n * formal_share)
    samples = [_lowercase_names(s, rng, lowercase) for s in labeled_set(n_formal, seed=seed, split=split)]
    for i in range(n - n_formal):
        samples.append(fill(templates[i % len(templates)], None, rng, slot_types=SLOT_TYPES,
                            value=lambda slot: _draw(slot, rng, pool, lowercase, international)))
    return samples


def _lowercase_names(sample: dict[str, Any], rng: random.Random, rate: float) -> dict[str, Any]:
    """Lowercase each PERSON value with probability `rate` (same length, so spans stay valid)."""
    text = sample["full_text"]
    for span in sample["spans"]:
        value = span["entity_value"]
        if span["entity_type"] == "PERSON" and rng.random() < rate and len(value.lower()) == len(value):
            span["entity_value"] = value.lower()
            text = text[: span["start_position"]] + value.lower() + text[span["end_position"] :]
    return {"full_text": text, "spans": sample["spans"]}
