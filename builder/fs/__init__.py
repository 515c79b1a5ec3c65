"""The one in-root filesystem mechanism: fd-based walks (``root``), Go path strings
(``paths``) and passwd/group files (``passwd``). A leaf package: it imports nothing of
pybuild but ``builder.errors``."""
