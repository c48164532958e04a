"""Notes folded for reading: the same note on many curves or runs ('busbw still rising at the largest size' on
36 curves) becomes one line with a count and the subjects it applies to, instead of 36 lines."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: a number in a note with its unit (a size, a rank count): notes that differ only in their numbers are one note
NUMBER = re.compile(r"\d+(?:\.\d+)?(?: ?(?:[KMGT]iB|B|GB/s|Gb/s|ms|µs|us|s|%)(?![\w/]))?")
#: subjects listed on a folded line before '+ N more'
SHOWN_SUBJECTS = 8


@dataclass(frozen=True)
class Note:
    """One note: what it is about (a curve, a run; may be empty) and what it says."""

    subject: str
    text: str


def shape(text: str) -> str:
    """The note with its numbers blanked: the key notes are folded by."""
    return NUMBER.sub("#", text)


def _varying(texts: list[str]) -> list[int]:
    """Positions of the numbers that differ between notes of one shape."""
    numbers = [NUMBER.findall(t) for t in texts]
    return [i for i in range(len(numbers[0])) if len({n[i] for n in numbers}) > 1]


def _merged(text: str, varying: list[int]) -> str:
    """``text`` with the numbers at ``varying`` positions written as 'N'."""
    count = iter(range(10**9))
    return NUMBER.sub(lambda m: "N" if next(count) in varying else m.group(0), text)


def fold(notes: list[Note]) -> list[str]:
    """One line per distinct note (in first-seen order): a note that occurs once reads 'subject: text'; a note on
    several subjects reads 'text (k x: subject [its numbers], ...)', the first SHOWN_SUBJECTS subjects named."""
    groups: dict[str, list[Note]] = {}
    for n in dict.fromkeys(notes):
        groups.setdefault(shape(n.text), []).append(n)
    lines = []
    for group in groups.values():
        if len(group) == 1:
            n = group[0]
            lines.append(f"{n.subject}: {n.text}" if n.subject else n.text)
            continue
        varying = _varying([n.text for n in group])
        text = _merged(group[0].text, varying)
        named = []
        for n in group[:SHOWN_SUBJECTS]:
            vals = ", ".join(NUMBER.findall(n.text)[i] for i in varying)
            named.append(" ".join(x for x in (n.subject, f"[{vals}]" if vals else "") if x))
        more = f", + {len(group) - SHOWN_SUBJECTS} more" if len(group) > SHOWN_SUBJECTS else ""
        lines.append(f"{text} ({len(group)} x: {', '.join(x for x in named if x) or '-'}{more})")
    return lines
