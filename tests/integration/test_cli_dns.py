"""Embedded DNS through the CLI: the book's example, names and aliases, updates, forwarding.

The engine runs with ``--dns`` pointing at a fake upstream (tests/integration/fake_dns.py)
in a test namespace on the underlay, so no query ever reaches the host's real resolver.
Lookups inside containers use glibc (``getent``) as a program in a container would, or
dnspython (the venv's python, visible in the container since it shares the host's files).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from cli_engine import Engine

pytestmark = pytest.mark.root
FAKE = os.path.join(os.path.dirname(__file__), "fake_dns.py")
KNOWN = ("known.example", "192.0.2.55")  # an answer only: nothing is ever sent to it

ASK = (
    "import sys, dns.message, dns.query, dns.rcode\n"
    "q = dns.message.make_query(sys.argv[1], sys.argv[2])\n"
    "r = dns.query.udp(q, '127.0.0.11', timeout=4)\n"
    "print(dns.rcode.to_text(r.rcode()), ' '.join(sorted(i.to_text() for rr in r.answer for i in rr)))\n"
)


@pytest.fixture
def upstream(underlay, tmp_path):
    """The fake upstream in the underlay namespace: (its address, the file logging what it was asked)."""
    path, host_ip, client_ip = underlay
    log = tmp_path / "upstream.log"
    log.touch()
    proc = subprocess.Popen(["nsenter", f"--net={path}", sys.executable, FAKE, client_ip, str(log), "=".join(KNOWN)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield client_ip, log
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def dns_engine(tmp_path, upstream):
    eng = Engine(tmp_path, daemon_args=("--dns", upstream[0])).start()
    yield eng
    eng.stop()


def getent(engine, net: str, name: str, *flags: str) -> subprocess.CompletedProcess:
    return engine("run", "--rm", "--network", net, *flags, "--", "getent", "hosts", name, check=False)


def ask(engine, cname: str, name: str, rdtype: str = "A") -> tuple[str, list[str]]:
    out = engine("exec", cname, sys.executable, "-c", ASK, name, rdtype).stdout.split()
    return out[0], out[1:]


def ip_of(engine, cname: str, net: str) -> str:
    return engine.json("inspect", cname)[0]["NetworkSettings"]["Networks"][net]["IPAddress"]


def test_the_books_example(dns_engine, name, upstream):
    eng, net = dns_engine, f"{name}testnetwork"
    eng("network", "create", net)
    eng("run", "-d", "--name", f"{name}server", "--network", net, "--", "sleep", "120")
    # not on the network (the default bridge): a resolution failure, asked of the upstream only
    res = getent(eng, "bridge", f"{name}server")
    assert res.returncode == 2 and res.stdout == ""
    assert f"{name}server." in upstream[1].read_text()
    # on it: the server's address, from 127.0.0.11
    res = getent(eng, net, f"{name}server")
    assert res.returncode == 0 and res.stdout.split()[0] == ip_of(eng, f"{name}server", net)
    conf = eng("run", "--rm", "--network", net, "--", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 127.0.0.11" in conf and "options ndots:0" in conf and upstream[0] not in conf
    conf = eng("run", "--rm", "--", "cat", "/etc/resolv.conf").stdout  # default bridge: the upstream itself
    assert f"nameserver {upstream[0]}" in conf and "127.0.0.11" not in conf


def test_names_aliases_hostname_and_updates(dns_engine, name):
    eng, net, other = dns_engine, f"{name}n", f"{name}o"
    eng("network", "create", net)
    eng("network", "create", other)
    eng("run", "-d", "--name", f"{name}web", "--network", net, "--network-alias", f"{name}www", "--hostname", f"{name}h",
        "--", "sleep", "120")
    eng("run", "-d", "--name", f"{name}cli", "--network", net, "--", "sleep", "120")
    eng("run", "-d", "--name", f"{name}far", "--network", other, "--", "sleep", "120")
    web = ip_of(eng, f"{name}web", net)
    short = eng.json("inspect", f"{name}web")[0]["Id"][:12]
    for n in (f"{name}web", f"{name}www", f"{name}h", short, f"{name}web.{net}", f"{name}WEB"):
        assert ask(eng, f"{name}cli", n) == ("NOERROR", [web]), n
    assert ask(eng, f"{name}cli", f"{name}web", "AAAA") == ("NOERROR", [])
    ptr = ".".join(reversed(web.split("."))) + ".in-addr.arpa"
    assert ask(eng, f"{name}cli", ptr, "PTR") == ("NOERROR", [f"{name}web."])
    # another network's container sees none of it, until it is connected with an alias of its own
    assert ask(eng, f"{name}far", f"{name}web") == ("NXDOMAIN", [])
    eng("network", "connect", "--alias", f"{name}svc", net, f"{name}far")
    assert ask(eng, f"{name}far", f"{name}web") == ("NOERROR", [web])
    assert ask(eng, f"{name}cli", f"{name}svc") == ("NOERROR", [ip_of(eng, f"{name}far", net)])
    eng("network", "disconnect", net, f"{name}far")
    assert ask(eng, f"{name}cli", f"{name}svc") == ("NXDOMAIN", [])
    # gone at once: after rm, and after the container exits
    eng("rm", "-f", f"{name}web")
    assert ask(eng, f"{name}cli", f"{name}www") == ("NXDOMAIN", [])
    eng("run", "-d", "--name", f"{name}brief", "--network", net, "--", "sleep", "120")
    assert ask(eng, f"{name}cli", f"{name}brief")[0] == "NOERROR"
    eng("stop", "-t", "1", f"{name}brief")
    assert ask(eng, f"{name}cli", f"{name}brief") == ("NXDOMAIN", [])


def test_forwarding_per_container_dns_and_a_dead_upstream(dns_engine, name, upstream, underlay):
    eng, net = dns_engine, f"{name}n"
    eng("network", "create", net)
    eng("run", "-d", "--name", f"{name}c", "--network", net, "--", "sleep", "120")
    assert ask(eng, f"{name}c", KNOWN[0]) == ("NOERROR", [KNOWN[1]])
    assert ask(eng, f"{name}c", "unknown.example") == ("NXDOMAIN", [])
    assert "unknown.example." in upstream[1].read_text()
    # --dns per container: here an address where nothing listens on 53 -> SERVFAIL, not a hang
    _, host_ip, _ = underlay
    eng("run", "-d", "--name", f"{name}d", "--network", net, "--dns", host_ip, "--", "sleep", "120")
    start = time.monotonic()
    assert ask(eng, f"{name}d", KNOWN[0]) == ("SERVFAIL", [])
    assert time.monotonic() - start < 4, "the client's 4 s timeout would have raised instead"
    assert eng.json("inspect", f"{name}d")[0]["HostConfig"]["Dns"] == [host_ip]
    res = eng("run", "--rm", "--dns", "not-an-ip", "--", "true", check=False)
    assert res.returncode == 125 and "invalid IPv4 address 'not-an-ip' for --dns" in res.stderr


def test_a_default_bridge_container_connected_to_a_user_network_gets_the_embedded_dns(dns_engine, name):
    eng, net = dns_engine, f"{name}n"
    eng("network", "create", net)
    eng("run", "-d", "--name", f"{name}a", "--", "sleep", "120")
    eng("run", "-d", "--name", f"{name}b", "--network", net, "--", "sleep", "120")
    eng("network", "connect", net, f"{name}a")
    assert "nameserver 127.0.0.11" in eng("exec", f"{name}a", "cat", "/etc/resolv.conf").stdout
    res = eng("exec", f"{name}a", "getent", "hosts", f"{name}b", check=False)
    assert res.returncode == 0 and res.stdout.split()[0] == ip_of(eng, f"{name}b", net)
