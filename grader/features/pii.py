"""Detection and masking of personal numbers: mainland mobiles, resident IDs, bank cards, e-mail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_SEP = r"[ \-]?"
MOBILE_RE = re.compile(r"(?<![\d*])(?:\+?86[ \-]?)?(1[3-9]\d)" + _SEP + r"(\d{4})" + _SEP + r"(\d{4})(?![\d*])")
ID_CARD_RE = re.compile(r"(?<![\d*])(\d{6})(\d{8})(\d{3})([\dXx])(?![\d*])")
BANK_CARD_RE = re.compile(r"(?<![\d*])(\d{4}(?:[ \-]?\d{3,4}){2,3}(?:[ \-]?\d{1,4})?)(?![\d*])")
EMAIL_RE = re.compile(r"(?<![\w.+-])([A-Za-z0-9._%+-]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class PersonalNumber:
    kind: str  # mobile | id_card | bank_card | email
    start: int
    end: int
    masked: str


def id_card_valid(number: str) -> bool:
    """GB 11643 resident ID: 18 characters, a real birth date, ISO 7064 MOD 11-2 check digit."""
    if not re.fullmatch(r"\d{17}[\dXx]", number):
        return False
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    if not 1900 <= born.year <= date.today().year:
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
    """Luhn checksum of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_digits(digits: str, keep_head: int, keep_tail: int) -> str:
    return digits[:keep_head] + "*" * (len(digits) - keep_head - keep_tail) + digits[-keep_tail:]


def find_personal_numbers(text: str, kinds: frozenset[str] | None = None) -> list[PersonalNumber]:
    """Every personal number in `text`, non-overlapping, IDs before cards before mobiles."""
    kinds = kinds or frozenset({"mobile", "id_card", "bank_card", "email"})
    found: list[PersonalNumber] = []

    def free(s: int, e: int) -> bool:
        return all(e <= p.start or s >= p.end for p in found)

    if "id_card" in kinds:
        for m in ID_CARD_RE.finditer(text):
            if id_card_valid(m.group(0)):
                found.append(PersonalNumber("id_card", m.start(), m.end(), _mask_digits(m.group(0), 6, 4)))
    if "bank_card" in kinds:
        for m in BANK_CARD_RE.finditer(text):
            digits = re.sub(r"\D", "", m.group(0))
            if 13 <= len(digits) <= 19 and luhn_valid(digits) and free(m.start(), m.end()):
                found.append(PersonalNumber("bank_card", m.start(), m.end(), _mask_digits(digits, 4, 4)))
    if "mobile" in kinds:
        for m in MOBILE_RE.finditer(text):
            if free(m.start(), m.end()):
                digits = "".join(m.groups())
                found.append(PersonalNumber("mobile", m.start(), m.end(), _mask_digits(digits, 3, 4)))
    if "email" in kinds:
        for m in EMAIL_RE.finditer(text):
            if free(m.start(), m.end()):
                user = m.group(1)
                found.append(PersonalNumber("email", m.start(), m.end(), f"{user[0]}***@{m.group(2)}"))
    return sorted(found, key=lambda p: p.start)


def mask_personal_numbers(text: str) -> str:
    """`text` with every mobile, ID and bank-card number (and e-mail user) masked."""
    numbers = find_personal_numbers(text)
    for p in reversed(numbers):
        text = text[: p.start] + p.masked + text[p.end :]
    return text
