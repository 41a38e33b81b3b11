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
    RESEND = "brincr_resend_instructions"
    LINK_PICK = "brincr_link_pick"


class View(StrEnum):
    INVITE = "brincr_invite"
    LINK = "brincr_link"
