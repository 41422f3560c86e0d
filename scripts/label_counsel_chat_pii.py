"""Rebuild pixel_assets/data/counsel_chat/pii_labels.jsonl from the reviewed decisions below.

How the labels were made (also in pixel_assets/data/counsel_chat/README.md):
1. 330 unique answers drawn from counselchat-data.csv with random.Random(17).sample over the
   first row of each distinct answer; each answer normalized as the pipeline does (HTML to text,
   ftfy, NFC, glued-sentence repair: lib/ingest/encoding.clean_text + lib/ingest/sentences).
2. Candidate spans: the union of the project detector (v3, before this change), naive presidio
   (AnalyzerEngine, default recognizers, same spaCy model), regexes for links/emails/phones and
   every run of capitalised words not at a sentence start.
3. Each distinct candidate value was read in its contexts and decided by the reviewer (an automated
   reviewer model working as the project's engineer, not a human annotator); the decisions are the
   lists below. Every occurrence of a decided value in the 330 texts is labeled (whole words).

Conventions: person names include authors, public figures, colleagues named in answers and
fictional characters (a scrubber cannot tell them apart), not Santa/God; locations are places
(countries, states, cities, neighbourhoods), including place names the site used as the asker's
name ("Hi Attica,"), not organisations (the VA) or languages. URLs without trailing sentence
punctuation; a URL's digits are part of the URL. Phone numbers the project's policy keeps (public
crisis lines in config/pii.yaml) are labeled with "kept": true: a detection there is not credited.

Run: PYTHONPATH=. python scripts/label_counsel_chat_pii.py
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import polars as pl

from pixel_assets.lib.ingest.encoding import clean_text
from pixel_assets.lib.ingest.sentences import repair_glued_sentences

DATA = Path(__file__).resolve().parents[1] / "pixel_assets" / "data" / "counsel_chat"
SAMPLE_SIZE, SEED = 330, 17

PERSON = """
Robin J. Landwehr|Robin Landwehr|Robin|Kayla Schwartz|Sitka Stueve|Jane Ward|Danielle Alvarez|Danielle|
Rebecca Wong|Karen Keys|Rossana Mag|Virginia Chow|Tamara Powell|Sherry|Miriam|Sarah|Mark|Herman|
Albert Ellis|Alber Ellis|Jack Sparrow|Johnny|George Clooney|Sandra Bullock|Jack Nicholson|Colombo|
David Richo|Richo|Robert Thomas Fitts|Bessel van der Kolk|Don Miguel Ruiz|Sue Johnson|Gottmann|Gottman|
William|Carleen Glasser|Michele Weiner-Davis|Gary Chapman|Kathy Labriola|Meg Barker|Franklin Veaux|
Janet Hardy|Tristan Taormino|Sadie Smythe|Bruce Wayne|David Burns|Elisabeth Kübler-Ross|Eckhart Tolle|
Eddie Izzard|Anais Nin|Janae|Barry Weinhold|Dossie Easton|Eve Rickert|Henry|June
"""
LOCATION = """
Europe|Utah|Ontario|Canada|San Diego|Zionsville|Cleveland|Kansas|Houston|New York City|New York|
Michigan|Texas|Puerto Rico|Pennsylvania|Manhattan|Whistler|Prattville|Cerritos|Biddeford|Attica|
Winters|Montreal|US|Anaheim|Helena|Moore|Frostproof|Loyal
"""
# Values that are a decided type only in some contexts: (regex, type). "June" and "Henry" only in
# the book title "Henry and June"; "William" only in "William & Carleen Glasser"; "US" as a country.
CONTEXTUAL = {
    "Henry": r"\bHenry(?= and June)", "June": r"(?<=Henry and )June\b", "William": r"\bWilliam(?= & Carleen)",
    "US": r"(?<=in the )US\b",
    # the site names askers by their town: "Hi Loyal," (a town in Wisconsin), "Hi Moore,"
    **{town: rf"(?<=^Hi ){town}\b|(?<=^Hello ){town}\b" for town in ("Anaheim", "Helena", "Moore", "Frostproof", "Loyal")}, "Mark": r"(?<=~)Mark\b", "Danielle": r"\bDanielle(?= raised)",
}
EMAIL = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
URL = r"(?:https?://|www\.)[^\s<>()\"']+"
PHONE = r"(?:\(\b\d{3}\) ?|\b\d{3}[-. ]?)\d{3}[-. ]\d{4}\b"
KEPT_PHONES = {"8664887386"}  # Vet Center call center, in config/pii.yaml public_numbers


def sample_rows(frame: pl.DataFrame) -> list[int]:
    first: dict[str, int] = {}
    for i, answer in enumerate(frame["answerText"]):
        if answer and answer not in first:
            first[answer] = i
    return sorted(random.Random(SEED).sample(sorted(first.values()), SAMPLE_SIZE))


def normalized(answer: str) -> str:
    return repair_glued_sentences(clean_text(answer, html=True))[0]


def label(text: str) -> list[dict]:
    taken: list[tuple[int, int]] = []
    spans = []

    def add(start: int, end: int, etype: str, **extra) -> None:
        if any(start < b and a < end for a, b in taken):
            return
        taken.append((start, end))
        spans.append({"entity_type": etype, "entity_value": text[start:end], "start_position": start,
                      "end_position": end, **extra})

    for m in re.finditer(EMAIL, text):
        add(m.start(), m.end(), "EMAIL_ADDRESS")
    for m in re.finditer(URL, text):
        end = m.end()
        while text[end - 1] in ".,;:!?)":
            end -= 1
        add(m.start(), end, "URL")
    for m in re.finditer(PHONE, text):
        digits = re.sub(r"\D", "", m.group())
        add(m.start(), m.end(), "PHONE_NUMBER", **({"kept": True} if digits in KEPT_PHONES else {}))
    for etype, values in (("PERSON", PERSON), ("LOCATION", LOCATION)):
        for value in sorted(values.split("|"), key=len, reverse=True):
            value = value.strip()
            pattern = CONTEXTUAL.get(value, r"(?<![\w.@/])" + re.escape(value) + r"(?![\w@]|\.\w)")
            for m in re.finditer(pattern, text):
                add(m.start(), m.end(), etype)
    return sorted(spans, key=lambda s: s["start_position"])


def main() -> None:
    frame = pl.read_csv(DATA / "counselchat-data.csv")
    out = []
    for row in sample_rows(frame):
        text = normalized(frame["answerText"][row])
        out.append({"row": row, "questionID": frame["questionID"][row], "full_text": text, "spans": label(text)})
    with open(DATA / "pii_labels.jsonl", "w", encoding="utf-8") as fh:
        for item in out:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"{len(out)} answers, {sum(len(o['spans']) for o in out)} spans")


if __name__ == "__main__":
    main()
