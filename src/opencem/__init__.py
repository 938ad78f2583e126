"""OpenCEM: open customer experience management and network NPS for mobile operators."""

__version__ = "0.1.0"
