"""The OS layer: the only code in netcore that talks to the kernel.

Small verbs over netlink (pyroute2), nftables (libnftables), sysctl and network
namespaces. Drivers use these and nothing lower.
"""
