"""The Discord adapter, on discord.py 2.x (application commands, threads, raw events).

Imports inside this package are absolute, so ``adapters.discord`` never shadows ``discord``.
"""
