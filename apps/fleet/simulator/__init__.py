"""A simulated scraper fleet for demos, fault tests and soak runs (``manage.py
simulate_fleet``, ``make demo``): real loopback sites and proxies, scrapers that use
coreadmin_client for everything, and a reconciliation of what they wrote. It talks to the
server over HTTP only, like a real fleet; nothing here imports the server's apps."""

from .run import Report, simulate
from .scraper import Plan

__all__ = ["Plan", "Report", "simulate"]
