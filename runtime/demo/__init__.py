"""The book's hello-world JSON API, used by ``netcore demo`` and the tests."""

import os

HELLOWORLD = os.path.join(os.path.dirname(__file__), "helloworld.py")
