"""The platform-agnostic heart of Popup: plans, the session engine, scheduling and the recap.

Nothing here imports a chat SDK or a database driver: adapters and the store plug in through
the protocols in :mod:`sessions.ports` and :mod:`sessions.store`.
"""
