"""netcore as a CNI plugin: the ``netcore-cni`` executable and the conflists that name it.

``plugin`` is the executable (exec'd once per operation by the runtime, so it imports
only the light API client); ``conflist`` builds the configuration that
``netcore network cni-config`` prints. The engine's half is ``runtime.engine.cni``.
"""
