"""Build Google Ads service clients, routed through a manager account, and (for local fakes) over plaintext.

`GoogleAdsClient.get_service` always opens a TLS channel, which a local fake server cannot answer
(platform-apis.md §6.1 a). For endpoints on the loopback interface only, `LocalServiceFactory` opens
an insecure channel and wraps it with the SDK's own interceptors (metadata, logging, exceptions),
so the rest of the SDK behaves exactly as against Google. Any other endpoint goes through the SDK.
"""

from __future__ import annotations

import copy
import logging
from abc import ABC, abstractmethod
from importlib import import_module
from typing import Any

import grpc
from google.ads.googleads.client import _GRPC_CHANNEL_OPTIONS, GoogleAdsClient
from google.ads.googleads.interceptors import ExceptionInterceptor, LoggingInterceptor, MetadataInterceptor
from google.ads.googleads.util import convert_upper_case_to_snake_case

from bidloop.core.errors import ConfigError

__all__ = ["LocalServiceFactory", "SdkServiceFactory", "ServiceFactory", "is_loopback_endpoint"]

API_VERSION = "v26"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_sdk_logger = logging.getLogger("google.ads.googleads.client")


def is_loopback_endpoint(endpoint: str) -> bool:
    """Return True if `endpoint` (`host:port`) names this machine's loopback interface."""
    host = endpoint[1 : endpoint.find("]")] if endpoint.startswith("[") else endpoint.rsplit(":", 1)[0]
    return host in _LOOPBACK_HOSTS


class ServiceFactory(ABC):
    """Return (cached) SDK service clients for a service name and a `login-customer-id`."""

    def __init__(self, sdk_client: GoogleAdsClient) -> None:
        self.sdk_client = sdk_client
        self._cache: dict[tuple[str, str | None], Any] = {}

    def get(self, name: str, login_customer_id: str | None) -> Any:
        """Return the service client `name` (e.g. `GoogleAdsService`) sending `login_customer_id`."""
        login = login_customer_id or self.sdk_client.login_customer_id
        key = (name, login)
        if key not in self._cache:
            self._cache[key] = self._build(name, login)
        return self._cache[key]

    @abstractmethod
    def _build(self, name: str, login_customer_id: str | None) -> Any:
        """Build the service client `name` for `login_customer_id` (each factory knows how)."""


class SdkServiceFactory(ServiceFactory):
    """Build services with `GoogleAdsClient.get_service`, on a copy of the client per manager account."""

    def _build(self, name: str, login_customer_id: str | None) -> Any:
        sdk = self.sdk_client
        if login_customer_id != sdk.login_customer_id:
            sdk = copy.copy(sdk)
            sdk.login_customer_id = login_customer_id
        return sdk.get_service(name, version=API_VERSION)


class LocalServiceFactory(ServiceFactory):
    """Build services over an insecure channel to a loopback endpoint (a local fake server).

    Raises:
        ConfigError: If the client's endpoint is not on the loopback interface.
    """

    def __init__(self, sdk_client: GoogleAdsClient) -> None:
        endpoint = sdk_client.endpoint
        if not endpoint or not is_loopback_endpoint(endpoint):
            raise ConfigError(
                f"refusing a plaintext gRPC channel to {endpoint!r}",
                hint="insecure channels are only for local fake servers on 127.0.0.1; remove `endpoint` for Google",
            )
        super().__init__(sdk_client)

    def _build(self, name: str, login_customer_id: str | None) -> Any:
        sdk = self.sdk_client
        module = import_module(
            f"google.ads.googleads.{API_VERSION}.services.services.{convert_upper_case_to_snake_case(name)}"
        )
        service_class = getattr(module, f"{name}Client")
        transport_class = service_class.get_transport_class(None)
        channel = grpc.intercept_channel(
            grpc.insecure_channel(sdk.endpoint, options=_GRPC_CHANNEL_OPTIONS),
            MetadataInterceptor(sdk.developer_token, login_customer_id, sdk.linked_customer_id),
            LoggingInterceptor(_sdk_logger, API_VERSION, sdk.endpoint),
            ExceptionInterceptor(API_VERSION, use_proto_plus=True),
        )
        return service_class(transport=transport_class(channel=channel))
