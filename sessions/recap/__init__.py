"""The recap at the day's end: the story of the session as a message, plus its artifacts.

``build_recap`` is what the engine calls at day end; ``exports`` serves ``popup export`` and the
demo's artifacts folder.
"""

from sessions.recap.summary import Recap, build_recap

__all__ = ["Recap", "build_recap"]
