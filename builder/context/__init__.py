"""Build contexts and source trees for COPY/ADD: ``.dockerignore``, in-root reads, checksums.

The package imports none of its modules: ``.dockerignore`` matching (``ignore``) is needed by
commands that never read a context's files (``pybuild check``, the no-op check), and the
checksum cache (``checksum``) loads sqlite3.
"""
