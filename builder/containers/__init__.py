"""Containers that outlive the command that starts them: ``run -d``, ``ps``, ``exec``,
``logs``, ``stop``/``start``, ``rm``, supervised by conmon (see :mod:`.lifecycle`)."""
