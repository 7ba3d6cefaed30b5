"""Chat platform adapters: one sub-package per platform, plus the console adapter."""
