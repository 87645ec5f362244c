"""Docker's port notation (runtime/portspec.py): parsing -p/--expose, the API shape, the PORTS column."""

from __future__ import annotations

import pytest

from runtime.portspec import PortSpecError, format_ps, parse_expose, parse_publish, ports_view, to_bindings
from netcore.models import PortBinding


@pytest.mark.parametrize(
    "spec,exposed,bindings",
    [
        ("80", {"80/tcp": {}}, {"80/tcp": [{"HostIp": "", "HostPort": ""}]}),
        ("8080:80", {"80/tcp": {}}, {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}),
        ("8080:80/udp", {"80/udp": {}}, {"80/udp": [{"HostIp": "", "HostPort": "8080"}]}),
        ("127.0.0.1:8080:80", {"80/tcp": {}}, {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}),
        ("127.0.0.1::80", {"80/tcp": {}}, {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]}),
        ("8000-8001:7000-7001", {"7000/tcp": {}, "7001/tcp": {}},
         {"7000/tcp": [{"HostIp": "", "HostPort": "8000"}], "7001/tcp": [{"HostIp": "", "HostPort": "8001"}]}),
        ("8000-8010:80", {"80/tcp": {}}, {"80/tcp": [{"HostIp": "", "HostPort": "8000-8010"}]}),
        ("7000-7001", {"7000/tcp": {}, "7001/tcp": {}},
         {"7000/tcp": [{"HostIp": "", "HostPort": ""}], "7001/tcp": [{"HostIp": "", "HostPort": ""}]}),
        ("53/UDP", {"53/udp": {}}, {"53/udp": [{"HostIp": "", "HostPort": ""}]}),
    ],
)
def test_publish_forms(spec, exposed, bindings):
    assert parse_publish(spec) == (exposed, bindings)


@pytest.mark.parametrize(
    "spec,message",
    [
        ("abc", "invalid containerPort: abc"),
        ("0", "invalid containerPort: 0"),
        ("70000", "invalid containerPort: 70000"),
        ("x:80", "invalid hostPort: x"),
        ("80/sctpx", "invalid proto: sctpx"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        ("8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"),
        ("81-80", "invalid containerPort: 81-80"),
        ("a:b:c:d", "invalid port specification: a:b:c:d"),
        ("8080:", "no port specified: 8080:"),
    ],
)
def test_publish_errors(spec, message):
    with pytest.raises(PortSpecError, match=message):
        parse_publish(spec)


def test_expose():
    assert parse_expose("7000-7001/udp") == {"7000/udp": {}, "7001/udp": {}}
    assert parse_expose("80") == {"80/tcp": {}}
    with pytest.raises(PortSpecError):
        parse_expose("http")


def test_api_shape_to_core_bindings():
    got = to_bindings({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8000-8010"}, {"HostIp": "127.0.0.1", "HostPort": ""}]})
    assert [PortBinding(**d) for d in got] == [
        PortBinding(80, "tcp", "", 8000, 8010),
        PortBinding(80, "tcp", "127.0.0.1", 0, 0),
    ]


def test_ports_view_and_ps_column_group_ranges_like_docker():
    published = [PortBinding(7000 + i, "tcp", "", 8000 + i) for i in range(3)] + [PortBinding(53, "udp", "127.0.0.1", 5353)]
    view = ports_view({"443/tcp": {}, "444/tcp": {}, "7000/tcp": {}}, published)
    assert view["443/tcp"] is None and view["7001/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": "8001"}]
    assert format_ps(view) == "0.0.0.0:8000-8002->7000-7002/tcp, 127.0.0.1:5353->53/udp, 443-444/tcp"
    assert format_ps({}) == ""
