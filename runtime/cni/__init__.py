"""netcore as a CNI plugin: the ``netcore-cni`` executable and the conflists that name it.

``netcore-cni.c`` is the executable (exec'd once per operation by the runtime, so a static
forwarder that starts in a millisecond); ``protocol`` is its logic, run by the engine
behind ``POST /cni/<command>``; ``conflist`` builds the configuration that ``netcore
network cni-config`` prints. The engine's attachments are ``runtime.engine.cni``.
"""
