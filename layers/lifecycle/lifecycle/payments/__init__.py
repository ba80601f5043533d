"""Payments: the port the use cases charge through, the Stripe adapter and an in-memory fake."""
