"""Test support shared by every test package: real peers, the browser, mail, the legs.

Fixtures that use these live in ``tests/conftest.py``; tests may import the classes here
directly (``from tests.support.simplesamlphp import RemoteSP``).
"""
