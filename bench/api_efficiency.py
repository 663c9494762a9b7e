"""Count the write requests each platform client sends, against the fewest possible, with and without faults.

For 10, 1,000 and 20,000 `SetBid` actions per platform (Google Ads keywords, Meta ad sets, Amazon
Ads keywords), each local fake server is seeded (`from_snapshot`) with a generated account holding
that many targets, and the real client (real SDK, real wire protocol) applies them twice:

* `clean`: no faults. `requests / minimum` is the batching efficiency, where the minimum is
  ceil(actions / batch limit): Google 10,000 operations per `Mutate`, Meta 50 calls per Graph batch,
  Amazon 1,000 items per `PUT /sp/keywords`.
* `faulty`: a fresh fake where each write request fails with a transient error (Google INTERNAL /
  TRANSIENT_ERROR, Meta HTTP 500 code 2, Amazon 503) with probability 0.2 (seeded). The retries come
  from the clients' own counters; double writes are writes the fake applied more than once to one
  entity (each action targets its own entity, so any second write is a double write). Only write
  requests fail; the read-backs a client makes after an ambiguous failure (Meta treats a 5xx on a
  batch as ambiguous) are counted in `faulty req` but are not failed.

Retries do not sleep (`sleep=lambda s: None`): the figures are counts, not waits. Clearances are
issued with the guardrails' private `_issue_clearance`, as the gate would. Last line: JSON with
`requests_over_minimum` (worst clean ratio), `requests_over_minimum_with_faults`, `retries`,
`double_writes`, `not_applied`.

Run: python bench/api_efficiency.py [--sizes 10,1000,20000] [--failure-rate 0.2] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.ads.googleads.client import GoogleAdsClient
from google.oauth2.credentials import Credentials

from bidloop.core.actions import AgentName, SetBid
from bidloop.core.clearance import Clearance, _issue_clearance
from bidloop.core.decisions import WriteStatus
from bidloop.core.entities import EntityKind, EntityRef, EntityState, MatchType, Platform
from bidloop.core.settings import AccountConfig
from bidloop.core.snapshot import Snapshot
from bidloop.testing.amazon_ads.fake_server import FakeAmazonAdsServer
from bidloop.testing.google_ads.fake_server import FakeGoogleAdsServer
from bidloop.testing.meta.fake_server import FakeMetaServer
from bidloop.tools.amazon_ads import MAX_ITEMS_PER_REQUEST, AmazonAdsClient
from bidloop.tools.google_ads import MAX_OPERATIONS_PER_MUTATE, GoogleAdsPlatformClient
from bidloop.tools.google_ads._channel import API_VERSION, LocalServiceFactory
from bidloop.tools.meta import META_BATCH_LIMIT, MetaClient

BATCH_LIMITS = {
    Platform.GOOGLE_ADS: MAX_OPERATIONS_PER_MUTATE,
    Platform.META: META_BATCH_LIMIT,
    Platform.AMAZON_ADS: MAX_ITEMS_PER_REQUEST,
}
TARGETS_PER_AD_GROUP = 1_000
OLD_BID_MICROS = 1_000_000
NEW_BID_MICROS = 1_250_000
AS_OF = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
META_TOKEN = "bench-meta-token"  # not a secret: the fake's own token
AMAZON_TOKEN = "bench-amazon-token"  # not a secret: the fake's own token


def no_sleep(_seconds: float) -> None:
    """Skip retry waits: the benchmark counts requests, it does not time backoff."""


# ------------------------------------------------------------------------------------------ fakes


class FlakyGoogleAdsServer(FakeGoogleAdsServer):
    """The Google fake, failing each `Mutate` with a transient INTERNAL error with a given probability."""

    failure_rate = 0.0
    rng = random.Random(0)

    def _begin(self, method: str, request: Any, context: Any) -> Any:
        if method == "Mutate" and self.rng.random() < self.failure_rate:
            self.inject("transient", method="Mutate")
        return super()._begin(method, request, context)


class FlakyMetaServer(FakeMetaServer):
    """The Meta fake, failing each Graph batch of writes with an HTTP 500 with a given probability."""

    failure_rate = 0.0
    rng = random.Random(0)

    def _take_fault(self, *, endpoint: str, is_write: bool) -> Any:
        # Only batches that write: read-back batches (GET calls) stay reliable, as on the other fakes.
        calls = self.requests[-1].batch if endpoint == "batch" and self.requests else None
        writes = bool(calls) and any(str(call.get("method", "")).upper() == "POST" for call in calls or [])
        if writes and self.rng.random() < self.failure_rate:
            self.inject("transient", endpoint="batch")
        return super()._take_fault(endpoint=endpoint, is_write=is_write)


# ------------------------------------------------------------------------------------------ accounts


def _ref(platform: Platform, account_id: str, kind: EntityKind, entity_id: str) -> EntityRef:
    return EntityRef(platform=platform, account_id=account_id, kind=kind, entity_id=entity_id)


def generated_snapshot(platform: Platform, account_id: str, n_targets: int) -> tuple[Snapshot, list[EntityRef]]:
    """Return an account with `n_targets` bid targets (keywords; Meta: ad sets) and their refs, in order."""
    campaign_id = "700000001"
    entities = [
        EntityState(
            ref=_ref(platform, account_id, EntityKind.CAMPAIGN, campaign_id),
            name="Bench campaign",
            campaign_id=campaign_id,
            daily_budget_micros=None if platform is Platform.META else 1_000_000_000,
        )
    ]
    targets: list[EntityRef] = []
    if platform is Platform.META:
        for i in range(n_targets):
            ref = _ref(platform, account_id, EntityKind.AD_GROUP, str(800_000_001 + i))
            entities.append(
                EntityState(
                    ref=ref,
                    name=f"Ad set {i}",
                    parent_id=campaign_id,
                    campaign_id=campaign_id,
                    daily_budget_micros=50_000_000,
                    cpc_bid_micros=OLD_BID_MICROS,
                )
            )
            targets.append(ref)
        return _snapshot(platform, account_id, entities), targets
    for g in range(math.ceil(n_targets / TARGETS_PER_AD_GROUP)):
        ad_group_id = str(710_000_001 + g)
        entities.append(
            EntityState(
                ref=_ref(platform, account_id, EntityKind.AD_GROUP, ad_group_id),
                name=f"Ad group {g}",
                parent_id=campaign_id,
                campaign_id=campaign_id,
                cpc_bid_micros=OLD_BID_MICROS,
            )
        )
        for k in range(min(TARGETS_PER_AD_GROUP, n_targets - g * TARGETS_PER_AD_GROUP)):
            keyword_id = str(720_000_001 + g * TARGETS_PER_AD_GROUP + k)
            entity_id = f"{ad_group_id}~{keyword_id}" if platform is Platform.GOOGLE_ADS else keyword_id
            ref = _ref(platform, account_id, EntityKind.KEYWORD, entity_id)
            entities.append(
                EntityState(
                    ref=ref,
                    name=f"keyword {g} {k}",
                    text=f"keyword {g} {k}",
                    match_type=MatchType.EXACT,
                    parent_id=ad_group_id,
                    campaign_id=campaign_id,
                    cpc_bid_micros=OLD_BID_MICROS,
                )
            )
            targets.append(ref)
    return _snapshot(platform, account_id, entities), targets


def _snapshot(platform: Platform, account_id: str, entities: list[EntityState]) -> Snapshot:
    return Snapshot(account_id=account_id, platform=platform, as_of=AS_OF, entities=entities)


def cleared_bids(targets: Sequence[EntityRef]) -> list[Clearance]:
    """Return one cleared `SetBid` (1.00 -> 1.25) per target, as the guardrails' gate would issue them."""
    return [
        _issue_clearance(
            SetBid(
                action_id=f"bench-{i}",
                entity=ref,
                agent=AgentName.BID_SHIFTER,
                reason="benchmark",
                old_cpc_bid_micros=OLD_BID_MICROS,
                new_cpc_bid_micros=NEW_BID_MICROS,
            ),
            verdict="allowed",
            rule_id="bench",
        )
        for i, ref in enumerate(targets)
    ]


# ------------------------------------------------------------------------------------------ one measurement


@dataclass
class Measurement:
    """What one `apply` of `actions` cleared actions cost on one platform."""

    platform: Platform
    actions: int
    failure_rate: float
    write_requests: int
    retries: int
    double_writes: int
    applied: int
    seconds: float

    @property
    def minimum(self) -> int:
        """Return ceil(actions / batch limit), the fewest write requests possible."""
        return math.ceil(self.actions / BATCH_LIMITS[self.platform])

    @property
    def ratio(self) -> float:
        """Return write requests / minimum."""
        return self.write_requests / self.minimum


def _double_writes(writes_by_entity: dict[str, int]) -> int:
    return sum(count - 1 for count in writes_by_entity.values() if count > 1)


def _google(n: int, failure_rate: float, rng: random.Random) -> Measurement:
    account = AccountConfig(id="bench-google", platform=Platform.GOOGLE_ADS, backend="live")
    snapshot, targets = generated_snapshot(Platform.GOOGLE_ADS, account.id, n)
    srv = FlakyGoogleAdsServer.from_snapshot(snapshot, customer_id="1234567890")
    srv.failure_rate, srv.rng = failure_rate, rng
    with srv:
        account = account.model_copy(update={"platform_account_id": srv.customer_id, "endpoint": srv.address})
        # As `from_account` does for a loopback endpoint, but with retry waits skipped.
        sdk = GoogleAdsClient(
            credentials=Credentials(token="bench-local"),
            developer_token="bench-local",
            endpoint=srv.address,
            use_proto_plus=True,
            version=API_VERSION,
        )
        client = GoogleAdsPlatformClient(sdk, [account], sleep=no_sleep, service_factory=LocalServiceFactory(sdk))
        return _measure(
            Platform.GOOGLE_ADS, client, account.id, targets, failure_rate, srv, lambda: srv.request_count["Mutate"]
        )


def _meta(n: int, failure_rate: float, rng: random.Random) -> Measurement:
    account = AccountConfig(id="bench-meta", platform=Platform.META, backend="live", platform_account_id="act_1000")
    snapshot, targets = generated_snapshot(Platform.META, account.id, n)
    srv = FlakyMetaServer.from_snapshot(snapshot, platform_account_id="act_1000", access_token=META_TOKEN)
    srv.failure_rate, srv.rng = failure_rate, rng
    with srv:
        account = account.model_copy(update={"endpoint": srv.address})
        client = MetaClient.from_account(account, env={"META_ACCESS_TOKEN": META_TOKEN}, sleep=no_sleep)
        return _measure(
            Platform.META, client, account.id, targets, failure_rate, srv, lambda: srv.requests_by_endpoint["batch"]
        )


def _amazon(n: int, failure_rate: float, rng: random.Random) -> Measurement:
    account = AccountConfig(
        id="bench-amazon",
        platform=Platform.AMAZON_ADS,
        backend="live",
        platform_account_id="1000000001",
        marketplace="US",
    )
    snapshot, targets = generated_snapshot(Platform.AMAZON_ADS, account.id, n)
    srv = FakeAmazonAdsServer.from_snapshot(snapshot, profile_id="1000000001", access_token=AMAZON_TOKEN)
    if failure_rate:
        srv.inject(
            "server_error", times=None, path="PUT /sp/keywords", probability=failure_rate, seed=rng.randrange(2**31)
        )
    with srv:
        account = account.model_copy(update={"endpoint": srv.address})
        env = {
            "AD_API_CLIENT_ID": "bench-client",
            "AD_API_CLIENT_SECRET": "bench-secret",
            "AD_API_REFRESH_TOKEN": "bench-refresh",
            "AD_API_ACCESS_TOKEN": AMAZON_TOKEN,
        }
        client = AmazonAdsClient.from_account(account, environ=env, sleep=no_sleep)
        return _measure(
            Platform.AMAZON_ADS, client, account.id, targets, failure_rate, srv, lambda: srv.write_request_count
        )


def _measure(
    platform: Platform,
    client: Any,
    account_id: str,
    targets: Sequence[EntityRef],
    failure_rate: float,
    srv: Any,
    write_requests: Callable[[], int],
) -> Measurement:
    clearances = cleared_bids(targets)
    stats = client.stats if platform is Platform.META else client.retry_stats
    before_requests, before_retries = write_requests(), stats.retries
    started = time.perf_counter()
    results = client.apply(account_id, clearances)
    seconds = time.perf_counter() - started
    return Measurement(
        platform=platform,
        actions=len(clearances),
        failure_rate=failure_rate,
        write_requests=write_requests() - before_requests,
        retries=stats.retries - before_retries,
        double_writes=_double_writes(dict(srv.writes_by_entity)),
        applied=sum(r.status is WriteStatus.APPLIED for r in results),
        seconds=seconds,
    )


RUNNERS: dict[Platform, Callable[[int, float, random.Random], Measurement]] = {
    Platform.GOOGLE_ADS: _google,
    Platform.META: _meta,
    Platform.AMAZON_ADS: _amazon,
}


# ------------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure every platform and size, print the table, and return the headline figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="10,1000,20000", help="comma-separated action counts per platform")
    parser.add_argument("--failure-rate", type=float, default=0.2, help="chance that a write request fails")
    parser.add_argument("--seed", type=int, default=7, help="seed of the injected failures")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    # The retry layer logs one warning per retry; the table is the output here.
    logging.getLogger("bidloop").setLevel(logging.ERROR)

    rows: list[tuple[Measurement, Measurement]] = []
    for run in RUNNERS.values():
        for n in sizes:
            clean = run(n, 0.0, random.Random(args.seed))
            faulty = run(n, args.failure_rate, random.Random(args.seed))
            rows.append((clean, faulty))

    header = (
        f"{'platform':<11} {'actions':>7} {'limit':>6} {'min':>4} {'clean req':>9} {'ratio':>6} "
        f"{'faulty req':>10} {'ratio':>6} {'retries':>7} {'double':>6} {'applied':>8} {'s clean':>8} {'s faulty':>8}"
    )
    print(f"write requests per platform; faulty = {args.failure_rate:.0%} transient failures per write request")
    print(header)
    print("-" * len(header))
    for clean, faulty in rows:
        applied = f"{min(clean.applied, faulty.applied)}/{clean.actions}"
        print(
            f"{clean.platform.value:<11} {clean.actions:>7} {BATCH_LIMITS[clean.platform]:>6} {clean.minimum:>4} "
            f"{clean.write_requests:>9} {clean.ratio:>6.2f} {faulty.write_requests:>10} {faulty.ratio:>6.2f} "
            f"{faulty.retries:>7} {clean.double_writes + faulty.double_writes:>6} {applied:>8} "
            f"{clean.seconds:>8.2f} {faulty.seconds:>8.2f}"
        )
    headline = {
        "requests_over_minimum": round(max(c.ratio for c, _ in rows), 3),
        "requests_over_minimum_with_faults": round(max(f.ratio for _, f in rows), 3),
        "retries": sum(f.retries for _, f in rows),
        "double_writes": sum(c.double_writes + f.double_writes for c, f in rows),
        "not_applied": sum((c.actions - c.applied) + (f.actions - f.applied) for c, f in rows),
        "failure_rate": args.failure_rate,
        "sizes": sizes,
    }
    print(json.dumps(headline))
    return headline


if __name__ == "__main__":
    main()
