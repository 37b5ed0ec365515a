"""Billing: usage per org per local calendar month, versioned plans and subscriptions, invoices and
credit notes with their documents, payments, and billing locks. See the README, "Billing"."""
