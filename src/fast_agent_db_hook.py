"""fast-agent-db's drop-in activation, loaded only when upstream's FastAgent is imported.

fast_agent_db.pth puts a small finder on sys.meta_path at interpreter start (defined inline in
the .pth line, so start-up searches for no module). Nothing else happens until a program
imports `mcp_agent.core.fastagent`; then this module wraps that import so that, if a database
is configured (FAST_AGENT_DATABASE_URL, or `database: {url: ...}` in fastagent.config.yaml),
the module's `FastAgent` is replaced by fast-agent-db's database-backed subclass before the
importing code binds the name. With no database configured, upstream is left as it is.
"""

from importlib.util import find_spec


class _ActivatingLoader:
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        from mcp_agent.db.activation import activate

        activate(module)


def activating_spec(name):
    """The real module spec of `name`, whose loader activates fast-agent-db after loading."""
    spec = find_spec(name)
    if spec is not None and spec.loader is not None:
        spec.loader = _ActivatingLoader(spec.loader)
    return spec
