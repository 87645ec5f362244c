"""Reserved subnets through the controller: refused for every driver, link-local only for
a driver that declares it owns that range (``DriverInfo(link_local=True)``)."""

from __future__ import annotations

import pytest

from netcore import DriverInfo, InvalidConfig, Network, hookimpl
from netcore.controller import on_host

pytestmark = pytest.mark.root


class LinkLocalDriver:
    """A driver whose networks live in 169.254.0.0/16 on purpose (no kernel state)."""

    @hookimpl
    def driver_info(self) -> DriverInfo:
        return DriverInfo(name="linklocal", link_local=True)

    @hookimpl
    def create_network(self, network: Network) -> None:
        return None

    @hookimpl
    def delete_network(self, network: Network) -> None:
        return None


@pytest.fixture
def ctl(engine_root: str):
    c = on_host(engine_root, plugins=[("linklocal", LinkLocalDriver())])
    c.start()
    try:
        yield c
    finally:
        try:
            c.reset()
        finally:
            c.close()


def test_link_local_is_for_the_driver_that_owns_it(ctl, unique):
    with pytest.raises(InvalidConfig, match="169.254.0.0/16, which is reserved"):
        ctl.create_network(f"b{unique}", driver="bridge", subnet="169.254.10.0/24")
    net = ctl.create_network(f"l{unique}", driver="linklocal", subnet="169.254.10.0/24")
    assert net.subnet == "169.254.10.0/24" and net.gateway == "169.254.10.1"
    with pytest.raises(InvalidConfig, match="127.0.0.0/8, which is reserved"):  # other blocks stay refused
        ctl.create_network(f"m{unique}", driver="linklocal", subnet="127.0.1.0/24")
    assert sorted(n.name for n in ctl.networks() if n.name.endswith(unique)) == [f"l{unique}"]
    ctl.delete_network(net.name)
