"""Registry side: the distribution-API client.

``config`` holds pybuild's registry settings (insecure registries, mirrors); ``auth`` parses
challenges and caches tokens; ``credentials`` reads and writes Docker's ``config.json``; ``client``
speaks HTTP; ``remote`` pulls into and pushes from the store; ``progress`` carries per-layer
events. Image references are parsed by the leaf module ``builder.reference``. Import submodules
directly: this package imports nothing.
"""
