"""Test doubles for bidloop: fake platform servers that speak each platform's wire protocol, and the guardrail fuzzer.

Installed with bidloop so that the README's try-it path (`python -m bidloop.testing.meta.fake_server`) works
without an account, but never imported by product code: a fake that borrowed a helper from the client it
tests would share that client's mistakes. Each fake takes its units, statuses and rules from the platform's
own documentation.
"""
