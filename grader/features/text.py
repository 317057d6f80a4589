"""Text normalisation and segmentation shared by every check.

Two views of a turn's text exist:
- the *clean* text stored in the transcript (zero-width characters removed,
  whitespace runs collapsed, ends stripped, emoji kept); every evidence span
  refers to it;
- the *folded* text used for matching: full-width ASCII and digits folded to
  half-width and all spaces to " ", character by character, so spans found in
  the folded view are valid in the clean text.
"""

from __future__ import annotations

import re
from functools import lru_cache

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_WHITESPACE_RUN = re.compile(r"\s+")

# Characters that end a clause: negation never reaches across them.
CLAUSE_BREAKS = frozenset("，。！？；：,.!?;:\n…~～、")

NEGATION_CUES: tuple[str, ...] = ("不", "没", "沒", "未", "无", "別", "别", "非", "莫", "勿")
# Words that start with a cue but do not negate what follows (非常满意, 不错，满意, 无论).
NOT_NEGATING: tuple[str, ...] = ("非常", "无比", "不错", "没错", "不仅", "不但", "不管", "无论", "不过", "未来", "不久")


def clean_text(text: str) -> str:
    """Strip zero-width characters, collapse whitespace runs, keep emoji and punctuation."""
    text = _ZERO_WIDTH.sub("", text)
    lines = [_WHITESPACE_RUN.sub(" ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def _fold_char(ch: str) -> str:
    code = ord(ch)
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    if ch in "\u3000\u00a0\t\r":
        return " "
    return ch


_FOLD_TABLE = {code: _fold_char(chr(code)) for code in list(range(0xFF01, 0xFF5F)) + [0x3000, 0xA0, 0x09, 0x0D]}


def fold_width(text: str) -> str:
    """Fold full-width ASCII variants to half-width, one character for one (offsets keep)."""
    return text.translate(_FOLD_TABLE)


def clause_start(text: str, pos: int) -> int:
    """Index where the clause containing `pos` starts."""
    i = pos
    while i > 0 and text[i - 1] not in CLAUSE_BREAKS:
        i -= 1
    return i


def is_negated(text: str, start: int, window: int = 3) -> bool:
    """True when a negation cue stands within `window` characters before `start`, in the same clause.

    「不满意」, 「没问题」, 「不是很满意」 are negated; 「满意」 and 「不错，满意」 are not.
    """
    begin = max(clause_start(text, start), start - window)
    for i in range(begin, start):
        if text[i] in NEGATION_CUES and not any(text.startswith(w, i) for w in NOT_NEGATING):
            return True
    return False


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=65536)
def word_spans(text: str) -> tuple[tuple[str, int, int], ...]:
    """jieba segmentation of `text` as (word, start, end) triples."""
    if not text:
        return ()
    return tuple(_jieba().tokenize(text))


def word_boundaries(text: str) -> tuple[frozenset[int], frozenset[int]]:
    """Sets of offsets where jieba words start and end."""
    spans = word_spans(text)
    return frozenset(s for _, s, _ in spans), frozenset(e for _, _, e in spans)
