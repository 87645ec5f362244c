"""``netcore build``: Dockerfile builds in the engine, in the shape of Docker's classic builder.

- ``dockerfile``: parse and check a Dockerfile (Docker's own parser underneath).
- ``words``: Docker's variable expansion and quote removal for instruction arguments.
- ``context``: the build context as a tar, ``.dockerignore`` (imported by the CLI).
- ``cache``: step keys and the cache of image states.
- ``copying``: COPY and ADD sources and how they fill a layer.
- ``view``: a read-only view of an image's layers.
- ``builder``: runs the steps.
- ``engine``: the engine's side: the API handler, the RUN containers.
"""
