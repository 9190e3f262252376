"""Journeyman: a synthetic user-journey monitoring agent."""

__version__ = "0.1.0"
