"""Replies written the way real mail clients write them: Gmail, Outlook (the "Original
Message" line, and the From/Sent/To/Subject block under a rule), Apple Mail and Thunderbird,
in English, French, Polish and German, as plain text and as the HTML those clients send.

The attributions and header blocks are the ones each client writes in that language; the
HTML is the markup they produce around a quote (Gmail's gmail_quote div, Outlook's
divRplyFwdMsg, Apple Mail's blockquote type=cite, Thunderbird's moz-cite-prefix)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from html import escape

LANGUAGES = ("en", "fr", "pl", "de")


@dataclass(frozen=True)
class Quoted:
    """The mail being answered, as the client shows it."""

    name: str
    address: str
    to: str
    subject: str
    text: str
    html: str | None = None

    @property
    def sender(self) -> str:
        return f"{self.name} <{self.address}>"


# ---------------------------------------------------------------------------- attributions
# The mail answered was sent on Monday 30 November 2026 at 10:02.


def gmail_attribution(lang: str, q: Quoted) -> str:
    """Gmail folds its attribution at 76 characters in the text part, inside the address."""
    return {
        "en": f"On Mon, Nov 30, 2026 at 10:02\u202fAM {q.name} <\n{q.address}> wrote:",
        "fr": f"Le lun. 30 nov. 2026 à 10:02, {q.name} <{q.address}> a\nécrit :",
        "pl": f"pon., 30 lis 2026 o 10:02 {q.name} <{q.address}>\nnapisał(a):",
        "de": f"Am Mo., 30. Nov. 2026 um 10:02 Uhr schrieb {q.name} <\n{q.address}>:",
    }[lang]


def apple_attribution(lang: str, q: Quoted) -> str:
    return {
        "en": f"On 30 Nov 2026, at 10:02, {q.sender} wrote:",
        "fr": f"Le 30 nov. 2026 à 10:02, {q.sender} a écrit :",
        "pl": f"Wiadomość napisana przez {q.sender} w dniu 30 lis 2026, o godz. 10:02:",
        "de": f"Am 30.11.2026 um 10:02 schrieb {q.sender}:",
    }[lang]


def thunderbird_attribution(lang: str, q: Quoted) -> str:
    return {
        "en": f"On 30/11/2026 10:02, {q.name} wrote:",
        "fr": f"Le 30/11/2026 à 10:02, {q.name} a écrit :",
        "pl": f"W dniu 30.11.2026 o 10:02, {q.name} pisze:",
        "de": f"Am 30.11.26 um 10:02 schrieb {q.name}:",
    }[lang]


ORIGINAL_MESSAGE = {
    "en": "-----Original Message-----",
    "fr": "-----Message d'origine-----",
    "pl": "-----Wiadomość oryginalna-----",
    "de": "-----Ursprüngliche Nachricht-----",
}
# Outlook's header labels; French puts a (no-break, in the HTML) space before the colon.
OUTLOOK_LABELS = {
    "en": ("From:", "Sent:", "To:", "Subject:"),
    "fr": ("De :", "Envoyé :", "À :", "Objet :"),
    "pl": ("Od:", "Wysłano:", "Do:", "Temat:"),
    "de": ("Von:", "Gesendet:", "An:", "Betreff:"),
}
OUTLOOK_SENT = {
    "en": "Monday, November 30, 2026 10:02 AM",
    "fr": "lundi 30 novembre 2026 10:02",
    "pl": "poniedziałek, 30 listopada 2026 10:02",
    "de": "Montag, 30. November 2026 10:02",
}
OUTLOOK_RULE = "_" * 32


def outlook_header_lines(lang: str, q: Quoted, space: str = " ") -> list[tuple[str, str]]:
    labels = [label.replace(" :", space + ":") for label in OUTLOOK_LABELS[lang]]
    values = (q.sender, OUTLOOK_SENT[lang], q.to, q.subject)
    return list(zip(labels, values, strict=True))


# ---------------------------------------------------------------------------- plain text


def _quoted_lines(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def gmail_text(lang: str, new: str, q: Quoted) -> str:
    return f"{new}\n\n{gmail_attribution(lang, q)}\n\n{_quoted_lines(q.text)}\n"


def outlook_original_text(lang: str, new: str, q: Quoted) -> str:
    headers = "\n".join(f"{k} {v}" for k, v in outlook_header_lines(lang, q))
    return f"{new}\n\n{ORIGINAL_MESSAGE[lang]}\n{headers}\n\n{q.text}\n"


def outlook_block_text(lang: str, new: str, q: Quoted, space: str = " ") -> str:
    """The text part Outlook derives from its HTML: a rule, the header block, the old text
    unmarked."""
    headers = "\n".join(f"{k} {v}" for k, v in outlook_header_lines(lang, q, space))
    return f"{new}\n\n{OUTLOOK_RULE}\n{headers}\n\n{q.text}\n"


def apple_text(lang: str, new: str, q: Quoted) -> str:
    """Apple Mail quotes its attribution with the mail it answers."""
    return f"{new}\n\n{_quoted_lines(apple_attribution(lang, q) + chr(10) + chr(10) + q.text)}\n"


def thunderbird_text(lang: str, new: str, q: Quoted) -> str:
    return f"{new}\n\n{thunderbird_attribution(lang, q)}\n{_quoted_lines(q.text)}\n"


# ---------------------------------------------------------------------------- HTML


def _quoted_html(q: Quoted) -> str:
    if q.html:
        body = q.html.split("<body", 1)[-1].partition(">")[2].rpartition("</body>")[0]
        return body or q.html
    return "<br>\n".join(escape(line) for line in q.text.splitlines())


def _paragraphs(new: str, wrap: Callable[[str], str]) -> str:
    blocks = new.split("\n\n")
    return "".join(wrap("<br>".join(escape(line) for line in b.splitlines())) for b in blocks)


def gmail_html(lang: str, new: str, q: Quoted) -> str:
    attribution = escape(gmail_attribution(lang, q).replace("\n", " ").replace("< ", "<")).replace(
        escape(q.address), f'<a href="mailto:{q.address}">{q.address}</a>'
    )
    body = _paragraphs(new, lambda p: f"<div>{p}</div><div><br></div>")
    return (
        f'<div dir="ltr">{body}</div><br>'
        '<div class="gmail_quote gmail_quote_container">'
        f'<div dir="ltr" class="gmail_attr">{attribution}<br></div>'
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
        'border-left:1px solid rgb(204,204,204);padding-left:1ex">'
        f"{_quoted_html(q)}</blockquote></div>\n"
    )


def outlook_html(lang: str, new: str, q: Quoted) -> str:
    headers = "<br>".join(
        f"<b>{escape(k)}</b> {escape(v)}" for k, v in outlook_header_lines(lang, q, "\u00a0")
    )
    body = _paragraphs(
        new,
        lambda p: (
            '<div class="elementToProof" style="font-family: Aptos, Aptos_EmbeddedFont, '
            f'Calibri, Helvetica, sans-serif; font-size: 12pt;">{p}</div>'
        ),
    )
    return (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
        '<style type="text/css" style="display:none;"> P {margin-top:0;margin-bottom:0;} </style>'
        f'</head><body dir="ltr">{body}<div id="appendonsend"></div>'
        '<hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
        f'style="font-size:11pt" color="#000000">{headers}</font><div>&nbsp;</div></div>'
        f"<div>{_quoted_html(q)}</div></body></html>\n"
    )


def apple_html(lang: str, new: str, q: Quoted) -> str:
    body = _paragraphs(new, lambda p: f"<div>{p}</div><div><br></div>")
    return (
        '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8"></head>'
        '<body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; '
        f'line-break: after-white-space;">{body}'
        '<div><br id="lineBreakAtBeginningOfMessage"><div><br>'
        f'<blockquote type="cite"><div>{escape(apple_attribution(lang, q))}</div>'
        '<br class="Apple-interchange-newline">'
        f"<div><div>{_quoted_html(q)}</div></div></blockquote></div><br></div></body></html>\n"
    )


def thunderbird_html(lang: str, new: str, q: Quoted) -> str:
    body = _paragraphs(new, lambda p: f"<p>{p}<br></p>")
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta http-equiv="Content-Type" content="text/html; charset=UTF-8">\n'
        f"  </head>\n  <body>\n    {body}\n"
        f'    <div class="moz-cite-prefix">{escape(thunderbird_attribution(lang, q))}<br>\n'
        "    </div>\n"
        '    <blockquote type="cite" cite="mid:notice@example.com">'
        f"{_quoted_html(q)}</blockquote>\n  </body>\n</html>\n"
    )


# ---------------------------------------------------------------------------- clients


@dataclass(frozen=True)
class Client:
    """How one client writes a reply: its text part, and its HTML part if it sends one."""

    name: str
    text: Callable[[str, str, Quoted], str] | None
    html: Callable[[str, str, Quoted], str] | None = None

    def body(self, message: EmailMessage, lang: str, new: str, q: Quoted) -> None:
        """Put the reply's body into `message`: text, text with an HTML alternative, or
        HTML only."""
        if self.text is not None:
            message.set_content(self.text(lang, new, q))
            if self.html is not None:
                message.add_alternative(self.html(lang, new, q), subtype="html")
        else:
            assert self.html is not None
            message.set_content(self.html(lang, new, q), subtype="html")


def _outlook_html_text(lang: str, new: str, q: Quoted) -> str:
    return outlook_block_text(lang, new, q, "\u00a0")


PLAIN_CLIENTS = (
    Client("gmail", gmail_text),
    Client("outlook-original-message", outlook_original_text),
    Client("outlook-header-block", outlook_block_text),
    Client("apple-mail", apple_text),
    Client("thunderbird", thunderbird_text),
)
HTML_CLIENTS = (
    Client("gmail-html", gmail_text, gmail_html),
    Client("outlook-html", _outlook_html_text, outlook_html),
    Client("apple-mail-html", apple_text, apple_html),
    Client("thunderbird-html-only", None, thunderbird_html),
)
CLIENTS = PLAIN_CLIENTS + HTML_CLIENTS
