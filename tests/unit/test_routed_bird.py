"""BIRD's config for routing=bgp (drivers/routed/bird.py): a pure function, and BIRD itself parses it."""

from __future__ import annotations

import os
import subprocess

import pytest

from drivers.routed.bird import BIRD, peer_name, render

ARGS = dict(router_id="192.0.2.1", blocks=["10.9.0.0/26", "10.9.1.0/26"], pools=[("10.9.0.0/16", 26)], peers=["192.0.2.2", "192.0.2.3", "192.0.2.1"], log="/tmp/x/bird.log")


def test_one_session_per_other_host_in_the_mesh():
    conf = render(**ARGS)
    assert "router id 192.0.2.1;" in conf
    assert conf.count("protocol bgp ") == 2  # itself is no peer
    assert f"protocol bgp {peer_name('192.0.2.2')} from mesh {{ neighbor 192.0.2.2 as 64512; }}" in conf
    assert "local 192.0.2.1 as 64512;" in conf


def test_exports_its_blocks_imports_only_pool_prefixes_and_programs_only_bgp_routes():
    conf = render(**ARGS)
    assert "  route 10.9.0.0/26 blackhole;\n  route 10.9.1.0/26 blackhole;" in conf
    assert 'export where proto = "blocks"; next hop self;' in conf
    assert "if net ~ [ 10.9.0.0/16{16,32} ] then accept;" in conf and "import filter routed_pools;" in conf
    assert "export where source = RTS_BGP;" in conf  # the driver keeps its own blackholes


def test_without_pools_nothing_is_imported():
    conf = render("192.0.2.1", [], [], [], "/tmp/x/bird.log")
    assert "import none;" in conf and "protocol bgp" not in conf


@pytest.mark.skipif(not os.access(BIRD, os.X_OK), reason="bird2 is not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("args", [ARGS, dict(ARGS, blocks=[], pools=[], peers=[])])
def test_bird_accepts_the_config(tmp_path, args):
    path = tmp_path / "bird.conf"
    path.write_text(render(**{**args, "log": str(tmp_path / "bird.log")}))
    res = subprocess.run([BIRD, "-p", "-c", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
