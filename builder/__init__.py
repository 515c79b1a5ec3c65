"""pybuild: a daemonless Dockerfile build engine.

Public API only; the implementation lives in the subpackages.
"""

from builder.errors import BuildError, Diagnostic, DockerfileError, Span

__all__ = ["BuildError", "Diagnostic", "DockerfileError", "Span"]
__version__ = "0.1.0"
