"""Charset labels as real mail writes them, and bytes to text: the declared charset through
the WHATWG label table (what browsers do), detection only when the label is missing or unknown."""

from __future__ import annotations

import codecs
import functools
import re
from base64 import b64decode, b64encode
from email.quoprimime import header_decode

import webencodings

# WHATWG's windows-1252 gives the five bytes cp1252 leaves undefined their C1 code points,
# as latin-1 does; Python's cp1252 refuses them.
_C1 = "mailflow-c1"


def _c1(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    return "".join(chr(b) for b in error.object[error.start : error.end]), error.end


codecs.register_error(_C1, _c1)

# Labels WHATWG leaves out (it drops UTF-7 and maps the ISO-2022 family to "replacement"),
# which mail still uses and Python reads; and Outlook's name for UTF-7.
_MAIL_ONLY = {"unicode-1-1-utf-7": "utf-7", "x-unicode-2-0-utf-7": "utf-7"}
# WHATWG's gbk decoder is gb18030's: text labelled gb2312 often holds GBK characters.
_SUPERSETS = {"gbk": "gb18030"}
# Codecs whose text is all ASCII bytes (or not ASCII-compatible): no ASCII shortcut for them.
_NOT_ASCII_SAFE = frozenset(
    {"utf-7", "iso2022_jp", "iso2022_kr", "hz", "utf-16", "utf-16-le", "utf-16-be", "utf-32"}
)
DETECT_SAMPLE = 64 * 1024  # bytes given to the detector; it samples within them anyway
_WESTERN = "cp1252"


def clean_label(label: str | None) -> str:
    return (label or "").strip().strip("\"'").strip().lower()


@functools.lru_cache(maxsize=512)
def codec_for(label: str) -> codecs.CodecInfo | None:
    """The decoder for a charset label: WHATWG's reading of it, else Python's for the labels
    WHATWG leaves out; None for a label nothing knows (x-unknown, iso-gb2312, garbage)."""
    try:
        found = webencodings.lookup(label)
    except (UnicodeError, ValueError):  # a label holding surrogates
        return None
    if found is not None and found.name != "replacement":
        info: codecs.CodecInfo = found.codec_info
        superset = _SUPERSETS.get(info.name)
        return codecs.lookup(superset) if superset else info
    try:
        info = codecs.lookup(_MAIL_ONLY.get(label, label))
        text = info.decode(b"a")[0]  # rules out bytes-to-bytes codecs such as base64
    except (LookupError, ValueError, TypeError, UnicodeError):
        # Decorated names real mail uses: iso-gb2312, x-gbk, csshiftjis.
        for prefix in ("x-", "iso-", "cs"):
            if label.startswith(prefix) and len(label) > len(prefix) + 2:
                return codec_for(label.removeprefix(prefix))
        return None
    return info if isinstance(text, str) else None


def detect(payload: bytes) -> str:
    """The likely charset of 8-bit bytes that are not UTF-8 and carry no usable label."""
    import charset_normalizer  # loaded on first need: most mail never needs it

    best = charset_normalizer.from_bytes(payload[:DETECT_SAMPLE]).best()
    return best.encoding if best is not None else _WESTERN


def _is_utf8(payload: bytes) -> bool:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_text(payload: bytes, charset: str | None) -> tuple[str, str | None]:
    """Text and, when the label did not fit, a defect saying how it was read instead."""
    label = clean_label(charset)
    info = codec_for(label) if label else None
    if payload.isascii() and (info is None or info.name not in _NOT_ASCII_SAFE):
        return payload.decode("ascii"), None
    shown = "".join(c if c.isprintable() else "?" for c in label[:40])
    if info is None:
        return _unlabelled(payload, shown)
    if info.name == "utf-8":
        return _labelled_utf8(payload, shown)
    if info.name == _WESTERN and _is_utf8(payload):
        # UTF-8 under a western label (us-ascii, latin1, windows-1252): the label lies.
        return payload.decode("utf-8"), f"charset {shown} did not fit; read as utf-8"
    errors = _C1 if info.name == _WESTERN else "replace"
    try:
        return info.decode(payload, "strict")[0], None
    except UnicodeDecodeError:
        if _is_utf8(payload):
            return payload.decode("utf-8"), f"charset {shown} did not fit; read as utf-8"
        text = info.decode(payload, errors)[0]
        return text, f"charset {shown}: bytes it does not define were replaced"


def _unlabelled(payload: bytes, shown: str) -> tuple[str, str | None]:
    """No label, or one nothing knows: UTF-8 when the bytes are, else what detection says."""
    if _is_utf8(payload):
        defect = f"charset {shown} did not fit; read as utf-8" if shown else None
        return payload.decode("utf-8"), defect
    found = detect(payload)
    text = payload.decode(found, _C1 if found == _WESTERN else "replace")
    return text, f"charset {shown or '(none)'} did not fit; read as {found}"


def _labelled_utf8(payload: bytes, shown: str) -> tuple[str, str | None]:
    """UTF-8 with a few broken bytes stays UTF-8; bytes with no UTF-8 in them at all are
    windows-1252 under a lying label (the common case: western Outlook)."""
    text = payload.decode("utf-8", "replace")
    broken = text.count("\ufffd")
    if broken == 0:
        return text, None
    readable = sum(1 for c in text if ord(c) > 127) - broken
    if readable > broken:
        return text, f"charset {shown}: {broken} broken sequences replaced"
    return payload.decode(_WESTERN, _C1), f"charset {shown} did not fit; read as {_WESTERN}"


# ---------------------------------------------------------------------------- headers

_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(r"[ \t\r\n]*")


def _word_bytes(encoding: str, payload: str) -> bytes:
    if encoding in "bB":
        try:
            return b64decode(payload + "=" * (-len(payload) % 4))
        except ValueError:
            return payload.encode("ascii", "replace")
    return header_decode(payload).encode("latin-1", "replace")


def _python_reads_alike(label: str) -> bool:
    """Whether the email package would decode this label as we do (then leave it alone)."""
    info = codec_for(label)
    try:
        return info is not None and codecs.lookup(label).name == info.name
    except (LookupError, ValueError):
        return False


def _decode_word(data: bytes, label: str, hint: str | None) -> str:
    """An unknown label's bytes are read in the message's declared charset when they fit it."""
    info = codec_for(hint) if hint and codec_for(label) is None else None
    if info is not None:
        try:
            return str(info.decode(data, "strict")[0])
        except UnicodeDecodeError:
            pass
    return decode_text(data, label)[0]


def normalise_encoded_words(value: str, hint: str | None = None) -> str:
    """RFC 2047 words in charsets the email package misreads or does not know (iso-gb2312,
    x-unknown, ks_c_5601-1987, latin-1 meaning windows-1252), re-encoded as UTF-8 words.
    Adjacent words in one charset are decoded together: senders split characters across them."""
    words = list(_ENCODED_WORD.finditer(value))
    if not words or all(_python_reads_alike(w.group(1).lower()) for w in words):
        return value
    out: list[str] = []
    position = 0
    index = 0
    while index < len(words):
        word = words[index]
        label = word.group(1).lower()
        data = _word_bytes(word.group(3), word.group(4))
        end = word.end()
        while index + 1 < len(words):
            following = words[index + 1]
            between = value[end : following.start()]
            if following.group(1).lower() != label or not _BETWEEN_WORDS.fullmatch(between):
                break
            data += _word_bytes(following.group(3), following.group(4))
            end = following.end()
            index += 1
        out.append(value[position : word.start()])
        text = _decode_word(data, label, hint)
        out.append("=?utf-8?b?" + b64encode(text.encode("utf-8")).decode("ascii") + "?=")
        position = end
        index += 1
    out.append(value[position:])
    return "".join(out)
