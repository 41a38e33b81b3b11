"""Customer-ready onboarding instructions to forward together with an invitation code.

One text per (language, environment), following docs/domain.md, Onboarding flow: production
texts address the Brincr user at the customer ("u"-form in Dutch), sandbox texts the vendor's
own developer. The Visma portal is in English, so its UI labels stay in English in both
languages.

``customer_text`` is plain text for e-mail; ``customer_mrkdwn`` is the same content for a Slack
section (at most 3,000 characters: the scope list is shortened there if needed, never in the
plain text). Invitation codes are shown to the reader here by design: never log these texts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bot.domain import Environment, normalize_kvk
from bot.slack.text import code, escape

Language = Literal["nl", "en"]

SLACK_SECTION_LIMIT = 3000
DEFAULT_VENDOR_APP = "our integration"
_DEFAULT_APP_NAME: dict[Language, str] = {"nl": "onze koppeling", "en": DEFAULT_VENDOR_APP}
_MORE: dict[Language, str] = {"nl": "… en nog {n} andere", "en": "… and {n} more"}

# The Visma Developer Portal and App Store labels, exactly as the (English) portal shows them.
_UI_LABELS = {
    "portal": "Visma Developer Portal",
    "store": "Visma App Store",
    "my_apps": "My apps",
    "use_code": "Use invitation code",
    "find": "Find",
    "on": "ON",
    "integrate": "Integrate",
}


@dataclass(frozen=True)
class Handoff:
    customer_name: str
    kvk: str
    environment: Environment
    code: str
    language: Language
    scopes: tuple[str, ...]
    contact: str | None = None
    vendor_app: str = DEFAULT_VENDOR_APP


@dataclass(frozen=True)
class _Template:
    greeting: str  # with {contact}
    anonymous_greeting: str
    intro: str  # with {app} and {customer}
    steps: tuple[str, ...]  # the scope list follows the step that ends with ":"
    closing: str


_NL_PRODUCTION = _Template(
    greeting="Beste {contact},",
    anonymous_greeting="Goedendag,",
    intro=(
        "Om {app} toegang te geven tot de Brincr-gegevens van {customer}, vragen wij u de "
        "volgende stappen uit te voeren."
    ),
    steps=(
        "Log in op de {portal} met het account van de Brincr-gebruiker.",
        "Ga naar de {store} en log daar ook in als daarom wordt gevraagd.",
        "Wordt u gevraagd een organisatie te kiezen? Kies dan de organisatie die aan Brincr is "
        "gekoppeld. U herkent deze aan het KvK-nummer {kvk}.",
        "Open {my_apps}, klik op {use_code}, vul de uitnodigingscode {code} in en klik op {find}.",
        "Controleer of alle gevraagde rechten (scopes) op {on} staan:",
        "Scroll naar beneden en klik op {integrate}. Daarna heeft {app} toegang tot de "
        "goedgekeurde gegevens.",
    ),
    closing=(
        "U kunt deze rechten op dezelfde pagina op elk moment weer intrekken. Wilt u een scope "
        "uitzetten, overleg dat dan eerst met ons: zonder die toestemming werkt de koppeling niet "
        "meer.\n\nHeeft u vragen? Neem dan gerust contact met ons op."
    ),
)

_NL_SANDBOX = _Template(
    greeting="Hoi {contact},",
    anonymous_greeting="Hoi,",
    intro=(
        "Met deze stappen geef je {app} toegang tot je sandbox-organisatie in Brincr "
        "(klant: {customer}). In de sandbox gaat de goedkeuring automatisch: je hoeft op "
        "niemand te wachten."
    ),
    steps=(
        "Log in op de {portal} met het account van de Brincr-gebruiker van je sandbox-organisatie.",
        "Ga naar de {store} en log daar ook in als daarom wordt gevraagd.",
        "Moet je een organisatie kiezen? Kies dan je sandbox-organisatie die aan Brincr is "
        "gekoppeld, te herkennen aan het KvK-nummer {kvk}.",
        "Open {my_apps}, klik op {use_code}, vul de uitnodigingscode {code} in en klik op {find}.",
        "Controleer of alle gevraagde scopes op {on} staan:",
        "Scroll naar beneden en klik op {integrate}. De aanvraag wordt automatisch goedgekeurd, "
        "dus {app} heeft meteen toegang tot de goedgekeurde scopes.",
    ),
    closing=(
        "Je kunt deze rechten op dezelfde pagina op elk moment weer intrekken. Zet je een scope "
        "uit, dan werkt de koppeling niet meer; stem dat dus eerst af met het team."
    ),
)

_EN_PRODUCTION = _Template(
    greeting="Dear {contact},",
    anonymous_greeting="Hello,",
    intro=("To give {app} access to the Brincr data of {customer}, please follow the steps below."),
    steps=(
        "Log in to the {portal} with the account of the Brincr user.",
        "Go to the {store} and log in there as well if asked.",
        "If you are asked to select an organisation, pick the one connected to Brincr. You can "
        "recognise it by its KvK (Chamber of Commerce) number: {kvk}.",
        "Open {my_apps}, click {use_code}, enter the invitation code {code} and click {find}.",
        "Check that each of the requested scopes is switched {on}:",
        "Scroll down and click {integrate}. After that, {app} has access to the approved data.",
    ),
    closing=(
        "You can revoke these permissions at any time on that same page. If you would like to "
        "switch a scope off, please discuss this with us first, as the integration stops working "
        "without it.\n\nIf you have any questions, please do not hesitate to contact us."
    ),
)

_EN_SANDBOX = _Template(
    greeting="Hi {contact},",
    anonymous_greeting="Hi,",
    intro=(
        "These steps give {app} access to your sandbox organisation in Brincr (customer: "
        "{customer}). In the sandbox, approval is automatic: there is no one to wait for."
    ),
    steps=(
        "Log in to the {portal} with the account of the Brincr user of your sandbox organisation.",
        "Go to the {store} and log in there as well if asked.",
        "If asked to select an organisation, pick your sandbox organisation connected to Brincr, "
        "recognised by its KvK (Chamber of Commerce) number: {kvk}.",
        "Open {my_apps}, click {use_code}, enter the invitation code {code} and click {find}.",
        "Check that every requested scope is switched {on}:",
        "Scroll down and click {integrate}. Approval is automatic, so {app} has access to the "
        "approved scopes right away.",
    ),
    closing=(
        "You can revoke these permissions at any time on that same page. Switching a scope off "
        "stops the integration from working, so please agree it with the team first."
    ),
)

TEMPLATES: dict[tuple[Language, Environment], _Template] = {
    ("nl", Environment.PRODUCTION): _NL_PRODUCTION,
    ("nl", Environment.SANDBOX): _NL_SANDBOX,
    ("en", Environment.PRODUCTION): _EN_PRODUCTION,
    ("en", Environment.SANDBOX): _EN_SANDBOX,
}


@dataclass(frozen=True)
class _Style:
    label: Callable[[str], str]  # a Visma UI label
    value: Callable[[str], str]  # a user-supplied value in running text
    code: Callable[[str], str]  # the invitation code, KvK number and scope names
    bullet: str


escape_mrkdwn = escape  # one escaping rule for every mrkdwn text (bot.slack.text)


_PLAIN = _Style(label=lambda s: f'"{s}"', value=str, code=str, bullet="   - ")
_MRKDWN = _Style(
    label=lambda s: f"*{s}*",
    value=escape_mrkdwn,
    code=code,
    bullet="   • ",
)


def customer_text(h: Handoff) -> str:
    """Plain text for e-mail: no Slack markup, every scope listed."""
    return _render(h, _PLAIN, len(h.scopes))


def customer_mrkdwn(h: Handoff) -> str:
    """Slack mrkdwn, at most 3,000 characters: the scope list ends in "… and N more" if needed."""
    shown = len(h.scopes)
    text = _render(h, _MRKDWN, shown)
    while len(text) > SLACK_SECTION_LIMIT and shown > 0:
        shown -= 1
        text = _render(h, _MRKDWN, shown)
    return text


def _render(h: Handoff, style: _Style, shown: int) -> str:
    template = TEMPLATES[(h.language, h.environment)]
    values = _values(h, style)
    steps = []
    for number, step in enumerate(template.steps, start=1):
        line = f"{number}. {step.format(**values)}"
        if step.endswith(":"):
            line += "\n" + _scope_list(h, style, shown)
        steps.append(line)
    greeting = (
        template.greeting.format(contact=style.value(h.contact))
        if h.contact
        else template.anonymous_greeting
    )
    parts = [greeting, template.intro.format(**values), "\n".join(steps), template.closing]
    return "\n\n".join(parts)


def _values(h: Handoff, style: _Style) -> dict[str, str]:
    app = _DEFAULT_APP_NAME[h.language] if h.vendor_app == DEFAULT_VENDOR_APP else h.vendor_app
    values = {key: style.label(label) for key, label in _UI_LABELS.items()}
    values.update(
        app=style.value(app),
        customer=style.value(h.customer_name),
        kvk=style.code(normalize_kvk(h.kvk) or h.kvk.strip()),
        code=style.code(h.code.strip()),
    )
    return values


def _scope_list(h: Handoff, style: _Style, shown: int) -> str:
    lines = [style.bullet + style.code(scope) for scope in h.scopes[:shown]]
    hidden = len(h.scopes) - shown
    if hidden:
        lines.append(style.bullet + _MORE[h.language].format(n=hidden))
    return "\n".join(lines)
