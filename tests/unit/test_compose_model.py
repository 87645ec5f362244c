"""Compose files without an engine: interpolation, the model's normal forms, every bad input as one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from runtime.compose import loader, model
from runtime.compose.errors import ComposeError
from runtime.compose.interpolate import substitute

NETCORE = [sys.executable, "-m", "runtime.cli"]
ENV = {"SET": "value", "EMPTY": ""}
BOOK = Path(__file__).parents[1] / "integration" / "book" / "docker-compose.yml"  # the book's, verbatim


@pytest.mark.parametrize("text, expected", [
    ("$SET", "value"),
    ("${SET}", "value"),
    ("a${SET}b", "avalueb"),
    ("$UNSET", ""),
    ("${UNSET:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),
    ("${UNSET-dflt}", "dflt"),
    ("${SET:-dflt}", "value"),
    ("${SET:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${SET:?boom}", "value"),
    ("${UNSET:-${SET}}", "value"),
    ("$$SET", "$SET"),
    ("cost: $$5", "cost: $5"),
])
def test_substitution(text, expected):
    assert substitute(text, ENV, "x") == expected


@pytest.mark.parametrize("text, message", [
    ("${UNSET:?set it please}", "x: required variable UNSET is missing a value: set it please"),
    ("${EMPTY:?}", "x: required variable EMPTY is missing a value: is missing a value"),
    ("${UNSET?no}", "x: required variable UNSET is missing a value: no"),
    ("${SET", 'x: invalid interpolation format "${SET": no closing "}"'),
    ("${1abc}", 'x: invalid interpolation format "${1abc}"'),
    ("5$", 'x: invalid interpolation format "5$": use "$$" for a literal "$"'),
])
def test_substitution_errors(text, message):
    with pytest.raises(ComposeError) as err:
        substitute(text, ENV, "x")
    assert str(err.value) == message
    assert substitute("${EMPTY?fine}", ENV, "x") == ""  # set (empty) satisfies the colon-less form


def project(tmp_path: Path, text: str, env: dict[str, str] | None = None, name: str | None = None) -> model.Project:
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent(text))
    return model.from_source(loader.load([str(tmp_path / "docker-compose.yml")], name, environ=env or {}))


def test_the_books_file_as_written(tmp_path):
    p = project(tmp_path, BOOK.read_text())
    assert p.version == "2"
    assert [s.name for s in p.order()] == ["curl", "testserver"]
    assert p.services["curl"].entrypoint == ["sh", "-c", "sleep 3 && curl -XPOST testserver:8080/helloworld -d '{\"name\":\"Nic\"}'"]
    assert p.services["testserver"].networks == {"default": model.ServiceNetwork()}
    assert p.networks["default"].name == f"{loader.normalise_name(tmp_path.name)}_default"


def test_project_name_from_flag_env_and_directory(tmp_path):
    d = tmp_path / "My App.v2"
    d.mkdir()
    text = "services:\n  a:\n    image: host\n"
    assert project(d, text).name == "myappv2"  # docker-compose 1.29's normalisation
    assert project(d, text, env={"COMPOSE_PROJECT_NAME": "FromEnv"}).name == "fromenv"
    assert project(d, text, env={"COMPOSE_PROJECT_NAME": "FromEnv"}, name="Flag").name == "flag"


def test_short_and_long_forms_normalise_alike(tmp_path):
    (tmp_path / "web.env").write_text("FROM_FILE=1\nOVERRIDDEN=file\n")
    p = project(tmp_path, """
        version: "3.8"
        services:
          web:
            image: host
            command: echo "a b" c
            environment: [A=1, OVERRIDDEN=env, FROM_SHELL]
            env_file: web.env
            ports: ["8080:80", {target: 53, published: 5353, protocol: udp, host_ip: 127.0.0.1}]
            expose: [9000]
            volumes: ["./data:/data:ro", "cache:/cache"]
            networks:
              front: {aliases: [www], ipv4_address: 10.5.0.9}
              back:
            depends_on: {db: {condition: service_healthy}}
            restart: no
            labels: {team: x}
          db:
            image: host
            command: [sleep, 100]
            healthcheck: {test: "exit 0", interval: 1m30s, timeout: 500ms, retries: 2, start_period: 2s}
            networks: [back]
        networks:
          front: {ipam: {config: [{subnet: 10.5.0.0/24}]}}
          back: {driver: overlay, driver_opts: {com.example: "1"}, internal: true}
        volumes:
          cache:
    """, env={"FROM_SHELL": "shell"})
    web, db = p.services["web"], p.services["db"]
    assert web.command == ["echo", "a b", "c"]
    assert web.environment == {"FROM_FILE": "1", "OVERRIDDEN": "env", "A": "1", "FROM_SHELL": "shell"}
    assert web.ports[0] == ({"80/tcp": {}}, {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]})
    assert web.ports[1] == ({"53/udp": {}}, {"53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}]})
    assert web.expose == {"9000/tcp": {}}
    assert web.volumes == [model.Mount("bind", "/data", str(tmp_path / "data"), True), model.Mount("volume", "/cache", "cache")]
    assert web.networks["front"] == model.ServiceNetwork(("www",), "10.5.0.9") and web.networks["back"] == model.ServiceNetwork()
    assert web.depends_on == {"db": "service_healthy"} and web.restart == "no"
    assert db.healthcheck == model.Healthcheck(("CMD-SHELL", "exit 0"), 90.0, 0.5, 2, 2.0)
    assert db.healthcheck.api()["Interval"] == 90 * 10**9
    assert p.networks["front"].subnet == "10.5.0.0/24" and p.networks["front"].name == f"{p.name}_front"
    assert p.networks["back"].driver == "overlay" and p.networks["back"].internal and p.networks["back"].driver_opts == {"com.example": "1"}
    assert p.volumes["cache"].name == f"{p.name}_cache"
    assert [s.name for s in p.order()] == ["db", "web"]


def cli(tmp_path: Path, text: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent(text))
    root = str(Path(__file__).parents[2])
    return subprocess.run([*NETCORE, "compose", *args], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": root, **(env or {})}, timeout=30)


def test_config_prints_the_interpolated_project(tmp_path):
    (tmp_path / ".env").write_text("TAG=from-dotenv\nPORT=8000\n")
    res = cli(tmp_path, """
        services:
          web:
            image: "busybox:${TAG}"
            command: ["echo", "${GREETING:-hello}", "$$HOME"]
            ports: ["${PORT}:80"]
    """, "-p", "demo", "config", env={"PORT": "9000"})
    assert res.returncode == 0, res.stderr
    out = yaml.safe_load(res.stdout)
    assert out["name"] == "demo"
    assert out["services"]["web"]["image"] == "busybox:from-dotenv"  # .env fills what the shell lacks
    assert out["services"]["web"]["ports"] == ["9000:80"]  # the shell wins over .env
    assert out["services"]["web"]["command"] == ["echo", "hello", "$HOME"]
    assert out["networks"] == {"default": None}
    assert cli(tmp_path, "services: {b: {image: host}, a: {image: host}}", "config", "--services").stdout == "a\nb\n"


BAD = [
    ("malformed YAML",
     "services:\n  web:\n    image: host\n   command: x\n",
     "docker-compose.yml: malformed YAML at line 4, column 4: "),
    ("unknown service key",
     "services:\n  web:\n    imagee: host\n",
     "services.web.imagee: unknown key (did you mean image?)"),
    ("unknown nested key",
     "services:\n  web:\n    image: host\n    networks:\n      n: {alias: [x]}\nnetworks:\n  n:\n",
     "services.web.networks.n.alias: unknown key (did you mean aliases?)"),
    ("unknown top-level key",
     "services:\n  web: {image: host}\nnetwork: {}\n",
     "network: unknown key (did you mean networks?)"),
    ("unsupported key",
     "services:\n  web: {image: host, privileged: true}\n",
     "services.web.privileged: not supported by netcore compose"),
    ("cycle",
     "services:\n  a: {image: host, depends_on: [b]}\n  b: {image: host, depends_on: [c]}\n  c: {image: host, depends_on: [a]}\n",
     "dependency cycle between services: a -> b -> c -> a"),
    ("unknown dependency",
     "services:\n  web: {image: host, depends_on: [db]}\n",
     'services.web.depends_on: service "web" depends on undefined service "db"'),
    ("healthy without a healthcheck",
     "services:\n  web: {image: host, depends_on: {db: {condition: service_healthy}}}\n  db: {image: host}\n",
     'services.web.depends_on.db: service "db" has no healthcheck to wait for'),
    ("missing variable",
     "services:\n  web:\n    image: ${IMAGE:?set IMAGE to the image to run}\n",
     "services.web.image: required variable IMAGE is missing a value: set IMAGE to the image to run"),
    ("undefined network",
     "services:\n  web: {image: host, networks: [front]}\n",
     'services.web.networks: undefined network "front": declare it in the top-level networks'),
    ("wrong type",
     "services:\n  web: {image: host, ports: 80}\n",
     "services.web.ports: expected a list, got a number"),
    ("bad port",
     "services:\n  web: {image: host, ports: ['99999:80']}\n",
     "services.web.ports[0]: invalid hostPort: 99999"),
    ("bad duration",
     "services:\n  web: {image: host, healthcheck: {test: 'true', interval: 5x}}\n",
     "services.web.healthcheck.interval: invalid duration '5x' (examples: 10s, 1m30s, 500ms)"),
    ("no image",
     "services:\n  web: {command: 'true'}\n",
     "services.web: has neither an image nor a build context specified: at least one must be provided"),
    ("version",
     "version: '1'\nservices:\n  web: {image: host}\n",
     "version: unsupported compose file version '1' (2.x, 3.x, or none for the Compose Specification)"),
    ("undeclared volume",
     "services:\n  web: {image: host, volumes: ['data:/data']}\n",
     'services.web.volumes[0]: named volume "data" is used but not declared in the top-level volumes'),
    ("not a mapping",
     "- a\n- b\n",
     "docker-compose.yml: the top level must be a mapping, not a list"),
]


@pytest.mark.parametrize("text, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_one_line(tmp_path, text, message):
    res = cli(tmp_path, text, "config")
    assert res.returncode == 1
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr
    assert lines[0].startswith("Error: " + message), lines[0]


def test_no_file_is_one_line(tmp_path):
    res = subprocess.run([*NETCORE, "compose", "config"], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert res.returncode == 1 and len(res.stderr.splitlines()) == 1
    assert "can't find a suitable configuration file" in res.stderr
