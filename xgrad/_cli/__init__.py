"""The ``xgrad`` command."""
