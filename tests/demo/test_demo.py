"""``brincr-bot demo``: the scripted tour as a subprocess, the interactive mode through a
pseudo-terminal, and the demo's world in-process (its Slack server, printer and signed
requests) for what a subprocess cannot show: the logs."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import select as io_select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot.demo.cli import handle_line
from bot.demo.printer import Clickable, Printer
from bot.demo.slack import Delivery
from bot.demo.tour import Tour, is_revocation_alert
from bot.demo.user import RequestRefused, SlackUser
from bot.demo.world import ALERTS, CHANNELS, INVITED, Demo
from bot.slack.ids import Action
from storage.models import Customer

DEMO = [sys.executable, "-c", "from bot.cli import main; main()", "demo"]
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}


def test_the_tour_shows_status_list_handoff_and_an_acknowledged_alert() -> None:
    done = subprocess.run(
        [*DEMO, "--tour"], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=90
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "brincr-bot demo: the whole bot offline" in out
    assert "> /brincr status 12345678" in out
    assert "Bouwbedrijf De Vries B.V. · KvK 12345678" in out
    assert "healthy since" in out
    for scope in ("brincr:category", "brincr:country", "brincr:order"):
        assert f"✅ `{scope}`" in out
    assert "All customers (6 of 6)" in out
    assert "healthy 4 · 🟠 scopes_missing 1" in out
    assert "Installatiebedrijf Bakker & Zn. (KvK" in out  # escaped for Slack, readable here
    assert "❌ `brincr:order` missing" in out
    assert "> /brincr rollout" in out and "production customers switched it ON" in out
    assert "Dakdekkers Smit (KvK 67890123, production)" in out  # not switched ON: no alert
    assert "Brincr connection scopes missing: Dakdekkers Smit" not in out
    assert "── #support ──" in out and "Invitation: Timmerfabriek Noord" in out
    assert "only visible to you · replaces the message above" in out
    assert "Brincr connection scopes missing: Schildersbedrijf Visser" in out
    assert "Missing scopes: `brincr:category`" in out
    assert "── #alerts · updated ──" in out
    assert "Open, acknowledged by @U0DEMO" in out
    assert "── #alerts › thread ──" in out
    assert "Traceback" not in done.stderr


def _read_until(master: int, buffer: bytearray, marker: bytes, deadline: float) -> bool:
    """Read the pty into ``buffer`` until ``marker`` appears after the start, or the deadline
    (or the other side closed: False)."""
    while marker not in buffer:
        if time.monotonic() > deadline:
            return False
        ready, _, _ = io_select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every slave fd is closed, the process is gone
                return False
            if not chunk:
                return False
            buffer.extend(chunk)
    return True


def test_typed_commands_answer_in_the_terminal_and_ctrl_d_quits_cleanly() -> None:
    master, slave = os.openpty()
    process = subprocess.Popen(DEMO, cwd=ROOT, env=ENV, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    deadline = time.monotonic() + 30
    seen = bytearray()
    try:
        assert _read_until(master, seen, b"Ready. Try", deadline), seen.decode()
        assert _read_until(master, seen, b"slack> ", deadline), seen.decode()  # readline's
        os.write(master, b"/brincr status 12345678\n")
        assert _read_until(master, seen, b"healthy since", deadline), seen.decode()
        answered = len(seen)
        while b"slack> " not in seen[answered:]:  # the prompt is back under the answer
            assert _read_until(master, seen, b"\x00never", time.monotonic() + 0.2) is False
            assert time.monotonic() < deadline, seen.decode()
        os.write(master, b"\x1b[A\n")  # ↑ recalls the last line (readline's history)
        assert _read_until(master, seen, b"\x00never", time.monotonic() + 3) is False
        assert seen.count(b"healthy since") == 2 and b"^[[A" not in seen, seen.decode()
        while seen.count(b"slack> ") < 3:  # waiting for the third line (alerts may follow)
            assert _read_until(master, seen, b"\x00never", time.monotonic() + 0.2) is False
            assert time.monotonic() < deadline, seen.decode()
        os.write(master, b"\x04")  # Ctrl-D on an empty line: end of input
        _read_until(master, seen, b"\x00never", deadline)  # drain until the process is gone
        assert process.wait(timeout=max(1.0, deadline - time.monotonic())) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    text = seen.decode("utf-8", "replace")
    assert "Bouwbedrijf De Vries B.V. · KvK 12345678" in text
    assert "Stopping the demo" in text
    assert "Traceback" not in text


def test_sigint_stops_the_demo_cleanly() -> None:
    process = subprocess.Popen(
        DEMO, cwd=ROOT, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    seen = bytearray()
    while b"Ctrl-D, Ctrl-C or quit" not in seen and time.monotonic() < deadline:
        seen.extend(process.stdout.readline())
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err.decode()
    assert b"Stopping the demo" in out
    assert b"Traceback" not in err


# --- in-process ---------------------------------------------------------------------------


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    world = Demo(Printer(CHANNELS, io.StringIO()), check_interval="1s", revoke_after=0.3)
    await world.start()
    yield world
    await world.stop()


def output(demo: Demo) -> str:
    out = demo.printer.out
    assert isinstance(out, io.StringIO)
    return out.getvalue()


async def test_the_tour_never_logs_the_invitation_code(
    demo: Demo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await demo.seed()
    await demo.settle()
    await Tour(demo).run_all()
    assert INVITED.code in output(demo)  # the hand-off shows it: that is its job
    assert caplog.records
    assert INVITED.code not in caplog.text
    alert = next(d for d in demo.slack.deliveries if is_revocation_alert(d))
    assert any(d.where == "update" and d.ts == alert.ts for d in demo.slack.deliveries)


async def test_stopping_deletes_the_temporary_database(demo: Demo) -> None:
    url = demo.runtime.settings.database_url
    database = Path(url.removeprefix("sqlite:///"))
    assert await asyncio.to_thread(database.exists)
    await demo.stop()
    assert not await asyncio.to_thread(database.parent.exists)


async def test_an_unsigned_request_is_refused_like_in_serve(demo: Demo) -> None:
    port = demo.runtime.port
    stranger = SlackUser(
        f"http://127.0.0.1:{port}", "not-the-secret", demo.slack, user_id="U0X", channel_id="C0X"
    )
    try:
        with pytest.raises(RequestRefused, match="401"):
            await stranger.command("list")
    finally:
        await stranger.aclose()
    assert not [d for d in demo.slack.deliveries if d.where == "response"]


async def count_customers(demo: Demo) -> int:
    async with demo.runtime.bot.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Customer)) or 0)


async def test_bad_input_gets_an_answer_and_stores_nothing(demo: Demo) -> None:
    tour = Tour(demo)
    replies = await demo.command("status 99999999")
    assert len(replies) == 1 and replies[0].ephemeral
    await handle_line(demo, tour, "/brincr invite 1234 x")
    await handle_line(demo, tour, "click 99")
    await handle_line(demo, tour, "/deploy now")
    text = output(demo)
    assert "99999999" in text
    assert "There is no button 99" in text
    assert "Only /brincr exists here" in text
    assert text.count("── only visible to you ──") == 2
    assert tour.done == 0
    assert await count_customers(demo) == 0


async def test_click_presses_a_numbered_button_and_shows_what_follows(demo: Demo) -> None:
    await demo.seed()
    await demo.settle()
    ack = next(
        b for b in demo.printer.buttons.values()
        if b.action_id == Action.ACKNOWLEDGE and b.delivery.channel == ALERTS
    )  # fmt: skip
    await handle_line(demo, Tour(demo), f"click {ack.number}")
    text = output(demo)
    assert "── #alerts · updated ──" in text
    assert "Open, acknowledged by @U0DEMO" in text
    assert "no answer" not in text


def test_buttons_are_numbered_for_the_whole_session_and_link_buttons_are_not() -> None:
    printer = Printer(CHANNELS, io.StringIO())
    blocks = [
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Acknowledge"},
             "action_id": Action.ACKNOWLEDGE.value, "value": "7"},
            {"type": "button", "text": {"type": "plain_text", "text": "Docs"},
             "url": "https://example.com", "action_id": "link"},
        ]},
        {"type": "section", "text": {"type": "mrkdwn", "text": "x"}, "accessory":
            {"type": "button", "text": {"type": "plain_text", "text": "Check now"},
             "action_id": Action.CHECK_NOW.value, "value": "12345678"}},
    ]  # fmt: skip
    alert = Delivery("post", "C0ALERTS", "1.000001", {"text": "alert", "blocks": blocks})
    printer.show(alert)
    printer.show(Delivery("update", "C0ALERTS", "1.000001", {"text": "alert", "blocks": blocks}))
    out = printer.out
    assert isinstance(out, io.StringIO)
    text = out.getvalue()
    assert "── #alerts ──" in text and "── #alerts · updated ──" in text
    assert "[ 1: Acknowledge ]" in text and "[ 2: Check now ]" in text
    assert "[ 3: Acknowledge ]" in text and "[ Docs ]" in text
    assert printer.buttons[3].value == "7" and printer.buttons[4].action_id == Action.CHECK_NOW
    assert alert.payload["blocks"][0]["elements"][0]["text"]["text"] == "Acknowledge"


def test_replies_say_who_sees_them() -> None:
    printer = Printer(CHANNELS, io.StringIO())
    assert printer.heading(Delivery("reply", "C0ALERTS", "2.1", {})) == "#alerts › thread"
    assert printer.heading(Delivery("post", "DU0DEMO", "2.2", {})) == "direct message"
    shared = Delivery("response", "", "2.3", {"response_type": "in_channel"}, key="k")
    assert printer.heading(shared) == "shared in the channel"
    mine = Delivery("response", "", "2.4", {"response_type": "ephemeral"}, key="k")
    assert printer.heading(mine) == "only visible to you"


async def test_the_demo_prints_the_pagerduty_events_the_bot_sends(demo: Demo) -> None:
    await demo.seed()
    await demo.settle()
    await Tour(demo).run_all()
    for _ in range(300):
        if "acknowledge" in demo.pagerduty.actions():
            break
        await asyncio.sleep(0.02)
    text = output(demo)
    assert "(PagerDuty receives trigger: Brincr connection scopes_missing:" in text
    assert "(PagerDuty receives acknowledge)" in text
    assert "Installatiebedrijf Bakker" not in "".join(
        str(e.get("payload")) for e in demo.pagerduty.events
    )  # sandbox pages nobody


async def test_invite_without_arguments_shows_the_form_at_once(demo: Demo) -> None:
    started = time.monotonic()
    replies = await demo.command("invite")
    took = time.monotonic() - started
    assert [d.where for d in replies] == ["modal"]
    assert took < 3, f"the demo waited {took:.1f} s for a reply a modal never sends"
    assert "a form opens" in output(demo)


async def seeded_snooze_options(demo: Demo) -> list[Clickable]:
    """The demo seeded and settled; the Snooze menu's options on the alerts in #alerts."""
    await demo.seed()
    await demo.settle()
    return [
        b for b in demo.printer.buttons.values()
        if b.action_id == Action.SNOOZE and b.delivery.channel == ALERTS
    ]  # fmt: skip


async def test_an_option_of_the_snooze_menu_can_be_chosen(demo: Demo) -> None:
    options = await seeded_snooze_options(demo)
    assert options and all(b.menu for b in options)
    text = output(demo)
    assert f"{options[0].number}: {options[0].label}" in text  # numbered inside the menu
    await handle_line(demo, Tour(demo), f"click {options[0].number}")
    text = output(demo)
    assert "── #alerts · updated ──" in text and "snoozed until" in text.lower()
    assert "no answer" not in text


async def test_ready_waits_until_every_seeded_customer_was_checked(demo: Demo) -> None:
    """ "Ready. Try /brincr status 12345678" promises an answer with a check in it: the
    start-up waits for every first check, not only for the first alert (a scope missing at
    the token request needs no probe, so it alerts before the healthy checks' probes end)."""
    demo.sim.fault("production", "api", None, latency=1.0)  # every probe slow, none failing
    await demo.seed()
    await demo.settle()
    async with demo.runtime.bot.db.transaction() as session:
        pending = await session.scalars(select(Customer.kvk).where(Customer.state == "pending"))
        assert list(pending) == []
    await demo.command("status 12345678")
    assert "healthy since" in output(demo)


async def test_a_click_waits_for_what_it_causes_not_for_the_first_message_after_it(
    demo: Demo,
) -> None:
    """Another alert posted just after a press must not end the wait for the press's own
    result: the snooze's update of the pressed alert still shows before the prompt."""
    options = await seeded_snooze_options(demo)
    alert = options[0].delivery
    demo.slack.fail("chat.update", status=429, retry_after=1, times=1)  # the update: 1 s late
    updates = len(demo.slack.calls_to("chat.update"))
    press = asyncio.create_task(demo.click(options[0]))
    await demo.slack.wait_for("chat.update", count=updates + 1)  # refused: retried in 1 s
    async with httpx.AsyncClient() as slack:  # another message, just after the press
        posted = await slack.post(
            demo.slack.api_url + "chat.postMessage",
            headers={"Authorization": "Bearer xoxb-elsewhere"},
            data={"channel": ALERTS, "text": "Someone else's message"},
        )
        assert posted.json()["ok"]
    replies = await press
    assert any(d.where == "update" and d.ts == alert.ts for d in replies), replies
