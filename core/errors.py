"""Errors a provider raises and the platform understands."""


class MarqueeError(Exception):
    """Base of every error Marquee reports in words rather than a traceback."""


class ConfigError(MarqueeError):
    """The configuration (env vars, installed plugins) cannot work; the process must not start."""


class ProviderError(MarqueeError):
    """A fetch failed. Subclasses say whether trying again can help."""


class TransientError(ProviderError):
    """Trying again later may succeed: timeouts, connection errors, 5xx, 429."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ProviderError):
    """Trying again will not help until someone changes something: other 4xx, bad configuration."""


class FeedError(PermanentError):
    """The document cannot be read as a feed at all (not well-formed, wrong root, too large)."""
