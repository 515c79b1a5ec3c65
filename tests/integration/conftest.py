"""Fixtures for the build-engine integration tests (root, runc and busybox-static required).

* ``store_root``: one image store per test session (per xdist worker) with ``busybox:latest``
  imported once by ``scripts/make-busybox.sh``; every build test shares it, so each test uses
  its own tags, contexts and (where the cache matters) its own file contents.
* ``pb``: an ``enginekit.Builder`` bound to that store and the test's ``tmp_path``.
* ``busybox_seed``: a store with only ``busybox:latest``, to copy (``copy_store``) for tests
  that need empty stores.

Both are defined in ``enginekit`` (shared with tests/adversarial) and imported here.
"""

from __future__ import annotations

from enginekit import busybox_history, busybox_seed, pb, store_root

__all__ = ["busybox_history", "busybox_seed", "pb", "store_root"]
