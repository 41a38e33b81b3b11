"""Tying a customer to its Visma tenant, by hand (``/brincr link``, the picker) or from a
"tenant application added/deleted" webhook delivery.

Linking sets the tenant, moves the customer to ``pending`` and checks it at once; the check
listeners (alerting, the onboarding hand-off) then see that check like any other. Handlers
and the webhook endpoint call these functions; they return domain data, never Block Kit
(the onboarding-channel question is rendered by ``bot.onboarding.render_link``).
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import outbox
from bot.checks.service import CheckService
from bot.core.clock import utcnow
from bot.core.errors import UpstreamError, UserError
from bot.domain import State, parse_kvk, parse_tenant_id
from bot.domain.visma_webhooks import Delivery
from bot.onboarding.render_link import render_tenant_question
from bot.onboarding.values import LinkCandidate, TenantApproval
from bot.services import Services
from bot.settings import Settings
from bot.slack.blocks import customer_label
from storage import audit
from storage.customers import (
    change_state,
    get_by_kvk,
    get_by_tenant,
    invited_without_tenant,
    unlinked,
)
from storage.models import Customer
from storage.reads import StatusData, status_data

log = logging.getLogger(__name__)
LINK_USAGE = (
    "`/brincr link <kvk> <tenant-id>`, e.g. "
    "`/brincr link 12345678 3fa85f64-5717-4562-b3fc-2c963f66afa6`"
)
WEBHOOK_USER = "visma-webhook"
MAX_CANDIDATES = 100  # a static_select holds at most 100 options


async def _customer_to_link(kvk: str, tenant: str, *, session: AsyncSession) -> Customer:
    customer = await get_by_kvk(kvk, session=session)
    if customer is None:
        raise UserError(
            f"No customer with KvK {kvk}: send an invitation first with `/brincr invite`",
            usage=LINK_USAGE,
        )
    holder = await get_by_tenant(tenant, session=session)
    if holder is not None and holder.id != customer.id:
        raise UserError(
            f"Tenant `{tenant}` is already linked to {customer_label(holder)}.",
            usage="a tenant belongs to one customer; check the tenant ID in the Developer Portal",
        )
    return customer


async def _set_tenant(
    customer: Customer, tenant: str, user_id: str, *, session: AsyncSession
) -> None:
    previous = customer.tenant_id
    customer.tenant_id = tenant
    # A new tenant starts afresh: scopes and failures on record were the old tenant's.
    customer.granted_scopes = customer.missing_scopes = ""
    customer.consecutive_failures = 0
    customer.next_check_at = utcnow()
    await change_state(customer, State.PENDING, session=session, reason=f"linked by {user_id}")
    audit.record(
        session,
        user_id=user_id,
        action="link",
        target=customer.kvk,
        detail=f"tenant {tenant}" + (f" (was {previous})" if previous else ""),
    )
    await session.flush()
    log.info("customer %s linked to tenant %s by %s", customer.kvk, tenant, user_id)


def environment_of(settings: Settings, application_id: str | None) -> str | None:
    """The environment whose client ID is ``application_id``; None when neither matches."""
    if not application_id:
        return None
    for env in settings.configured_environments():
        if env.client_id == application_id:
            return env.name.value
    return None


class Linking:
    """Linking customers to tenants, by hand or from webhook deliveries. Checks after a link
    go through ``checker``, so alerting and onboarding see them like any other check."""

    def __init__(self, services: Services, checker: CheckService) -> None:
        self.services = services
        self.checker = checker

    async def attach_tenant(self, *, kvk: str, tenant_id: str, user_id: str) -> Customer:
        """Set the customer's tenant and make it due for a check now (no check yet).

        Raises UserError for a bad KvK or tenant ID, an unknown customer, or a tenant that is
        linked to another customer. Linking the tenant a customer already has changes nothing.
        """
        number, tenant = parse_kvk(kvk), parse_tenant_id(tenant_id)
        try:
            async with self.services.db.transaction() as session:
                customer = await _customer_to_link(number, tenant, session=session)
                if customer.tenant_id != tenant:
                    await _set_tenant(customer, tenant, user_id, session=session)
        except IntegrityError:  # another replica or click linked this tenant a moment ago
            raise UserError(f"Tenant `{tenant}` was just linked to another customer.") from None
        return customer

    async def check_linked(self, customer_id: int) -> Customer:
        """Check a customer now (recorded, listeners included) and return it as it is after."""
        await self.checker.check_customer(customer_id)
        async with self.services.db.transaction() as session:
            customer = await session.get(Customer, customer_id)
        if customer is None:
            raise UserError("That customer was removed while it was being checked.")
        return customer

    async def link_tenant(self, *, kvk: str, tenant_id: str, user_id: str) -> Customer:
        """Link the tenant to the customer with KvK ``kvk`` and check it at once (UserError on
        bad input; see :func:`attach_tenant`). Returns the customer after the check."""
        customer = await self.attach_tenant(kvk=kvk, tenant_id=tenant_id, user_id=user_id)
        return await self.check_linked(customer.id)

    async def link_status(self, *, kvk: str, tenant_id: str, user_id: str) -> StatusData:
        """:func:`link_tenant`, then the customer's status (for the ``/brincr link`` reply)."""
        customer = await self.link_tenant(kvk=kvk, tenant_id=tenant_id, user_id=user_id)
        async with self.services.db.transaction() as session:
            return await status_data(customer, session=session, now=utcnow())

    async def unlinked_customers(self, environment: str | None) -> list[LinkCandidate]:
        """Customers without a tenant (in ``environment`` when known): newest open invitation
        first, then those never invited, newest first; at most 100."""
        async with self.services.db.transaction() as session:
            rows = await unlinked(environment, session=session, limit=MAX_CANDIDATES)
        return [LinkCandidate(c.kvk, c.name, c.environment, invited_at) for c, invited_at in rows]

    async def tenant_added(self, delivery: Delivery) -> str:
        """A customer approved the app, says a delivery (a hint, docs/domain.md, Visma
        webhooks): check the customer that has this tenant; else, only once a fresh token
        request shows the tenant grants our app a token, link the one customer with an open
        invitation or ask the onboarding channel. Returns the outcome word stored with the
        event; raises a transient UpstreamError when Visma's answer was inconclusive (tried
        again later)."""
        tenant = delivery.tenant_id
        if tenant is None:
            return "ignored: no tenant id"
        async with self.services.db.transaction() as session:
            known = await get_by_tenant(tenant, session=session)
        if known is not None:
            checked = await self._confirming_check(known.id)
            return f"checked {checked.kvk}: {checked.state}"
        env = environment_of(self.services.settings, delivery.application_id)
        if await self.checker.tenant_grants(tenant, env) is None:
            return "not linked: the tenant grants no token"
        invited = await self._invited_without_tenant(env)
        if len(invited) == 1:
            linked = await self.link_tenant(kvk=invited[0], tenant_id=tenant, user_id=WEBHOOK_USER)
            return f"linked to {linked.kvk}: {linked.state}"
        return await self._ask_onboarding_channel(TenantApproval(tenant, env), len(invited))

    async def _confirming_check(self, customer_id: int) -> Customer:
        """Check the customer now (recorded like any check); a transient answer raises, so
        the delivery is tried again later rather than judged on it."""
        outcome = await self.checker.check_customer(customer_id)
        if outcome.transient:
            raise UpstreamError(
                f"confirming check inconclusive: {outcome.error_code or outcome.state}",
                transient=True,
            )
        async with self.services.db.transaction() as session:
            customer = await session.get(Customer, customer_id)
        if customer is None:
            raise UserError("That customer was removed while it was being checked.")
        return customer

    async def _invited_without_tenant(self, environment: str | None) -> list[str]:
        """KvK numbers of customers with an open invitation and no tenant (two at most)."""
        async with self.services.db.transaction() as session:
            return await invited_without_tenant(environment, session=session, limit=2)

    async def _ask_onboarding_channel(self, approval: TenantApproval, found: int) -> str:
        channel = self.services.settings.onboarding_channel_id
        if channel is None:
            log.warning(
                "tenant %s approved the app; no onboarding channel to ask", approval.tenant_id
            )
            return f"unmatched ({found} candidates), no onboarding channel to ask"
        message = render_tenant_question(
            approval.tenant_id, approval.environment, approval.encode()
        )
        async with self.services.db.transaction() as session:
            await outbox.enqueue(
                session, kind="post", channel_id=channel, text=message.text,
                blocks=message.block_dicts(),
            )  # fmt: skip
        self.services.wake_outbox()
        return f"unmatched ({found} candidates): asked in {channel}"

    async def tenant_deleted(self, delivery: Delivery) -> str:
        """The app was removed from a tenant, says a delivery (a hint, docs/domain.md, Visma
        webhooks): a fresh check decides. A tenant that still grants a token has not removed the
        app; one that refuses it is revoked by that check, recorded like any other (alerting
        included)."""
        if delivery.tenant_id is None:
            return "ignored: no tenant id"
        async with self.services.db.transaction() as session:
            customer = await get_by_tenant(delivery.tenant_id, session=session)
        if customer is None:
            return "unknown tenant"
        checked = await self._confirming_check(customer.id)
        if checked.state == State.REVOKED:
            return f"revoked {checked.kvk}: confirmed by a token request"
        return f"not confirmed: the tenant still grants a token ({checked.kvk}: {checked.state})"
