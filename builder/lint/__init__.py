"""Build checks: BuildKit's Dockerfile lint rules, run on a parsed file without building it.

``rules`` is the rule table, ``config`` the ``# check=`` options, ``runner`` runs every rule
family (``parsing``, ...) over the syntax tree and the IR. What a rule needs from outside the
file (the context's ``.dockerignore``, base images in the store) is handed in as
:class:`~builder.lint.runner.LintInputs`; this package imports neither the context nor the store.
"""
