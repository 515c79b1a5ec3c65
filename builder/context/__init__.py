"""Build contexts and source trees for COPY/ADD: ``.dockerignore``, in-root reads, checksums."""

from builder.context.checksum import ContentCache
from builder.context.ignore import PatternMatcher
from builder.context.local import LocalContext
from builder.context.sourcefs import DirectorySource, FileSource, SourceFS

__all__ = [
    "ContentCache",
    "DirectorySource",
    "FileSource",
    "LocalContext",
    "PatternMatcher",
    "SourceFS",
]
