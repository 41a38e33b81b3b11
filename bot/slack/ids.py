"""Every ``action_id`` and ``callback_id`` the bot's messages and views use, in one place."""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    CHECK_NOW = "brincr_check_now"
    SHARE = "brincr_share"
    LIST_PAGE = "brincr_list_page"
    FORGET_CONFIRM = "brincr_forget_confirm"
    FORGET_CANCEL = "brincr_forget_cancel"
    ACKNOWLEDGE = "brincr_incident_ack"
    SNOOZE = "brincr_incident_snooze"
    RECONNECT = "brincr_send_reconnect"
    RESOLVE = "brincr_incident_resolve"
    RESEND = "brincr_resend_instructions"
    HANDOFF_TEXT = "brincr_handoff_plain_text"  # the hand-off's "Plain text for e-mail"
    INVITE_FIELD = "brincr_invite_field"  # every input of the invite modal (block ids differ)
    LINK_PICK = "brincr_link_pick"
    LINK_CUSTOMER = "brincr_link_customer"  # the picker's customer select
    HISTORY = "brincr_history"  # the History button on `status` and on alerts (value: KvK)
    HISTORY_PAGE = "brincr_history_page"  # Older / Newer in `history`


class View(StrEnum):
    INVITE = "brincr_invite"
    LINK = "brincr_link"
