"""The language a customer writes in, recognised by py3langid (a naive Bayes model over byte
n-grams, 97 languages) and trusted only when it is confident.

Chosen for short support mail: it recognised every one of our samples in English, French,
Polish and German, gives a low confidence to what is no language (a URL, a product code, a
one-word "OK"), and costs about 0.3 ms of CPU on the 1,000 characters it reads
(bench/language.py). Its model takes about 2 s to load, so it is loaded once per process,
off the event loop."""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from dataclasses import dataclass
from typing import Any

# The model's calibrated probability above which its answer is taken; below it the mail
# says too little (one or two words, a link, a code) and the next choice decides.
CONFIDENT = 0.8
# The language shows in the first lines; reading no further bounds the cost of a long mail.
SAMPLE_CHARACTERS = 1000
# Too few letters to tell anything.
FEWEST_LETTERS = 8

# Words of no language: links, addresses, numbers, codes, ticket tags and commands.
_NOISE = re.compile(r"[@\d#_]|://|^www\.")


@dataclass(frozen=True, slots=True)
class Detected:
    language: str
    confidence: float


_lock = threading.Lock()


@functools.cache
def _identifier() -> Any:
    """The model, once per process (numpy and its 2 s load only when first needed)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def load() -> None:
    """Load the model now (the daemon does so at start, in a thread)."""
    with _lock:
        _identifier()


def loaded() -> bool:
    return _identifier.cache_info().currsize > 0


def sample(text: str) -> str:
    """What the model reads: the words of the text, without links, addresses and numbers
    (word by word: a pattern run along the whole text costs four times as much)."""
    words = text[: SAMPLE_CHARACTERS * 3 // 2].split()
    return " ".join([word for word in words if not _NOISE.search(word)])[:SAMPLE_CHARACTERS]


def recognise(text: str) -> Detected | None:
    """The language of the text when the model is confident of it, else None."""
    words = sample(text)
    if sum(map(str.isalpha, words)) < FEWEST_LETTERS:
        return None
    load()
    language, confidence = _identifier().classify(words)
    if confidence < CONFIDENT:
        return None
    return Detected(str(language), round(float(confidence), 3))


async def detect(text: str) -> Detected | None:
    """`recognise`, off the event loop while the model is still loading."""
    if loaded():
        return recognise(text)
    return await asyncio.to_thread(recognise, text)
