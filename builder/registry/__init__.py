"""Registry side: image references (pure) and, later, the distribution-API client.

Import submodules directly (``builder.registry.reference``); this package imports nothing so
that pure users of references never load HTTP code.
"""
