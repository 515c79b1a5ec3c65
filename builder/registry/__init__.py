"""Registry side: image references (pure) and the distribution-API client.

``reference`` parses names; ``config`` holds pybuild's registry settings (insecure registries,
mirrors); ``auth`` parses challenges and caches tokens; ``credentials`` reads and writes Docker's
``config.json``; ``client`` speaks HTTP; ``remote`` pulls into and pushes from the store;
``progress`` carries per-layer events. Import submodules directly
(``builder.registry.reference``): this package imports nothing, so pure users of references never
load HTTP code.
"""
