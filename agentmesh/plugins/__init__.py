"""Plug-ins bundled with agentmesh, each registered exactly as a user's own domain is (the ``plugins`` setting;
see ``agentmesh.runtime.plugins``): ``operations``, the sample operations world."""
