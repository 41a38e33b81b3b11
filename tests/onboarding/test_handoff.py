from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from bot.domain import Environment
from bot.onboarding.handoff import Handoff, Language, customer_mrkdwn, customer_text, escape_mrkdwn

SCOPES = ("brincr:country", "brincr:category", "brincr:salesOrder")

# Key phrases per language for each step of docs/domain.md (Onboarding flow), in the order the
# customer does them.
STEP_PHRASES: dict[Language, tuple[str, ...]] = {
    "nl": (
        "Log in op de",
        "Visma Developer Portal",
        "Visma App Store",
        "organisatie",
        "KvK-nummer",
        "My apps",
        "Use invitation code",
        "uitnodigingscode",
        "Find",
        "ON",
        "Scroll naar beneden",
        "Integrate",
        "op elk moment weer intrekken",
    ),
    "en": (
        "Log in to the",
        "Visma Developer Portal",
        "Visma App Store",
        "organisation",
        "KvK (Chamber of Commerce) number",
        "My apps",
        "Use invitation code",
        "invitation code",
        "Find",
        "ON",
        "Scroll down",
        "Integrate",
        "revoke these permissions at any time",
    ),
}
COMBINATIONS = list(itertools.product(("nl", "en"), Environment))


def make(language: Language, environment: Environment, **changes: object) -> Handoff:
    fields: dict[str, object] = {
        "customer_name": "Bakkerij De Zon B.V.",
        "kvk": "1234 5678",
        "environment": environment,
        "code": "INV-7Q2X",
        "language": language,
        "scopes": SCOPES,
    }
    fields.update(changes)
    return Handoff(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("language", "environment"), COMBINATIONS)
@pytest.mark.parametrize("render", [customer_text, customer_mrkdwn])
def test_every_onboarding_step_appears_in_order(
    language: Language, environment: Environment, render: Callable[[Handoff], str]
) -> None:
    text = render(make(language, environment))
    position = 0
    for phrase in STEP_PHRASES[language]:
        found = text.find(phrase, position)
        assert found >= 0, f"{phrase!r} missing or out of order"
        position = found
    for value in ("12345678", "INV-7Q2X", "Bakkerij De Zon B.V.", *SCOPES):
        assert value in text


@pytest.mark.parametrize(("language", "environment"), COMBINATIONS)
def test_the_kvk_number_is_shown_as_eight_digits(
    language: Language, environment: Environment
) -> None:
    text = customer_text(make(language, environment, kvk="12.34.56.78"))
    assert "12345678" in text
    assert "12.34.56.78" not in text


def test_production_asks_the_customer_politely_and_to_discuss_switching_a_scope_off() -> None:
    nl = customer_text(make("nl", Environment.PRODUCTION))
    en = customer_text(make("en", Environment.PRODUCTION))
    assert " u " in nl and " je " not in nl and " jou" not in nl
    assert "overleg dat dan eerst met ons" in nl
    assert "discuss this with us first" in en


@pytest.mark.parametrize("language", ["nl", "en"])
def test_sandbox_is_addressed_to_the_developer_and_says_approval_is_automatic(
    language: Language,
) -> None:
    text = customer_text(make(language, Environment.SANDBOX))
    assert ("je sandbox-organisatie" if language == "nl" else "your sandbox organisation") in text
    assert ("automatisch" if language == "nl" else "automatic") in text


@pytest.mark.parametrize(
    ("language", "environment", "greeting"),
    [
        ("nl", Environment.PRODUCTION, "Beste Jan de Vries,"),
        ("en", Environment.PRODUCTION, "Dear Jan de Vries,"),
        ("nl", Environment.SANDBOX, "Hoi Jan de Vries,"),
        ("en", Environment.SANDBOX, "Hi Jan de Vries,"),
    ],
)
def test_the_greeting_names_the_contact(
    language: Language, environment: Environment, greeting: str
) -> None:
    handoff = make(language, environment, contact="Jan de Vries")
    assert customer_text(handoff).startswith(greeting)
    assert customer_mrkdwn(handoff).startswith(greeting)
    assert "Jan de Vries" not in customer_text(make(language, environment))


def test_the_default_app_name_is_translated_and_a_vendor_app_name_is_used() -> None:
    assert "onze koppeling" in customer_text(make("nl", Environment.PRODUCTION))
    assert "our integration" in customer_text(make("en", Environment.PRODUCTION))
    named = make("nl", Environment.PRODUCTION, vendor_app="Acme Sync")
    assert "Acme Sync" in customer_text(named)
    assert "our integration" not in customer_text(named)


def test_escape_mrkdwn_escapes_ampersand_first() -> None:
    assert escape_mrkdwn("<!channel> & <@U123>") == "&lt;!channel&gt; &amp; &lt;@U123&gt;"
    assert escape_mrkdwn("&lt;") == "&amp;lt;"


@pytest.mark.parametrize(("language", "environment"), COMBINATIONS)
def test_user_supplied_values_are_escaped_in_mrkdwn(
    language: Language, environment: Environment
) -> None:
    handoff = make(
        language, environment, customer_name="<!channel> Smit & Zn", contact="<!here> Piet"
    )
    mrkdwn = customer_mrkdwn(handoff)
    assert "&lt;!channel&gt; Smit &amp; Zn" in mrkdwn
    assert "&lt;!here&gt; Piet" in mrkdwn
    assert "<!" not in mrkdwn
    assert "<!channel> Smit & Zn" in customer_text(handoff)  # e-mail text is not escaped


@pytest.mark.parametrize(("language", "environment"), COMBINATIONS)
def test_mrkdwn_marks_ui_labels_bold_and_the_code_as_code(
    language: Language, environment: Environment
) -> None:
    mrkdwn = customer_mrkdwn(make(language, environment))
    for label in ("Visma App Store", "My apps", "Use invitation code", "Find", "ON", "Integrate"):
        assert f"*{label}*" in mrkdwn
    assert "`INV-7Q2X`" in mrkdwn
    assert "`brincr:category`" in mrkdwn
    assert "\n1. " in mrkdwn and "\n6. " in mrkdwn


@pytest.mark.parametrize(("language", "environment"), COMBINATIONS)
def test_plain_text_has_no_mrkdwn_markup(language: Language, environment: Environment) -> None:
    text = customer_text(make(language, environment, contact="Jan"))
    assert "*" not in text
    assert "`" not in text
    assert "&amp;" not in text


@pytest.mark.parametrize(("language", "environment"), COMBINATIONS)
def test_many_scopes_and_a_long_name_stay_within_the_slack_section_limit(
    language: Language, environment: Environment
) -> None:
    scopes = tuple(f"brincr:someLongerScopeName{i:02}" for i in range(30))
    handoff = make(
        language,
        environment,
        scopes=scopes,
        customer_name="<&>" * 66 + "xy",  # 200 characters, 3x longer once escaped
        contact="C" * 100,
        vendor_app="V" * 60,
    )
    mrkdwn = customer_mrkdwn(handoff)
    assert len(mrkdwn) <= 3000
    text = customer_text(handoff)
    assert all(scope in text for scope in scopes)  # the e-mail keeps every scope
    shown = [scope for scope in scopes if f"`{scope}`" in mrkdwn]
    assert shown == list(scopes[: len(shown)])
    hidden = len(scopes) - len(shown)
    assert hidden > 0
    more = f"… en nog {hidden} andere" if language == "nl" else f"… and {hidden} more"
    assert more in mrkdwn


@pytest.mark.parametrize(("language", "environment"), COMBINATIONS)
def test_thirty_ordinary_scopes_are_all_listed_in_mrkdwn(
    language: Language, environment: Environment
) -> None:
    scopes = tuple(f"brincr:scope{i}" for i in range(30))
    handoff = make(language, environment, scopes=scopes, customer_name="N" * 200)
    mrkdwn = customer_mrkdwn(handoff)
    assert len(mrkdwn) < 3000
    assert all(f"`{scope}`" in mrkdwn for scope in scopes)
