"""Names in informal text: a common-word vocabulary, case restoration, and name-context cues.

spaCy's small model finds names by their capital letter. Chat text is often lowercase
("my husband john hit me"), so before NER each all-lowercase word that is not a common English
word is given a capital ("restored"); the copy has the same length, so NER offsets map back 1:1.
A sentence whose restored copy has no candidate capitalised word still skips NER (the speed
shortcut), so ordinary therapy talk ("i slept maybe four hours last night") costs nothing extra.

Two cheap recognizers work without NER:
- context cues: a relationship or title word followed by a name-shaped word
  ("my sponsor dave", "dr. okafor", "a friend named kasia");
- the detection name list: a word on the list that is not a common word ("kowalczyk").

Evaluation names are disjoint from the detection list by construction: every name token (first
names and surnames of the Faker locales below) is assigned to the evaluation or the detection
side by a salted hash (`is_eval_name`); `detection_names()` holds only detection-side tokens and
the labeled-set generator draws only evaluation-side ones (`eval_name_pool`). So the measured
recall is that of the recognizers on names they have never seen (context + restored-case NER).
"""

from __future__ import annotations

import hashlib
import importlib
import re
from functools import lru_cache

from pixel_assets.lib.language import foreign_function_words

# Faker locales the name list and the evaluation draw from (accented spellings included).
NAME_LOCALES = ("en_US", "en_GB", "en_IE", "en_IN", "fr_FR", "de_DE", "es_ES", "es_MX", "it_IT", "pt_BR",
                "pl_PL", "nl_NL", "sv_SE", "da_DK", "fi_FI", "cs_CZ", "hu_HU", "ro_RO", "tr_TR", "hr_HR")
_EVAL_SALT = b"pixel-pii-eval-names-v1\0"
EVAL_SHARE = 5  # one name token in EVAL_SHARE goes to the evaluation side


def is_eval_name(token: str) -> bool:
    """True when a name token belongs to the evaluation side (never on the detection list)."""
    digest = hashlib.sha256(_EVAL_SALT + token.casefold().encode()).digest()
    return digest[0] % EVAL_SHARE == 0


@lru_cache(maxsize=1)
def _faker_names() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """locale -> (first names, last names) as Faker spells them (multi-word entries dropped)."""
    out = {}
    for loc in NAME_LOCALES:
        provider = importlib.import_module(f"faker.providers.person.{loc}").Provider
        firsts: set[str] = set()
        for attr in ("first_names", "first_names_male", "first_names_female"):
            firsts.update(getattr(provider, attr, None) or ())
        lasts = set(getattr(provider, "last_names", None) or ())
        one_word = lambda names: tuple(sorted(n for n in names if re.fullmatch(r"[^\W\d_]+", n)))  # noqa: E731
        out[loc] = (one_word(firsts), one_word(lasts))
    return out


@lru_cache(maxsize=1)
def detection_names() -> frozenset[str]:
    """Casefolded name tokens the detector may use: the Faker locales' names, detection side only."""
    return frozenset(n.casefold() for firsts, lasts in _faker_names().values() for n in firsts + lasts
                     if not is_eval_name(n))


def eval_name_pool() -> dict[str, tuple[list[str], list[str]]]:
    """locale -> (first names, last names) of the evaluation side (never on the detection list)."""
    pool = {}
    for loc, (firsts, lasts) in _faker_names().items():
        f = [n for n in firsts if is_eval_name(n)]
        last = [n for n in lasts if is_eval_name(n)]
        if f and last:
            pool[loc] = (f, last)
    return pool


# Chat words the dictionary lacks; restoring them would only feed NER noise.
INFORMAL_WORDS = frozenset("""
ok okay okey yeah yea yep yup nope nah lol lmao omg idk idc tbh imo imho btw fyi smh ngl irl rn
gonna wanna gotta kinda sorta dunno lemme gimme cuz cos coz bc tho thru ur u r ya yall y'all
im ive id ill youre youve youd theyre theyve dont doesnt didnt cant couldnt wont wouldnt shouldnt
isnt arent wasnt werent hasnt havent hadnt thats whats wheres theres heres lets hes shes its
mom mommy dad daddy mum bf gf bff bestie hubby ex exes meds therapist therapists counselor
anxiety ptsd cptsd adhd ocd bpd cbt dbt emdr hrs min mins hr ugh hmm hm um umm uh oh ah aw ew
texted texting selfie online offline email emails app apps wifi ai tv whichever whoever whomever
wherever whatever however whenever
""".split())
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


VOCABULARY_FILE = "pii/common_words.txt"  # in pixel_assets/data/, written by build_common_words()


@lru_cache(maxsize=1)
def _vocabulary() -> dict[str, str]:
    """The packaged vocabulary: word -> flags (n noun, w WordNet-only noun, v verb, a adjective, r adverb, s stop word,
    x informal/calendar). One "word<TAB>flags" a line; '#' lines are comments."""
    from importlib import resources

    text = resources.files("pixel_assets.data").joinpath(VOCABULARY_FILE).read_text("utf-8")
    return dict(line.split("\t", 1) for line in text.splitlines() if line and not line.startswith("#"))


def common_words() -> frozenset[str]:
    return frozenset(_vocabulary())


def build_common_words() -> dict[str, str]:
    """Lowercase words that are ordinary English (never restored), word -> flags.

    - WordNet's verb/adjective/adverb index and irregular forms, as shipped in the spaCy model's
      lemmatizer tables, spaCy's stop words, weekdays and months, INFORMAL_WORDS;
    - lowercase words seen at least twice in the counsel-chat sample and not on the detection name
      list ("hotline"), flagged "n";
    - WordNet nouns, flagged "n" when they also occur in lowercase in the packaged counsel-chat
      answers and "w" (weak) otherwise: WordNet's noun index holds people too ("thomas",
      "ricardo"), and a name in real therapy text is capitalised, so "meditation" is "n" and
      "thomas" is "w". A weak word is not restored ("marmalade" would become a person), but it
      can be a name after a cue ("my husband thomas") or as the subject of a verb.
    Names that are ordinary words ("grace", "will", "rose") are found by context cues only.
    """
    import spacy
    from spacy.lang.en.stop_words import STOP_WORDS

    from pixel_assets.lib.pii.config import load_config

    nlp = spacy.load(load_config().spacy_model, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "ner",
                                                          "senter"])
    lookups = nlp.get_pipe("lemmatizer").lookups
    index, exceptions = lookups.get_table("lemma_index"), lookups.get_table("lemma_exc")
    flags: dict[str, set[str]] = {}

    def add(words, flag):
        for w in words:
            if "_" not in w:
                flags.setdefault(w, set()).add(flag)

    add(STOP_WORDS, "s")
    add(INFORMAL_WORDS | _CALENDAR, "x")
    for pos, flag in (("verb", "v"), ("adj", "a"), ("adv", "r")):
        add(index[pos], flag)
        add(exceptions[pos], flag)
    lower_in_corpus = _corpus_lowercase_words()
    for w in index["noun"]:
        add([w], "n" if w in lower_in_corpus else "w")
    # therapy words WordNet lacks ("hotline", "triggering"): lowercase at least twice in the corpus
    names = detection_names()
    add((w for w, n in lower_in_corpus.items() if n >= 2 and w not in flags and w not in names), "n")
    add(exceptions["noun"], "n")
    return {w: "".join(sorted(f)) for w, f in flags.items()}


def _corpus_lowercase_words() -> dict[str, int]:
    """Words written in lowercase in the packaged counsel-chat questions and answers, with counts."""
    from collections import Counter

    from pixel_assets.lib.pii.config import case_corpus_texts

    words: Counter[str] = Counter()
    for text in case_corpus_texts():
        words.update(w for w in _WORD.findall(text) if w.islower())
    return dict(words)


_CALENDAR = frozenset({"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
                       "january", "february", "march", "april", "may", "june", "july", "august",
                       "september", "october", "november", "december"})
_SUFFIXES = ("s", "es", "ed", "ing", "ly", "er", "ers", "est", "ies", "ied", "ness", "ful", "n't", "'s", "’s")


@lru_cache(maxsize=200_000)
def is_common(word: str) -> bool:
    """A lowercase word that is ordinary English (or an inflection of one)."""
    return word_flags(word) is not None


@lru_cache(maxsize=200_000)
def word_flags(word: str) -> str | None:
    """The vocabulary flags of a word or of the lemma it inflects; None when not a common word."""
    w = word.casefold().replace("’", "'")
    vocab = _vocabulary()
    for form in (w, w.replace("'", "")):
        if form in vocab:
            return vocab[form]
    for suf in _SUFFIXES:
        if w.endswith(suf) and len(w) > len(suf) + 1:
            stem = w[: -len(suf)]
            doubled = suf in ("ed", "ing", "er", "ers", "est") and len(stem) > 2 and stem[-1] == stem[-2]
            for lemma in (stem, stem + "e", stem + "y" if suf in ("ies", "ied") else "", stem[:-1] if doubled else ""):
                if lemma in vocab:
                    return vocab[lemma]
    return None


def restore_case(text: str) -> str:
    """Same-length copy with "i" -> "I" and each lowercase non-common word capitalised."""
    chars = list(text)
    for m in _WORD.finditer(text):
        w = m.group()
        if not w.islower():
            continue
        first = w[0].upper()
        if len(first) != 1:
            continue
        if w == "i" or (len(w) > 1 and not is_common(w)):
            chars[m.start()] = first
    return "".join(chars)


_LOWER_I = re.compile(r"(?<![\w'’])i(?![\w'’])|(?<![\w'’])i['’](?:m|ve|d|ll)\b")
_PLACE_WORDS = re.compile(r"(?i:\b(?:in|to|from|at|near|around|into|outside|across|through|toward|towards|"
                          r"visit|visiting|visited|moved|live|lives|lived|of)\s+)$")


def informal(sentence: str) -> bool:
    """Chat-style casing: the sentence starts in lowercase or writes "i" in lowercase."""
    first = next((c for c in sentence if c.isalpha()), "")
    return first.islower() or _LOWER_I.search(sentence) is not None


def after_place_word(text: str, start: int) -> bool:
    """Whether the word at `start` follows a place preposition or verb ("moved to", "in")."""
    return _PLACE_WORDS.search(text[max(0, start - 20) : start]) is not None


# Relationship and title words after which a name-shaped word is a name. "called" only after a
# person word ("a guy called dev"): "an app called Headspace", "a treatment called Dialectical ...".
RELATIONS = (
    "husband|wife|partner|boyfriend|girlfriend|fianc[ée]e?|spouse|ex|ex-husband|ex-wife|ex-boyfriend|"
    "ex-girlfriend|mom|mum|mother|dad|father|stepdad|stepmom|stepfather|stepmother|brother|sister|"
    "son|daughter|cousin|aunt|uncle|auntie|grandma|grandpa|grandmother|grandfather|nana|nephew|niece|"
    "friend|bestie|roommate|flatmate|coworker|co-worker|colleague|boss|manager|supervisor|therapist|"
    "counselor|counsellor|psychiatrist|psychologist|doctor|sponsor|teacher|coach|pastor|priest|neighbou?r|"
    "landlord|landlady|abuser|caseworker|nurse|kid|baby|bf|gf|child|stepson|stepdaughter|twin|bff"
)
TITLES = r"dr|mr|mrs|ms|mx|prof|professor|doctor|miss|pastor|father|sister|brother|aunt|uncle|coach|nurse"
_NAMEISH = r"[^\W\d_][\w'’-]*"
_CUE_RE = re.compile(
    r"(?i:\b(?:(?:my|our|his|her|their|your)\s+(?:(?:best|old|new|older|younger|little|big|late|step|ex|former|"
    r"current|favou?rite)[- ]?)?(?:" + RELATIONS + r")(?:\s+(?P<title1>" + TITLES + r")\.?)?|(?P<title2>" + TITLES +
    r")\.?|named|(?:someone|somebody|guy|girl|man|woman|boy|lady|dude|kid|person|friend)\s+called))\s+"
    r"(?P<name>" + _NAMEISH + r")(?:\s+(?P<last>" + _NAMEISH + r"))?"
)
# A name-shaped subject: an uncommon word right before one of these ("kasia keeps texting me"). A
# WordNet-only noun ("eve", "jade") needs one of the person verbs; "eve and i" is not enough.
_PERSON_VERBS = (r"said|says|told|tells|keeps|kept|texted|texts|called|calls|yelled|yells|wants|wanted|"
                 r"thinks|thought|asked|asks|hits|doesn['’]?t|didn['’]?t")
_SUBJECT_RE = re.compile(
    r"(?P<name>" + _NAMEISH + r")\s+(?:(?P<verb>" + _PERSON_VERBS + r")|left|is|was|has|had|does|did|never|always|"
    r"still|just|and i|and me)\b"
)
# A capitalised first + last name as the object of a person verb ("I finally told Bryce Maldonado",
# "I met Crystal Sharp"): mid-sentence capitals after these verbs are a name even when both words are
# also ordinary words. Exactly two capitalised words, so "called Crisis Text Line" is not one.
_OBJECT_RE = re.compile(
    r"\b(?:told|tell|tells|asked|ask|texted|text|called|call|met|meet|messaged|emailed|thanked|forgave|"
    r"hugged|visited|married|divorced|dating|dated|with)\s+(?P<name>[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’-]+\s+"
    r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’-]+)(?!\s+[A-ZÀ-ÖØ-Þ])\b"
)
# "called"/"call" as a person verb only after its subject ("I called", "she finally called").
_NAMING_VERB = re.compile(r"call(?:ed)?\b")
_CALLER = re.compile(r"(?i:\b(?:i|we|he|she|they|you|finally|just|then|never|also|and|to)\s+)$")
_NOT_NAME = frozenset("""
said says told tells texted called yelled hit left came went got gets is was has had and or but
""".split())


def _nameish(word: str, after_cue: bool, after_title: bool = False) -> bool:
    """Whether a word can be a name: not a common word; after a cue also a capitalised word, an
    adjective-only word ("randy", "rich") or a listed name that is a common noun ("grace"); after a
    title ("dr. bilge") anything but a stop word, adverb or the like."""
    w = word.casefold().rstrip("'’")
    if len(w) < 2 or w in _NOT_NAME or re.fullmatch(TITLES, w):
        return False
    flags = word_flags(w)
    if flags is None:
        return True
    if not after_cue or set(flags) & set("srx"):
        return False
    if after_title:
        return True
    if "v" in flags or _gerund(w):
        return False
    return word[0].isupper() or set(flags) <= set("aw") or w in detection_names()


def _gerund(word: str) -> bool:
    """A verb's -ing form ("continuing"): after "your boyfriend" it is what he does, not who he is."""
    return word.endswith("ing") and any("v" in (word_flags(stem) or "") for stem in (word[:-3], word[:-3] + "e"))


# Clinical terms capitalised as names of conditions/therapies ("diagnosed with Major Depression").
CLINICAL_HEADS = frozenset("""
depression disorder disorders anxiety syndrome therapy therapies illness disease attack attacks dysfunction
addiction phobia psychosis episode treatment program programs anonymous behavior behaviour personality
""".split())


# Two capitalised words glued together by a lost space ("QuennevilleQuenneville Emotional
# Health"), optionally after a capitalised first name.
_UP, _LOW = "A-ZÀ-ÖØ-Þ", "a-zß-öø-ÿ"
_GLUED_RE = re.compile(rf"(?:(?P<first>[{_UP}][{_LOW}]+)\s+)?(?P<glued>[{_UP}][{_LOW}]+[{_UP}][{_LOW}]+)\b")
_GLUE_SPLIT = re.compile(rf"[{_UP}][{_LOW}]+")


def _glued_names(text: str) -> list[tuple[int, int]]:
    out = []
    for m in _GLUED_RE.finditer(text):
        halves = _GLUE_SPLIT.findall(m.group("glued"))
        if len(halves) == 2 and all(word_flags(h) in (None, "w") for h in halves):
            first = m.group("first")
            start = m.start("first") if first and word_flags(first) in (None, "w") else m.start("glued")
            out.append((start, m.end("glued")))
    return out


def context_names(text: str, score: float) -> list[tuple[int, int, float]]:
    """(start, end, score) of names after relationship/title cues, before speech/action verbs,
    glued to the next word, or on the name list."""
    found: dict[tuple[int, int], float] = {}
    for m in _CUE_RE.finditer(text):
        name = m.group("name")
        title = m.group("title2") or m.group("title1")
        if title and title.casefold() not in _ABBREVIATED_TITLES and text.startswith(".", m.end(_title_group(m))):
            continue  # "...otherwise miss. Hope this helps": a sentence end, not "Miss Hope"
        if not _nameish(name, after_cue=True, after_title=bool(m.group("title1") or m.group("title2"))):
            continue
        start, end = m.span("name")
        last = m.group("last")
        if last and _nameish(last, after_cue=False):
            end = m.end("last")
        found[(start, _trim(text, start, end))] = score
    for start, end in _glued_names(text):
        found.setdefault((start, end), score)
    for m in _OBJECT_RE.finditer(text):
        first, last = m.group("name").split()
        if last.casefold() in CLINICAL_HEADS:
            continue  # "with Major Depression", "called Narcotics Anonymous"
        if _NAMING_VERB.match(m.group()) and not _CALLER.search(text, 0, m.start()):
            continue  # "a technique, called Thought Stopping": naming a thing, not calling a person
        if not set(word_flags(first) or "") & set("sx"):  # not a stop word or calendar word ("told Monday ...")
            found.setdefault(m.span("name"), score)
    for m in _SUBJECT_RE.finditer(text):
        flags = word_flags(m.group("name"))
        if len(m.group("name")) > 2 and (flags is None or (flags == "w" and m.group("verb"))):
            found.setdefault((m.start("name"), _trim(text, *m.span("name"))), score)
    for m in _WORD.finditer(text):
        w = m.group()
        if w.islower() and len(w) > 2 and w.casefold() in detection_names() and not is_common(w) \
                and not (w in foreign_function_words() and _foreign_words(text) >= 2):  # "pero" in Spanish
            found.setdefault((m.start(), _trim(text, m.start(), m.end())), score)
    return [(s, e, sc) for (s, e), sc in sorted(found.items())]


_ABBREVIATED_TITLES = frozenset({"dr", "mr", "mrs", "ms", "mx", "prof"})


def _title_group(m: re.Match) -> str:
    return "title2" if m.group("title2") else "title1"


def _foreign_words(text: str) -> int:
    """How many function words of another language the text holds."""
    words = foreign_function_words()
    return sum(1 for w in _WORD.findall(text) if w.casefold() in words)


def _trim(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in "'’-":
        end -= 1
    if text[start:end].casefold().endswith(("'s", "’s")):
        end -= 2
    return end


def write_common_words(path: str) -> int:
    """Regenerate the packaged vocabulary file: `python -m pixel_assets.lib.pii.names OUT`."""
    words = build_common_words()
    header = ("# Common lowercase English words for names.restore_case (word TAB flags: n noun, w WordNet-only\n"
              "# noun, v verb, a adjective, r adverb, s stop word, x informal/calendar); generated by\n"
              "# `python -m pixel_assets.lib.pii.names pixel_assets/data/pii/common_words.txt`\n")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(header + "".join(f"{w}\t{words[w]}\n" for w in sorted(words)))
    return len(words)


if __name__ == "__main__":
    import sys

    print(write_common_words(sys.argv[1]))
