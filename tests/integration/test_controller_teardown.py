"""``delete_network`` runs every cleanup and reports every failure, as one error, and still
forgets the network: a third-party driver and IPAM that fail on the way out."""

from __future__ import annotations

import pytest

from netcore import DriverInfo, KernelError, Network, hookimpl
from netcore.errors import TeardownIncomplete

pytestmark = pytest.mark.root


class BrittleDriver:
    """Creates nothing; refuses to delete."""

    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name="brittle", addressing=True)

    @hookimpl
    def create_network(self, network: Network) -> None:
        return None

    @hookimpl
    def delete_network(self, network: Network) -> None:
        raise KernelError("delete network", network.name, "device busy")


class BrittleIpam:
    """The default IPAM for everything but giving a pool back."""

    def __init__(self, default) -> None:
        self.default = default
        self.released: list[str] = []

    @hookimpl
    def request_pool(self, network_id, subnet, ip_range, options):
        return self.default.request_pool(network_id=network_id, subnet=subnet, ip_range=ip_range, options=options)

    @hookimpl
    def request_address(self, pool_id, address, options):
        return self.default.request_address(pool_id=pool_id, address=address, options=options)

    @hookimpl
    def release_address(self, pool_id, address):
        return self.default.release_address(pool_id=pool_id, address=address)

    @hookimpl
    def release_pool(self, pool_id):
        self.released.append(pool_id)
        raise KernelError("release pool", pool_id, "store away")


def test_delete_network_reports_every_failure_once_and_forgets_the_network(controller, unique):
    controller.hooks.pm.register(BrittleDriver(), name="brittle")
    ipam = BrittleIpam(controller.hooks.pm.get_plugin("default"))  # the plugin itself, not a relay
    controller.hooks.pm.register(ipam, name="brittle-ipam")
    net = controller.create_network(f"bt{unique}", "brittle", ipam_driver="brittle-ipam", subnet=unique.subnet())
    with pytest.raises(TeardownIncomplete) as exc:
        controller.delete_network(net.name)
    assert len(exc.value.errors) == 2
    message = str(exc.value)
    assert "device busy" in message and "store away" in message and "\n" not in message
    assert ipam.released == [net.pool_id]  # the IPAM was asked although the driver had failed
    assert net.name not in [n.name for n in controller.networks()]
    # the pool is still held by the default IPAM (its release failed): say so, don't leak it silently
    controller.hooks.ipam("default").release_pool(pool_id=net.pool_id)
