"""Transcript normalization shared by the reference text and every recognizer's hypothesis (WER, CER).

Both sides go through :func:`normalize` before they are compared, so that an error rate counts words
the recognizer got wrong, not differences of writing. In order:

1. Unicode NFKC, then case folding (``Hello`` = ``hello``); typographic apostrophes become ``'``.
2. Recognizer markup is dropped: ``<sil>``, ``[noise]``, ``(2)`` after an alternate pronunciation.
3. Numbers are written as words (English, ``num2words``): thousands separators go (``1,000``);
   ordinals ``15th`` -> ``fifteenth``; decimals ``3.05`` -> ``three point zero five``; other
   integers as cardinals, years included (``1995`` -> ``one thousand nine hundred and ninety five``;
   a recognizer that says "nineteen ninety five" is counted wrong there: corpora for recognition,
   LibriSpeech and LJSpeech's normalized text, spell such numbers out already); ``%`` -> ``percent``,
   ``&`` -> ``and``.
4. Punctuation and symbols become spaces (hyphens included: ``twenty-one`` = ``twenty one``); an
   apostrophe is kept only inside a word (``don't``, ``i'm``), as in the recognizer's dictionary.
5. Runs of spaces become one; leading and trailing spaces go.
"""

from __future__ import annotations

import re
import unicodedata

_MARKUP = re.compile(r"<[^>]*>|\[[^\]]*\]|\(\d+\)")
_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?:,\d{3})+(?![\d,])")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")
_DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
_INTEGER = re.compile(r"\d+")
_NOT_WORD = re.compile(r"[^\w']+|_")
_LOOSE_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _words(number: str, to: str = "cardinal") -> str:
    from num2words import num2words

    return f" {num2words(int(number), lang='en', to=to)} "


def normalize(text: str) -> str:
    """The comparison form of a transcript (module docstring); ``""`` when nothing is left."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'").replace("\u2018", "'")
    text = _MARKUP.sub(" ", text)
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _ORDINAL.sub(lambda m: _words(m.group(1), "ordinal"), text)
    text = _DECIMAL.sub(lambda m: _words(m.group(1)) + " point " + " ".join(_DIGIT_WORDS[int(d)] for d in m.group(2)),
                        text)
    text = _INTEGER.sub(lambda m: _words(m.group(0)), text)
    text = text.replace("%", " percent ").replace("&", " and ")
    text = _NOT_WORD.sub(" ", text)
    text = _LOOSE_APOSTROPHE.sub(" ", text)
    return " ".join(text.split())


def latin_script(text: str) -> bool:
    """True when every letter of ``text`` is a Latin letter (the script an English recognizer writes)."""
    return all(unicodedata.name(ch, "").startswith("LATIN") for ch in text if ch.isalpha())
