"""Seeded, Faker-based therapy-style PII data: a labeled set (presidio-research format), PII-free
conversations (over-redaction); `pixel bench pii` builds its corpus from them (pii/bench.py).

Templates are split: TUNE_TEMPLATES were used while choosing patterns and thresholds;
EVAL_TEMPLATES (the default for `pixel pii-labeled-set` / `pixel pii-eval --generate`) were not.
Slots: {PERSON} {FIRST} {EMAIL} {PHONE} {SSN} {CARD} {IP} {URL} {ADDRESS} {CITY} {HANDLE} {DOB}.
"""

from __future__ import annotations

import random
import re
from typing import Any

SLOT_TYPES = {
    "PERSON": "PERSON", "FIRST": "PERSON", "EMAIL": "EMAIL_ADDRESS", "PHONE": "PHONE_NUMBER",
    "SSN": "US_SSN", "CARD": "CREDIT_CARD", "IP": "IP_ADDRESS", "URL": "URL",
    "ADDRESS": "STREET_ADDRESS", "CITY": "LOCATION", "HANDLE": "SOCIAL_HANDLE", "DOB": "DATE_OF_BIRTH",
}

TUNE_TEMPLATES = [
    "My name is {PERSON} and I've been struggling with anxiety for about 8 years.",
    "You can email me at {EMAIL} if the session needs to move, I work until 5.",
    "My phone number is {PHONE}, please text before calling because I get anxious.",
    "The insurance form asked for my SSN, it's {SSN}, is that safe to share here?",
    "I paid the copay with my card {CARD} last Tuesday and it got declined twice.",
    "My brother keeps logging in from {IP} to check my accounts, I feel watched.",
    "I found this worksheet at {URL} and it helped a little with the panic.",
    "We moved to {ADDRESS} in March and I haven't slept well since.",
    "I grew up in {CITY} and every winter the depression hits harder.",
    "My ex still messages me from {HANDLE} even though I blocked the old account.",
    "I was born on {DOB}, so I'm turning forty soon and it scares me.",
    "{PERSON} told me I'm too sensitive, and I've been replaying it for weeks.",
    "When {FIRST} yells, I freeze, it's been like that since I was a kid.",
    "Call {PERSON} at {PHONE} if I don't show up, she's my emergency contact.",
    "I deleted TikTok and Snapchat, but {FIRST} still finds me on Facebook somehow.",
]

EVAL_TEMPLATES = [
    "Last session you mentioned journaling. I tried it for two weeks. Also my new email is {EMAIL}.",
    "Honestly I don't know. {PERSON} from work keeps criticizing me in meetings and I shut down.",
    "If you need to reach me my cell is {PHONE}; I usually pick up after 6 pm.",
    "I had to give my social security number, {SSN}, to the clinic and now I'm worried about identity theft.",
    "Someone charged my credit card {CARD} three times this month and I can't stop checking it.",
    "The router log showed the address {IP} connecting at 3 am, and I feel like I'm being stalked.",
    "My therapist before you recommended {URL} for grounding exercises, do you know it?",
    "I still live at {ADDRESS}, the same house where everything happened, since 2015.",
    "My family is in {CITY} and I only visit twice a year because it brings everything back.",
    "She posts about me on Instagram as {HANDLE} and I keep refreshing it at night.",
    "My date of birth is {DOB} and birthdays have been hard since my dad died.",
    "I talked to {PERSON} yesterday for an hour and felt lighter for the first time in months.",
    "{FIRST} said she would come to the session next Thursday but I'm not sure she will.",
    "My sponsor {PERSON} said to call {PHONE} whenever the cravings come back.",
    "You can send the invoice to {EMAIL} or mail it to {ADDRESS}, whichever is easier.",
    "For 3 years I've avoided {CITY}, ever since the accident on the highway.",
    "DOB: {DOB}. Reason for visit: panic attacks, on and off since last spring.",
    "I keep reading threads on {URL} about narcissistic parents, is that making it worse?",
    "My partner {FIRST} checks my phone every night and reads my messages.",
    "The bank flagged card number {CARD} and I panicked, I've had money anxiety for a decade.",
    "I feel like {PERSON} never listened to me, not once in twenty years of marriage.",
    "Text {PHONE} or message {HANDLE} — that's how my friends check on me now.",
]

# PII-free therapy talk, full of dates, durations, times and places-as-concepts.
CLEAN_SENTENCES = [
    "I've felt this way since March, maybe longer.", "It has been going on for 8 years now.",
    "Last Tuesday I couldn't get out of bed until noon.", "On Sunday nights the dread starts.",
    "I have been sober for 94 days.", "Every morning at 6 I wake up with my heart racing.",
    "Two weeks ago I had a panic attack at the grocery store.", "It started in 2019 after the divorce.",
    "I don't know why I feel so empty after work.", "My mother and I haven't spoken in a year.",
    "That sounds really painful, and it makes sense that you feel exhausted.",
    "What do you notice in your body when that memory comes up?",
    "Let's try a grounding exercise: name five things you can see.",
    "It's understandable that the holidays bring up grief.", "How has your sleep been this week?",
    "I keep thinking I'm a burden to everyone around me.", "By Friday I'm completely drained.",
    "In the summer it gets a bit better, but winter is hard.", "I tried meditation for 10 minutes a day.",
    "My boss gave me a deadline for the end of the month and I froze.",
    "You've survived a lot, and you're still here doing the work.",
    "Can we talk about what happened over the weekend?", "I slept maybe four hours last night.",
    "I relapsed on New Year's Eve and I feel ashamed.", "We've been working on this since January.",
    "When my father drank, the whole house went quiet.", "I want to feel safe in my own home again.",
    "It's been three months since I started the medication.", "Thank you for sharing that with me.",
    "I noticed I get irritable around 4 in the afternoon.", "Maybe next week we can look at your triggers.",
]


def seeded_faker(seed: int):
    """An en_US Faker that gives the same values for the same seed."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    return fake


def _eval_names() -> tuple[list[str], list[str]]:
    """en_US first and last names of the evaluation side: never on the detector's name list."""
    from pixel_assets.lib.pii.names import eval_name_pool

    return eval_name_pool()["en_US"]


def _value(slot: str, fake, rng: random.Random) -> str:
    if slot in ("PERSON", "FIRST"):
        firsts, lasts = _eval_names()
        first = rng.choice(firsts)
        return first if slot == "FIRST" else f"{first} {rng.choice(lasts)}"
    if slot == "EMAIL":
        return rng.choice([fake.email(), fake.free_email(), fake.company_email()])
    if slot == "PHONE":
        return fake.phone_number()
    if slot == "SSN":
        return fake.ssn()
    if slot == "CARD":
        n = fake.credit_card_number()
        return " ".join(n[i : i + 4] for i in range(0, len(n), 4)) if rng.random() < 0.4 else n
    if slot == "IP":
        return fake.ipv6() if rng.random() < 0.2 else fake.ipv4()
    if slot == "URL":
        return rng.choice([fake.url(), fake.uri(), "www." + fake.domain_name()])
    if slot == "ADDRESS":
        return fake.address().replace("\n", ", ") if rng.random() < 0.5 else fake.street_address()
    if slot == "CITY":
        return rng.choice([fake.city(), fake.state(), f"{fake.city()}, {fake.state()}"])
    if slot == "HANDLE":
        return "@" + fake.user_name()
    if slot == "DOB":
        d = fake.date_of_birth(minimum_age=18, maximum_age=80)
        return rng.choice([d.strftime("%m/%d/%Y"), d.strftime("%B %d, %Y"), d.isoformat()])
    raise KeyError(slot)


_SLOT_RE = re.compile(r"\{([A-Z]+)\}")


def fill(template: str, fake, rng: random.Random, *, value=None, slot_types=None) -> dict[str, Any]:
    """Fill a template; returns a presidio-research sample with exact gold spans. `value(slot)`
    and `slot_types` replace this module's value drawing and slot types (informal.py)."""
    value_of = value or (lambda slot: _value(slot, fake, rng))
    slot_types = slot_types or SLOT_TYPES
    out, spans, pos = [], [], 0
    length = 0
    for m in _SLOT_RE.finditer(template):
        literal = template[pos : m.start()]
        out.append(literal)
        length += len(literal)
        value = value_of(m.group(1))
        spans.append({"entity_type": slot_types[m.group(1)], "entity_value": value,
                      "start_position": length, "end_position": length + len(value)})
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(template[pos:])
    return {"full_text": "".join(out), "spans": spans}


def labeled_set(n: int, *, seed: int = 13, split: str = "eval", context: bool = True) -> list[dict[str, Any]]:
    """n samples from the chosen template split; each may carry a PII-free sentence around it."""
    if split not in ("eval", "tune"):
        raise ValueError("split must be 'eval' or 'tune'")
    templates = EVAL_TEMPLATES if split == "eval" else TUNE_TEMPLATES
    fake, rng = seeded_faker(seed), random.Random(seed)
    samples = []
    for i in range(n):
        sample = fill(templates[i % len(templates)], fake, rng)
        if context and rng.random() < 0.5:  # prepend clean text; shift the gold spans
            prefix = rng.choice(CLEAN_SENTENCES) + " "
            sample["full_text"] = prefix + sample["full_text"]
            for s in sample["spans"]:
                s["start_position"] += len(prefix)
                s["end_position"] += len(prefix)
        samples.append(sample)
    return samples


def clean_conversations(n: int, *, seed: int = 7, turns: tuple[int, int] = (4, 10)) -> list[list[dict[str, str]]]:
    """PII-free therapy conversations (for over-redaction measurement)."""
    rng = random.Random(seed)
    convs = []
    for _ in range(n):
        k = rng.randint(*turns)
        convs.append([
            {"role": "user" if i % 2 == 0 else "assistant",
             "content": " ".join(rng.sample(CLEAN_SENTENCES, rng.randint(2, 5)))}
            for i in range(k)
        ])
    return convs
