"""``flux.abc``: abstract bases (journal consumers)."""

from flux.abc.journal import JournalConsumerBase, JournalEventBase

__all__ = ["JournalConsumerBase", "JournalEventBase"]
