"""A fake Google Ads API (gRPC, API v26) on 127.0.0.1 for tests and demos.

`python -m bidloop.testing.google_ads.fake_server` runs it and prints the matching `bidloop.yaml` entry.
"""
