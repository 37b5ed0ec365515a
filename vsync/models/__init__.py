"""The data model: one module per aggregate. Importing this package registers every table."""

from vsync.models.billing import (
    BillingLock,
    BillingSettings,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Payment,
    Plan,
    Subscription,
)
from vsync.models.integrations import Agent, Integration, ProviderAccount
from vsync.models.keys import ApiKey
from vsync.models.notifications import (
    AlertEvent,
    AlertRule,
    AlertWebhook,
    AlertWebhookDelivery,
    BusinessHours,
    NotificationPreference,
    OutboundEmail,
    PlatformNotificationPreference,
)
from vsync.models.numbers import NumberAssignment, PhoneNumber
from vsync.models.operations import AuditEvent, SyncRun, WebhookEvent
from vsync.models.orgs import Membership, Organization, User
from vsync.models.rollups import CallRollup, RollupDirty
from vsync.models.sessions import UserSession
from vsync.models.support import NumberRequest, Ticket, TicketMessage
from vsync.models.traffic import Call, CallEvent, Recording, SmsMessage

__all__ = [
    "Agent",
    "AlertEvent",
    "AlertRule",
    "AlertWebhook",
    "AlertWebhookDelivery",
    "ApiKey",
    "AuditEvent",
    "BillingLock",
    "BillingSettings",
    "BusinessHours",
    "Call",
    "CallEvent",
    "CallRollup",
    "Integration",
    "Invoice",
    "InvoiceCounter",
    "InvoiceLine",
    "Membership",
    "NotificationPreference",
    "NumberAssignment",
    "NumberRequest",
    "Organization",
    "OutboundEmail",
    "PlatformNotificationPreference",
    "Payment",
    "PhoneNumber",
    "Plan",
    "ProviderAccount",
    "Recording",
    "RollupDirty",
    "SmsMessage",
    "Subscription",
    "SyncRun",
    "Ticket",
    "TicketMessage",
    "User",
    "UserSession",
    "WebhookEvent",
]
