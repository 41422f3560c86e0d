"""Regex/validator recognizers: presidio's predefined classes with patterns and scores set here.

Scores are chosen so that a validated structured match (Luhn-checked card, TLD-checked email,
libphonenumber-parsed phone) is well above the review band and weak shapes (a bare 9-digit
number that may be an SSN) fall inside it; see config/pii.yaml for the thresholds.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pixel_assets.lib.pii.detection import Detection
from pixel_assets.lib.pii.offline import configure_offline

STRUCTURED_TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IP_ADDRESS")

# US-style numbers libphonenumber's lenient matcher misses in running text (dots, "1-" prefix,
# extensions) — the small-model stack notes phone recall needs extra patterns.
# Digits only delimit: sign-offs glue numbers to words ("...com404.293.5654Please").
_PHONE_PATTERNS = [
    (r"(?<![\d+])(?:\+?1[-. ]?)?\(?[2-9]\d{2}\)?[-. ]?\d{3}[-. ]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5}(?!\d))?(?!\d)", 0.75),
    (r"(?<![\d+])001-[2-9]\d{2}-\d{3}-\d{4}(?:x\d{1,5})?(?!\d)", 0.75),
    (r"(?<![\w+])\+\d{1,3}[- ]\d{2,4}[- ]\d{3,4}[- ]\d{3,4}\b", 0.7),
]
# Mastercard 2-series and generic 13-19 digit groups; presidio's Luhn check validates them.
_CARD_PATTERNS = [
    (r"\b(?!1\d{12}(?!\d))((4\d{3})|(5[0-5]\d{2})|(6\d{3})|(1\d{3})|(3\d{3}))[- ]?(\d{3,4})[- ]?(\d{3,4})[- ]?(\d{3,5})\b", 0.9),
    (r"\b2[2-7]\d{2}[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b", 0.9),
    (r"\b(?:\d[- ]?){11,18}\d\b", 0.9),  # any 12-19 digit run (Maestro, 19-digit Visa)
]
_SSN_PATTERNS = [
    (r"\b([0-9]{3})[- .]([0-9]{2})[- .]([0-9]{4})\b", 0.85),
    (r"\b[0-9]{9}\b", 0.45),  # bare nine digits: maybe an SSN -> review band
]
_URL_SCHEMA_SCORE, _URL_BARE_SCORE = 0.8, 0.7
_IP_SCORE = 0.8

# Social handles: @name not preceded by a word char (so not the middle of an email).
_HANDLE_PATTERNS = [(r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{1,28}[A-Za-z0-9_])\b", 0.8)]
# Street addresses: number + capitalised street name + suffix, optional unit.
_STREET_SUFFIX_WORDS = (
    "Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|"
    "Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Crossing|Xing|"
    "Loop|Path|Pike|Ridge|Row|Run|Alley|Station|Mission|Overpass|Plaza|Port|Point|Pine|"
    "Mountain|Mill|Meadow|Manor|Light|Lake|Landing|Key|Island|Hill|Heights|"
    "Harbor|Grove|Garden|Field|Falls|Estate|Extension|Crescent|Creek|"
    "Corner|Center|Camp|Burg|Brook|Bridge|Branch|Bypass|Bluff|Club|Common|Cove|"
    "Canyon|Curve|Dale|Dam|Divide|Ferry|Forge|Fork|Fort|Freeway|Gateway|Glen|Green|"
    "Haven|Hollow|Inlet|Junction|Knoll|Lodge|Mall|Motorway|Neck|Orchard|Oval|Park|"
    "Pass|Prairie|Radial|Ranch|Rapid|Rest|Route|Shoal|Shore|Skyway|Spring|Spur|"
    "Stream|Summit|Throughway|Trace|Track|Trafficway|Tunnel|Turnpike|Union|Valley|Via|"
    "Viaduct|View|Village|Ville|Vista|Walk|Wall|Well"
)


def _street_suffixes() -> str:
    """USPS street suffixes (Faker's en_US list is that standard list) plus common abbreviations,
    each also in the plural ("Coves", "Drives", "Flats")."""
    from faker.providers.address.en_US import Provider

    words = set(_STREET_SUFFIX_WORDS.split("|")) | set(Provider.street_suffixes)
    alternatives = sorted({w.rstrip("s") if w.endswith("s") and len(w) > 4 else w for w in words}, key=len,
                          reverse=True)
    return "(?:" + "|".join(f"{w}s?" for w in alternatives) + ")"


_STREET_SUFFIX = _street_suffixes()
_ADDRESS_PATTERNS = [(
    r"\b\d{1,6}\s+(?:[A-Z][a-z]+\.?\s+){1,3}" + _STREET_SUFFIX + r"\b\.?"
    r"(?:,?\s+(?:Apt\.?|Suite|Unit|#)\s*\d+)?"
    r"(?:,?\s+(?:[A-Z][a-z]+\s?){1,3},\s+[A-Z]{2}\s+\d{5})?",
    0.85,
)]
# Dates of birth: a date after an explicit birth cue. Plain dates/durations are not PII here.
_MONTHS = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
_DATE = (
    r"(?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2}|" + _MONTHS + r"\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}"
    r"|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTHS + r",?\s+\d{4})"
)
DOB_RE = re.compile(
    r"(?i:\b(?:born\s+(?:on\s+)?|date\s+of\s+birth(?:\s+is)?:?\s*|d\.?o\.?b\.?:?\s*|birth\s*date(?:\s+is)?:?\s*"
    r"|birthday\s+is\s+(?:on\s+)?))(?P<date>" + _DATE + r")"
)


@lru_cache(maxsize=1)
def structured_recognizers():
    """Presidio recognizers for the structured types (validation logic is presidio's)."""
    configure_offline()
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer, EmailRecognizer, IpRecognizer, PhoneRecognizer, UsSsnRecognizer,
    )

    class ConfidentPhoneRecognizer(PhoneRecognizer):
        SCORE = 0.75  # libphonenumber parsed and validated the number

    def pats(name, items):
        return [Pattern(f"{name}_{i}", rx, score) for i, (rx, score) in enumerate(items)]

    ip = IpRecognizer()
    ip_patterns = [Pattern(p.name, p.regex, _IP_SCORE) for p in ip.patterns if p.score >= 0.5]
    return [
        EmailRecognizer(),
        ConfidentPhoneRecognizer(supported_regions=("US", "UK", "DE", "FR", "CA", "AU", "IN")),
        PatternRecognizer("PHONE_NUMBER", name="UsPhoneFormats", patterns=pats("phone", _PHONE_PATTERNS)),
        UsSsnRecognizer(patterns=pats("ssn", _SSN_PATTERNS)),
        CreditCardRecognizer(patterns=pats("card", _CARD_PATTERNS)),
        IpRecognizer(patterns=ip_patterns),
    ]


@lru_cache(maxsize=1)
def other_pattern_recognizers():
    """Non-structured regex recognizers: URL, social handle, street address."""
    configure_offline()
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import UrlRecognizer

    url = UrlRecognizer()
    url_patterns = [
        Pattern(p.name, p.regex, _URL_SCHEMA_SCORE if "http" in p.regex else _URL_BARE_SCORE)
        for p in url.patterns
    ]

    def pats(name, items):
        return [Pattern(f"{name}_{i}", rx, score) for i, (rx, score) in enumerate(items)]

    return [
        UrlRecognizer(patterns=url_patterns),
        PatternRecognizer("SOCIAL_HANDLE", name="SocialHandle", patterns=pats("handle", _HANDLE_PATTERNS)),
        PatternRecognizer("STREET_ADDRESS", name="StreetAddress", patterns=pats("address", _ADDRESS_PATTERNS)),
    ]


# Characters without which a recognizer cannot match: skip it cheaply (exact, not a heuristic).
_DIGITS7 = re.compile(r"(?:\d\D{0,3}){7}")
_DOTTED_WORD = re.compile(r"\w\.\w")
_GUARDS = {
    "EMAIL_ADDRESS": lambda t: "@" in t,
    "PHONE_NUMBER": lambda t: _DIGITS7.search(t) is not None,
    "US_SSN": lambda t: _DIGITS7.search(t) is not None,
    "CREDIT_CARD": lambda t: _DIGITS7.search(t) is not None,
    "IP_ADDRESS": lambda t: ":" in t or _DOTTED_WORD.search(t) is not None,
    "URL": lambda t: _DOTTED_WORD.search(t) is not None,
    "SOCIAL_HANDLE": lambda t: "@" in t,
    "STREET_ADDRESS": lambda t: any(c.isdigit() for c in t),
}


def glued(a: str, b: str) -> bool:
    """A word boundary without a space: letter/digit change or lowercase -> capital ("comPlease")."""
    return (a.isalpha() and b.isdigit()) or (a.isdigit() and b.isalpha()) or (a.islower() and b.isupper())


def url_end(text: str, start: int, end: int) -> int:
    """Cut a URL that ends inside a word back to its last dot or slash: "site.com.Pl|ease" matched
    ".pl" as a top-level domain; the URL is "site.com" and "Please" stays a word."""
    while end < len(text) and text[end].isalnum() and not glued(text[end - 1], text[end]):
        cut = max(text.rfind(".", start, end), text.rfind("/", start, end))
        if cut <= start:
            break
        end = cut
        while end > start and text[end - 1] in "./":
            end -= 1
    return end


# Link syntax. presidio's URL patterns take any `word.word` whose right side starts with a
# top-level domain ("loss.There" -> ".the..."); a match becomes a URL only when, after url_end, it
# has a scheme or `www.`, or is a registered-domain shape: dot-separated labels ending in a common
# top-level domain written in one case ("example.com", "EXAMPLE.ORG", not "Example.Com" or "you.Co"),
# optionally a path. Rarer top-level domains need a scheme or www.
BARE_DOMAIN_TLDS = frozenset(
    "com org net edu gov mil int info biz io co uk ca au nz ie de fr es nl eu ch se dk fi "
    "tv ly ai app dev online health care life therapy center family org.uk co.uk".split()
)  # not the English words among country domains (it, me, in, us, be, no, at): "store.it was"
_LINK_RE = re.compile(
    r"(?i:(?:https?|ftp)://\S+|www\d{0,3}\.\S+)"
    r"|(?P<host>(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+(?P<tld>[a-z]{2,12}|[A-Z]{2,12}))(?P<path>[/?#]\S*)?"
)


def is_link(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] has link syntax (see BARE_DOMAIN_TLDS above)."""
    m = _LINK_RE.fullmatch(text, start, end)
    if m is None:
        return False
    if m.group("host") is None:
        return True  # scheme or www.
    labels = m.group("host").casefold().split(".")
    tld = labels[-1] if labels[-2:-1] not in (["co"], ["org"]) else ".".join(labels[-2:])
    return tld in BARE_DOMAIN_TLDS or labels[-1] in BARE_DOMAIN_TLDS


def run_recognizers(text: str, recognizers) -> list[Detection]:
    out: list[Detection] = []
    for rec in recognizers:
        guard = _GUARDS.get(rec.supported_entities[0])
        if guard is not None and not guard(text):
            continue
        for r in rec.analyze(text, rec.supported_entities, None) or []:
            end = r.end
            if r.entity_type == "URL":
                end = url_end(text, r.start, r.end)
                while end > r.start and text[end - 1] in ".,;:!?)'\"’”":  # sentence punctuation
                    end -= 1
                if not is_link(text, r.start, end):
                    continue
            out.append(Detection(r.start, end, r.entity_type, float(r.score)))
    return out


def find_dates_of_birth(text: str, score: float = 0.85) -> list[Detection]:
    return [Detection(m.start("date"), m.end("date"), "DATE_OF_BIRTH", score) for m in DOB_RE.finditer(text)]
