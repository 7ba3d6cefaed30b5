"""The composition root: configuration, the ``popup`` command line, wiring, logging and shutdown."""
