"""Emails of the domain events (notifications.md): which, to whom, rendered how, sent once."""
