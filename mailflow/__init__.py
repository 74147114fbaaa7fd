"""mailflow: an email-driven helpdesk."""

__version__ = "0.1.0"
