"""The core: what every layer may use — exceptions, settings, structured outputs, messages, resources."""

__version__ = "0.1.0"

