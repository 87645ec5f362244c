"""``netcore compose``: docker-compose's files and commands on the netcore engine.

- ``loader``: find the files, parse the YAML, read ``.env``, substitute variables;
- ``interpolate``: ``${VAR:-default}`` and friends;
- ``model``: validate every key and normalise services, networks and volumes;
- ``project``: bring a project up and down through the engine's API;
- ``logs``: follow several containers' logs with docker-compose's prefixes.
"""
