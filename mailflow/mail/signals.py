"""The signals machines leave in mail, each found by a small test that names what it saw.
Patterns come from the RFCs and from what the senders named in the tests write, in the
languages support mail arrives in; each test looks only at the subject, a few headers and
the opening of the text, so a person's mail costs a few regular-expression searches."""

from __future__ import annotations

import re

from mailflow.mail.parse import ParsedMessage

OPENING = 800  # characters of text where responders and bounces say what they are
LOOP_SCAN = 4000  # a loop diagnostic may sit below a list of recipients


class _Phrases:
    """A lower-case pattern searched in lower-cased text, only when one of its anchors (words
    every alternative contains) is there: most mail has none, and then costs a few `in` tests
    instead of a search with dozens of alternatives."""

    def __init__(self, anchors: tuple[str, ...], pattern: str) -> None:
        self.anchors = anchors
        self.pattern = re.compile(pattern)

    def find(self, text: str) -> str:
        lowered = text.lower()
        if not any(anchor in lowered for anchor in self.anchors):
            return ""
        match = self.pattern.search(lowered)
        return match.group(0) if match else ""


# ---------------------------------------------------------------------------- senders

_SYSTEM_LOCAL = re.compile(
    r"^(mailer-?daemon|mail-?daemon|postmaster|mdaemon|mail\.?delivery|"
    r"microsoftexchange[0-9a-f]{32})$",
    re.I,
)
# Gateways that sign their notices as themselves: evidence only beside a bounce's words.
_GATEWAY_LOCAL = re.compile(
    r"(^|[._-])(mailguard|antivirus|virus|mailscanner|content-?filter|quarantine|policy|"
    r"mailgateway|gateway)([._+-]|$)",
    re.I,
)
_NO_REPLY_LOCAL = re.compile(r"^(no-?reply|do-?not-?reply|noreply-.*|bounces?)(\+.*)?$", re.I)


def _local(address: str) -> str:
    return address.strip().strip("<>").rpartition("@")[0].lower()


def is_system(address: str) -> bool:
    """MAILER-DAEMON, postmaster, Exchange's system mailbox."""
    local = _local(address)
    return bool(local) and bool(_SYSTEM_LOCAL.match(local))


def _is_gateway(address: str) -> bool:
    return bool(_GATEWAY_LOCAL.search(_local(address)))


def machine_sender(parsed: ParsedMessage, sender: str) -> list[str]:
    """Evidence that a machine, not a person, sent this: the envelope counts as From does."""
    found: list[str] = []
    if sender.strip() == "<>":
        found.append("null envelope sender")
    elif is_system(sender) or _is_gateway(sender):
        found.append(f"envelope sender {sender.strip('<> ')}")
    author = parsed.sender.address if parsed.sender else ""
    if not author:
        found.append("no usable From")
    elif is_system(author) or _is_gateway(author):
        found.append(f"From {author}")
    auto_submitted = (parsed.header("auto-submitted") or "").strip().lower()
    if auto_submitted and auto_submitted != "no":
        found.append(f"Auto-Submitted: {auto_submitted[:40]}")
    return found


# ---------------------------------------------------------------------------- bounces

_BOUNCE_PHRASES = _Phrases(
    (
        "deliver",
        "returned mail",
        "original message was received",
        "zugestellt",
        "failure notice",
        "did not reach",
        "blocked",
        "rejected",
        "bounced",
        "quarantined",
        "virus",
        "threat",
        "malware",
        "mail system at host",
        "zustell",
        "remis",
        "distribu",
        "chec de",
        "dostarcz",
        "entreg",
        "recapit",
        "consegnat",
        "bestelbaar",
        "afgeleverd",
        "bezorgd",
        "配信",
        "配送",
        "退信",
        "投递",
        "送达",
        "傳遞",
    ),
    r"undeliver(ed|able)|delivery (status notification|failure|has failed|failed|problem)|"
    r"mail delivery (failed|failure|system|subsystem)|returned mail|failure notice|"
    r"non[- ]?delivery|(could|can)( ?not|n't) be delivered|was not delivered|"
    r"wasn't delivered|unable to deliver|wasn't able to deliver|did not reach|"
    r"message (was )?(blocked|rejected|bounced|quarantined)|(virus|threat|malware) "
    r"(detected|found|alert)|mail system at host|created automatically by mail delivery|"
    r"error occurred while trying to deliver|original message was received at|"
    r"unzustellbar|nicht zustellbar|nicht zugestellt|zustellung fehlgeschlagen|"
    r"non remis|non distribu|[ée]chec de (la )?(remise|distribution)|pas pu [êe]tre remis|"
    r"niedostarczon|nie (została|zostala) dostarczon|nie można dostarczyć|"
    r"no se puede entregar|no se pudo entregar|no entregado|error de entrega|"
    r"mancato recapito|non recapitat|non (è|e') stato consegnato|"
    r"onbestelbaar|niet (worden )?(afgeleverd|bezorgd)|kan niet worden bezorgd|"
    r"n[ãa]o (é|foi) poss[íi]vel entregar|n[ãa]o entregue|falha na entrega|"
    r"配信不能|配送エラー|配信エラー|配信に失敗|配信できません|"
    r"退信|无法投递|投递失败|未送达|無法傳遞",
)
_LOOP_PHRASES = _Phrases(
    ("loop", "hop", "received", "schleife", "boucle"),
    r"mail (forwarding )?loop|suspected (mail )?loop|loop detected|hop count exceeded|"
    r"too many hops|message is looping|routing loop|too many \"?received\"? headers|"
    r"mailschleife|boucle de (messagerie|courrier)",
)
_NDR_HEADERS = ("x-failed-recipients", "x-ms-exchange-message-is-ndr")


def bounce_structure(parsed: ParsedMessage) -> list[str]:
    """A delivery-status report anywhere (RFC 3464, typed or not), or an MTA's NDR header."""
    found = [f"{t} part" for t in parsed.parts if t.endswith("delivery-status")][:1]
    found += [f"{name} header" for name in _NDR_HEADERS if parsed.header(name) is not None]
    return found


def bounce_prose(parsed: ParsedMessage) -> list[str]:
    """A bounce's subject or opening, in the languages MTAs write them; a mail loop above all."""
    found: list[str] = []
    if _BOUNCE_PHRASES.find(parsed.subject):
        found.append(f"bounce subject {parsed.subject[:60]!r}")
    opening = _BOUNCE_PHRASES.find(parsed.text[:OPENING])
    if opening:
        found.append(f"bounce text {opening!r}")
    loop = _LOOP_PHRASES.find(parsed.subject) or _LOOP_PHRASES.find(parsed.text[:LOOP_SCAN])
    if loop:
        found.append(f"mail loop {loop!r}")
    return found


# ---------------------------------------------------------------------------- feedback reports

_FEEDBACK_PROSE = re.compile(
    r"complaint|abuse report|feedback[- ]loop|spam report|\bfbl\b|marked (it |this )?as spam|"
    r"email abuse report|junk mail reporting",
    re.I,
)
_FEEDBACK_SENDERS = re.compile(r"^(fbl|feedback|feedbackloop|scomp|abuse|complaints?)", re.I)


def feedback_structure(parsed: ParsedMessage) -> list[str]:
    """An RFC 5965 report, typed or not, or Microsoft's JMRP header."""
    found: list[str] = []
    if "message/feedback-report" in parsed.parts:
        found.append("message/feedback-report part")
    elif "feedback-report" in (parsed.header("content-type") or "").lower():
        found.append("report-type=feedback-report")
    if parsed.header("x-hmxmroriginalrecipient") is not None:
        found.append("X-HmXmrOriginalRecipient header (JMRP)")
    return found


def feedback_prose(parsed: ParsedMessage) -> list[str]:
    found: list[str] = []
    if _FEEDBACK_PROSE.search(parsed.subject):
        found.append(f"complaint subject {parsed.subject[:60]!r}")
    author = parsed.sender.address if parsed.sender else ""
    if author and _FEEDBACK_SENDERS.match(_local(author)):
        found.append(f"From {author}")
    return found


def returned_message(parsed: ParsedMessage) -> bool:
    return "message/rfc822" in parsed.parts or "text/rfc822-headers" in parsed.parts


# ---------------------------------------------------------------------------- challenges

_CHALLENGE_SUBJECT = re.compile(
    r"(confirm|verify|verification|validate)\w* (your|that you|you are|sender)|"
    r"\[verify\]|guest list|registration required|authori[sz]ation required|"
    r"waitlist|bestätigung erforderlich|confirmation requise|confirmaci[óo]n requerida|"
    r"please confirm your message",
    re.I,
)
_CHALLENGE_TEXT = _Phrases(
    (
        "confirm",
        "verif",
        "prove",
        "challenge",
        "spam",
        "held",
        "waitlisted",
        "quarantined",
        "only accepts",
        "click the link",
        "fill out",
        "protected by",
        "junk",
    ),
    r"(confirm|verify|prove)\w* (that )?you are (a |an )?(real |actual )?"
    r"(person|human|not a (spammer|robot|bot))|challenge[- ]response|anti-?spam service|"
    r"(has been|is being|is) (held|waitlisted|quarantined) (until|for|pending)|held until you|"
    r"only accepts (e-?mail|mail|messages) from (verified|approved|known)|"
    r"click the link below to (verify|confirm|register)|fill out the (short )?(registration )?form|"
    r"i am protected by|blocks junk (e-?mail|mail)",
)
_CHALLENGE_VENDORS = _Phrases(
    ("boxbe", "bluebottle", "arrest", "choicemail", "sendio", "mailblocks"),
    r"boxbe|bluebottle|spam ?arrest|choicemail|sendio|mailblocks",
)


def challenge(parsed: ParsedMessage) -> list[str]:
    """Signs of a challenge-response request: two of them make one."""
    found: list[str] = []
    if _CHALLENGE_SUBJECT.search(parsed.subject):
        found.append(f"challenge subject {parsed.subject[:60]!r}")
    opening = parsed.text[:OPENING]
    text = _CHALLENGE_TEXT.find(opening)
    if text:
        found.append(f"challenge text {text!r}")
    author = f"{parsed.sender.name} <{parsed.sender.address}>" if parsed.sender else ""
    vendor = _CHALLENGE_VENDORS.find(author) or _CHALLENGE_VENDORS.find(opening)
    if vendor:
        found.append(f"challenge-response service {vendor!r}")
    return found


# ---------------------------------------------------------------------------- auto-replies

_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|autoreply|auto:|out of (the )?office|"
    r"abwesenheit(snotiz)?|automatische antwort|r[ée]ponse automatique|absence|absent|"
    r"automatyczna odpowied[źz]|odpowied[źz] automatyczna|autosvar|automatisch antwoord|"
    r"afwezig|respuesta autom[aá]tica|fuera de la oficina|ausente|risposta automatica|"
    r"fuori ufficio|resposta autom[áa]tica|自動応答|自動返信|自动回复|不在)"
    r"|is out of (the )?office|ist au(ß|ss)er haus|est absente?\b|on (vacation|holiday|leave)",
    re.I,
)
_AUTO_REPLY_TEXT = _Phrases(
    (
        "office",
        "away",
        "absent",
        "vacation",
        "holiday",
        "leave",
        "automatic",
        "büro",
        "abwesen",
        "haus",
        "urlaub",
        "automatique",
        "nieobecn",
        "automatyczn",
        "oficina",
        "ausente",
        "vacaciones",
        "automática",
        "ufficio",
        "assente",
        "ferie",
        "afwezig",
        "vakantie",
        "aanwezig",
        "férias",
        "ferias",
        "escrit",
        "不在",
        "休假",
    ),
    r"(i am|i'm|i will be) (currently )?(out of (the )?office|(away|absent|on (annual )?"
    r"(vacation|holiday|leave)) (until|till|through|from the office))|"
    r"this is an automatic (reply|response|message)|automatic reply|"
    r"(bin|sind) (bis|vom|ab|derzeit|zurzeit|momentan)[^\n]{0,40}(nicht im büro|abwesend|"
    r"au(ß|ss)er haus|im urlaub)|abwesenheitsnotiz|"
    r"je suis (actuellement )?absente?|je serai absente?|r[ée]ponse automatique|"
    r"jestem (obecnie )?nieobecn[ya]|odpowied[źz] automatyczna|"
    r"estoy (fuera de la oficina|ausente|de vacaciones)|respuesta autom[áa]tica|"
    r"sono (fuori ufficio|assente|in ferie)|ik ben (afwezig|met vakantie|niet aanwezig)|"
    r"estou (ausente|de f[ée]rias|fora do escrit[óo]rio)|"
    r"不在にしております|只今不在|我(正在|目前)休假",
)
_VENDOR_HEADERS = (
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-autoreply-from",
    "x-mail-autoreply",
    "x-auto-response",
)
# Prefixes a person's client puts before a Thread-Topic; any other prefix is a responder's.
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|vs|fw|fwd|wg|tr|rv|r|odp|antw|res|enc)\s*:\s*)*$", re.I)


def auto_reply_strong(parsed: ParsedMessage) -> list[str]:
    """RFC 3834 and RFC 8098 say so outright; so does Precedence: auto_reply."""
    content_type = (parsed.header("content-type") or "").lower()
    if "disposition-notification" in content_type or (
        "message/disposition-notification" in parsed.parts
    ):
        return ["read receipt (RFC 8098)"]
    auto_submitted = (parsed.header("auto-submitted") or "").strip().lower()
    if auto_submitted.startswith("auto-replied"):
        return [f"Auto-Submitted: {auto_submitted[:40]}"]
    if (parsed.header("precedence") or "").strip().lower() == "auto_reply":
        return ["Precedence: auto_reply"]
    return []


def auto_reply_weak(parsed: ParsedMessage, sender: str) -> list[str]:
    """Signs of an out-of-office reply without RFC 3834 headers; two of them make one."""
    found: list[str] = []
    if _AUTO_REPLY_SUBJECT.search(parsed.subject):
        found.append(f"subject {parsed.subject[:60]!r}")
    vendor = _vendor_header(parsed)
    if vendor:
        found.append(vendor)
    topic = _thread_topic_copy(parsed)
    if topic:
        found.append(topic)
    if parsed.header("x-auto-response-suppress") is not None:
        found.append(f"X-Auto-Response-Suppress: {parsed.header('x-auto-response-suppress')}")
    text = _AUTO_REPLY_TEXT.find(parsed.text[:OPENING])
    if text:
        found.append(f"text {text!r}")
    if sender.strip() == "<>" or is_system(sender):
        found.append(f"envelope sender {sender.strip() or '<>'}")
    return found


def _vendor_header(parsed: ParsedMessage) -> str:
    for name in _VENDOR_HEADERS:
        if parsed.header(name) is not None:
            return f"{name} header"
    if (parsed.header("x-autogenerated") or "").strip().lower() == "reply":
        return "X-Autogenerated: Reply"
    message_class = parsed.header("x-post-messageclass") or ""
    if "autoresponder" in message_class.lower():
        return f"X-POST-MessageClass: {message_class[:40]}"
    return ""


def _thread_topic_copy(parsed: ParsedMessage) -> str:
    """Exchange keeps the original subject in Thread-Topic; a responder's prefix before it
    ("Automatic reply:", "Abwesend:") is not one of the reply prefixes a person's client adds."""
    topic = (parsed.header("thread-topic") or "").strip()
    subject = parsed.subject.strip()
    if not topic or subject == topic or not subject.endswith(topic):
        return ""
    prefix = subject[: -len(topic)]
    return "" if _REPLY_PREFIX.match(prefix) else f"Thread-Topic copied under {prefix.strip()!r}"


# ---------------------------------------------------------------------------- lists, generated

_LIST_HEADERS = (
    "list-id",
    "list-post",
    "list-unsubscribe",
    "list-help",
    "list-subscribe",
    "list-owner",
    "list-archive",
    "mailing-list",
    "x-mailman-version",
    "x-beenthere",
    "x-loop",
)


def list_headers(parsed: ParsedMessage) -> list[str]:
    """RFC 2369/2919 headers, and what Mailman, ezmlm, Google and Yahoo groups, Sympa add."""
    found = [f"{name} header" for name in _LIST_HEADERS if parsed.header(name) is not None]
    precedence = (parsed.header("precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        found.insert(0, f"Precedence: {precedence}")
    return found


def generated(parsed: ParsedMessage, sender: str) -> list[str]:
    auto_submitted = (parsed.header("auto-submitted") or "").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return [f"Auto-Submitted: {auto_submitted[:40]}"]
    if sender.strip() == "<>":
        return ["null return path"]
    author = parsed.sender.address if parsed.sender else ""
    for address in (author, sender):
        if is_system(address) or _NO_REPLY_LOCAL.match(_local(address)):
            return [f"sender {address.strip('<> ')}"]
    return []
