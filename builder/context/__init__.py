"""Build contexts and source trees for COPY/ADD: ``.dockerignore``, in-root reads, checksums."""

from builder.context.base import DirectorySource, FileSource, SourceFS
from builder.context.checksum import ContentCache
from builder.context.ignore import PatternMatcher
from builder.context.local import LocalContext

__all__ = [
    "ContentCache",
    "DirectorySource",
    "FileSource",
    "LocalContext",
    "PatternMatcher",
    "SourceFS",
]
