"""A fake Meta Graph API (Marketing API v26.0, HTTP/JSON) on 127.0.0.1 for tests and demos.

`python -m bidloop.testing.meta.fake_server` runs it and prints the matching `bidloop.yaml` entry.
"""
