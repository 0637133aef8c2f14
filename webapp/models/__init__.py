"""All models; importing this module registers every table on `metadata`."""

from webapp.models.account import Account
from webapp.models.api import ApiKey, IdempotentRequest, TicketImport
from webapp.models.audit import AuditEvent
from webapp.models.base import Base, utcnow
from webapp.models.captcha import CaptchaUse
from webapp.models.customer import CustomerProfile, DeliveryEmail
from webapp.models.invoice import (
    AuthorityState,
    CancelRequest,
    CancelStatus,
    Invoice,
    InvoiceArchive,
    InvoiceStatus,
    invoice_ticket,
    new_public_id,
)
from webapp.models.issuer import Branch, Issuer
from webapp.models.kiosk import Kiosk
from webapp.models.mail import MailAttachment, MailMessage, MailStatus
from webapp.models.platform import (
    PaymentSlip,
    PlatformSettings,
    PrivacyAcceptance,
    PrivacyNotice,
    Product,
    ProductKind,
    SlipLine,
    SlipStatus,
    StampMovement,
    Subscription,
)
from webapp.models.services import (
    AccountStatus,
    BillingRun,
    BillKind,
    Charge,
    LineCode,
    LineHolder,
    LineKind,
    Payment,
    Plan,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    ServiceTerms,
    ServiceType,
    TermsAcceptance,
)
from webapp.models.signed_session import SignedSession
from webapp.models.sms import SmsMessage, SmsStatus
from webapp.models.staff import StaffMember, StaffRole
from webapp.models.ticket import Ticket, TicketLine, TicketStatus

metadata = Base.metadata

__all__ = [
    "AccountStatus",
    "BillingRun",
    "BillKind",
    "Charge",
    "LineCode",
    "LineHolder",
    "LineKind",
    "Payment",
    "PaymentSlip",
    "PlatformSettings",
    "PrivacyAcceptance",
    "PrivacyNotice",
    "Product",
    "ProductKind",
    "SlipLine",
    "SlipStatus",
    "StampMovement",
    "Subscription",
    "Plan",
    "ServiceAccount",
    "ServiceBill",
    "ServiceLine",
    "ServiceTerms",
    "ServiceType",
    "TermsAcceptance",
    "Account",
    "ApiKey",
    "CancelRequest",
    "AuthorityState",
    "CancelStatus",
    "IdempotentRequest",
    "SignedSession",
    "StaffMember",
    "StaffRole",
    "TicketImport",
    "AuditEvent",
    "Base",
    "Branch",
    "CaptchaUse",
    "CustomerProfile",
    "DeliveryEmail",
    "Invoice",
    "InvoiceArchive",
    "InvoiceStatus",
    "Issuer",
    "Kiosk",
    "MailAttachment",
    "MailMessage",
    "MailStatus",
    "SmsMessage",
    "SmsStatus",
    "Ticket",
    "TicketLine",
    "TicketStatus",
    "invoice_ticket",
    "new_public_id",
    "metadata",
    "utcnow",
]
