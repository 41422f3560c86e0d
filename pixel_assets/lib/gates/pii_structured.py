"""The PII gate's own structured-PII matcher: its own patterns and validators, and libphonenumber's
matcher called directly, sharing no recognizer with the scrubber (lib/pii).

- EMAIL_ADDRESS: an address, or one written out to dodge filters ("jane(at)mail(dot)com");
- US_SSN: 3-2-4 digits with one separator ("-", " " or "."), numbers the SSA never issues left out;
- CREDIT_CARD: 13-19 digits (spaces or dashes between) that pass the Luhn check;
- IP_ADDRESS: a valid IPv4 or IPv6 address (``ipaddress``), loopback and unspecified left out;
- PHONE_NUMBER: ``phonenumbers.PhoneNumberMatcher`` at VALID leniency for each region of
  ``regions`` (the countries the sources' people live in, wider than the scrubber's), the public
  crisis and support lines of the PII config's allow-list left out.

Placeholders the scrubber wrote ("<PHONE_NUMBER_1>") are blanked before matching.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

import phonenumbers

from pixel_assets.lib.pii.detection import PLACEHOLDER_RE

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+%-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
_EMAIL_SPELLED = re.compile(
    r"(?<![\w.+-])[\w.+%-]+\s*[\[(]\s*at\s*[\])]\s*[\w-]+(?:\s*(?:\.|[\[(]\s*dot\s*[\])])\s*[\w-]+)*"
    r"\s*(?:\.|[\[(]\s*dot\s*[\])])\s*[A-Za-z]{2,}\b", re.IGNORECASE)
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)(\d{3})([- .])(?!00)\d{2}\2(?!0000)\d{4}(?![\d-])")
_CARD = re.compile(r"(?<![\d-])[2-6]\d(?:[ -]?\d){11,17}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_SEVEN_DIGITS = re.compile(r"\d(?:\D{0,3}\d){6}")  # a phone number needs at least seven digits
_DIGITS = re.compile(r"\d")


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _ip_ok(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified)


def _digits(number: str) -> str:
    """A number's digits, vanity letters read on the keypad (1-800-273-TALK), a leading US 1 dropped."""
    digits = phonenumbers.normalize_digits_only(phonenumbers.convert_alpha_characters_in_number(number))
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


@lru_cache(maxsize=64)
def public_national_numbers(numbers: tuple[str, ...]) -> frozenset[str]:
    """The allow-listed public lines as digit strings (see ``_digits``)."""
    return frozenset(d for d in map(_digits, numbers) if d)


def find_structured(text: str, regions: Iterable[str], public: frozenset[str] = frozenset()) -> Counter:
    """Structured PII in one text: entity type -> count."""
    text = PLACEHOLDER_RE.sub(lambda m: " " * len(m.group()), text)
    found: Counter = Counter()
    taken: list[tuple[int, int]] = []  # spans read as another type: not a phone number too

    def count(kind: str, matches) -> None:
        for m in matches:
            found[kind] += 1
            taken.append(m.span())

    count("EMAIL_ADDRESS", [*_EMAIL.finditer(text), *_EMAIL_SPELLED.finditer(text)])
    count("US_SSN", _SSN.finditer(text))
    count("CREDIT_CARD", (m for m in _CARD.finditer(text) if luhn_valid("".join(_DIGITS.findall(m.group())))))
    count("IP_ADDRESS", (m for m in _IPV4.finditer(text) if _ip_ok(m.group())))
    count("IP_ADDRESS", (m for m in _IPV6.finditer(text) if m.group().count(":") >= 2 and _ip_ok(m.group())))
    if _SEVEN_DIGITS.search(text):
        spans = set()
        for region in regions:
            for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
                inside = any(match.start < e and s < match.end for s, e in taken)
                public_line = _digits(match.raw_string) in public or (
                    phonenumbers.national_significant_number(match.number) in public)
                if not inside and not public_line:
                    spans.add((match.start, match.end))
        # One number read in several regions ("(11) 91234-5678" and "91234-5678") counts once.
        end = -1
        for start, stop in sorted(spans):
            found["PHONE_NUMBER"] += start >= end
            end = max(end, stop) if start < end else stop
    return +found


def regions_of(setting: str) -> tuple[str, ...]:
    """A comma-separated region list ("US,GB,BR") as libphonenumber region codes, checked."""
    regions = tuple(r.strip().upper() for r in setting.split(",") if r.strip())
    unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(f"pii_phone_regions: unknown regions {unknown}")
    return regions
