"""A fake Amazon Ads API (Sponsored Products v3, reporting v3, LWA) on 127.0.0.1 for tests and demos.

`python -m bidloop.testing.amazon_ads.fake_server` runs it and prints the matching `bidloop.yaml` entry.
"""
