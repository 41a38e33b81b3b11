from __future__ import annotations

from datetime import UTC, datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.demo.terminal import mrkdwn_to_text, render_payload


def test_slack_tokens_become_readable_text() -> None:
    text = "Since <!date^1700000000^{date_short}|14 Nov 2023> by <@U123> &lt;!channel&gt; &amp; co"
    local = datetime.fromtimestamp(1700000000, UTC).astimezone().strftime("%d %b %Y %H:%M %Z")
    assert mrkdwn_to_text(text) == f"Since {local} by @U123 <!channel> & co"
    assert mrkdwn_to_text("<https://x.test|the docs>") == "the docs (https://x.test)"


def test_blocks_render_as_lines_a_person_reads() -> None:
    blocks = [
        HeaderBlock(text="Bouwbedrijf De Vries"),
        SectionBlock(text="*State* healthy", fields=[MarkdownTextObject(text="KvK 12345678")]),
        DividerBlock(),
        ContextBlock(elements=[MarkdownTextObject(text="checked 2 minutes ago")]),
        ActionsBlock(elements=[ButtonElement(text="Check now", action_id="check_now")]),
    ]
    out = render_payload({"text": "fallback", "blocks": [b.to_dict() for b in blocks]})
    assert "Bouwbedrijf De Vries" in out and "═" in out
    assert "State healthy" in out and "*State*" not in out and "KvK 12345678" in out
    assert "[ Check now ]" in out and "checked 2 minutes ago" in out
    assert "fallback" not in out


def test_a_message_without_blocks_shows_its_text() -> None:
    assert render_payload({"text": "hello &amp; welcome"}).strip() == "hello & welcome"
