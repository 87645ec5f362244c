"""netcore: a pluggable container-network framework (the Container Network Model).

Driver authors import everything they need from here: the ``hookimpl`` marker,
the model types, the errors and ``Step``.
"""

from netcore import names
from netcore.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidConfig,
    KernelError,
    NetcoreError,
    NotFound,
    PluginError,
    TeardownIncomplete,
)
from netcore.hookspecs import hookimpl
from netcore.models import (
    GLOBAL,
    LOCAL,
    Attachment,
    DriverInfo,
    Endpoint,
    EngineContext,
    InterfaceInfo,
    JoinInfo,
    Network,
    Pool,
    PortBinding,
    Sandbox,
    StaticRoute,
)
from netcore.steps import Step, run_steps, undo_steps

__version__ = "0.1.0"

__all__ = [
    "hookimpl",
    "names",
    "Network",
    "Endpoint",
    "Sandbox",
    "Attachment",
    "InterfaceInfo",
    "JoinInfo",
    "StaticRoute",
    "DriverInfo",
    "Pool",
    "PortBinding",
    "EngineContext",
    "LOCAL",
    "GLOBAL",
    "Step",
    "run_steps",
    "undo_steps",
    "NetcoreError",
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "Forbidden",
    "InvalidConfig",
    "KernelError",
    "PluginError",
    "TeardownIncomplete",
]
