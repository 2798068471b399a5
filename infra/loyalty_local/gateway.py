"""A local stand-in for API Gateway (REST, Lambda proxy integration, REQUEST authorizer).

For each HTTP request it finds the route in the shared route table, runs the real authorizer
(with API Gateway's result cache), builds the proxy event the real function gets, and calls that
function's handler. Each function runs as a small pool of isolated handler instances, like Lambda
containers: a powertools resolver serves one request at a time.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from loyalty.api.authorizer import AUTHORIZER_CACHE_SECONDS, api_key_of
from loyalty.api.gateway_responses import gateway_response
from loyalty.api.routes import ROUTES, Route
from loyalty.bootstrap import Container, bound_container
from loyalty.domain.access import Access
from loyalty.resources import AUTHORIZER
from loyalty_local.console import is_console_path, serve_console
from loyalty_local.events import api_gateway_event, authorizer_request

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO / "functions"
REGION, ACCOUNT, API_ID, STAGE = "eu-west-1", "000000000000", "local", "local"
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LambdaContext:
    """What a handler may read from the Lambda context object."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    deadline: float = 0.0

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def own_event_per_resolver() -> None:
    """Give every powertools resolver its own current event, as a Lambda container has.

    powertools' `resolve()` keeps the event in a class attribute (`BaseRouter.current_event`),
    shared by every resolver in the process. On Lambda a process serves one event at a time, so that
    is right there; here a function's instances are threads of one process, and a request could read
    another's event (path, query, body) between that assignment and its route reading it (`make load`
    saw a look-up answered 422 "link_type missing": it had read a concurrent GET's event). An
    instance attribute, set before powertools sets the class one, shadows it for that resolver; a
    pool lends an instance to one request at a time.
    """
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, BaseProxyEvent

    if getattr(ApiGatewayResolver.resolve, "own_event", False):
        return
    shared_resolve = ApiGatewayResolver.resolve

    def resolve(self: ApiGatewayResolver, event: Any, context: Any) -> dict[str, Any]:
        raw = event.raw_event if isinstance(event, BaseProxyEvent) else event
        self.current_event = self._to_proxy_event(raw)
        self.lambda_context = context
        return shared_resolve(self, event, context)

    resolve.own_event = True  # type: ignore[attr-defined]
    ApiGatewayResolver.resolve = resolve  # type: ignore[method-assign]


def load_handler(function: str, instance: int = 0) -> Handler:
    own_event_per_resolver()
    path = FUNCTIONS_DIR / function / "handler.py"
    spec = importlib.util.spec_from_file_location(f"lambda_{function}_{instance}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Handler = module.handler
    return handler


class FunctionPool:
    """Up to `size` warm instances of one function; a request borrows one for its duration."""

    def __init__(
        self, function: str, size: int, timeout_s: int = 30, container: Container | None = None
    ) -> None:
        self.function = function
        self._container = container  # the platform whose container() its handlers answer
        self.timeout_s = timeout_s
        self._idle: queue.LifoQueue[Handler] = queue.LifoQueue()
        self._created = 0
        self._size = size
        self._lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        handler = self._borrow()
        try:
            context = LambdaContext(
                self.function, aws_request_id=str(uuid.uuid4()), deadline=time.monotonic() + self.timeout_s
            )
            with bound_container(self._container):
                return handler(event, context)
        finally:
            self._idle.put(handler)

    def _borrow(self) -> Handler:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._created < self._size:
                self._created += 1
                return load_handler(self.function, self._created)
        return self._idle.get()


@dataclass(frozen=True)
class CompiledRoute:
    route: Route
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, route: Route) -> CompiledRoute:
        regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(route.path))
        return cls(route, re.compile(f"^{regex}$"))


@dataclass
class GatewayResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def gateway_answer(response_type: str) -> GatewayResponse:
    """What API Gateway itself answers (the same definitions CDK deploys as gateway responses)."""
    definition = gateway_response(response_type)
    return GatewayResponse(definition.status, definition.headers(), json.dumps(definition.body()).encode())


class GatewayServer(ThreadingHTTPServer):
    """A thread per connection, and a listen backlog a burst of clients fits in.

    socketserver's default backlog is 5: 64 tills connecting at once saw connection resets that
    API Gateway would never give (the kernel still caps it at net.core.somaxconn)."""

    request_queue_size = 1024
    daemon_threads = True


class LocalGateway:
    def __init__(
        self,
        pool_size: int = 4,
        authorizer_cache_seconds: float = AUTHORIZER_CACHE_SECONDS,
        container: Container | None = None,
    ) -> None:
        self._container = container
        # API Gateway prefers literal path segments over parameters.
        ordered = sorted(ROUTES, key=lambda r: (r.path.count("{"), r.path))
        self._routes = [CompiledRoute.of(r) for r in ordered]
        self._pools: dict[str, FunctionPool] = {}
        self._pool_size = pool_size
        self._authorizer = FunctionPool(AUTHORIZER.name, pool_size, AUTHORIZER.timeout_s, container)
        self._auth_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._auth_cache_seconds = authorizer_cache_seconds
        self._server: ThreadingHTTPServer | None = None
        # Called after each function ran (it may have written): the runtime kicks its stream pollers.
        self.on_invoked: Callable[[], None] = lambda: None

    # ---- request handling -------------------------------------------------------------------
    def handle(
        self,
        method: str,
        raw_path: str,
        headers: dict[str, list[str]],
        body: bytes,
        source_ip: str = "127.0.0.1",
    ) -> GatewayResponse:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        if is_console_path(split.path):
            # On AWS CloudFront serves the console from S3; here the gateway serves its files.
            static = serve_console(method, path)
            return GatewayResponse(static.status, static.headers, static.body)
        # /docs and /openapi.json are routes of the health function, on AWS and here alike.
        matched = self._match(method, split.path)
        if matched is None:
            return gateway_answer("MISSING_AUTHENTICATION_TOKEN")
        route, path_params = matched
        event = self._event(route, method, path, split.query, headers, body, path_params, source_ip)
        if route.access is not Access.PUBLIC:
            refused = self._authorize(event)
            if refused is not None:
                return refused
        pool = self._pool(route.function)
        try:
            result = pool.invoke(event)
        except Exception:  # a function crash is an integration failure, never a stack trace
            return gateway_answer("INTEGRATION_FAILURE")
        finally:
            self.on_invoked()
        return self._response(result)

    def _match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        for compiled in self._routes:
            if compiled.route.method != method:
                continue
            found = compiled.pattern.match(raw_path)
            if found:
                return compiled.route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def _authorize(self, event: dict[str, Any]) -> GatewayResponse | None:
        # The verdict is cached under exactly the key the authorizer checks: the request's only
        # x-api-key. None (the identity source is missing, or the request carries two keys) is
        # refused without calling the authorizer, which would refuse it too.
        key = api_key_of(event)
        if not key:
            return gateway_answer("UNAUTHORIZED")
        cached = self._auth_cache.get(key)
        if cached and time.monotonic() - cached[0] < self._auth_cache_seconds:
            event["requestContext"]["authorizer"] = dict(cached[1])
            return None
        auth_event = authorizer_request(
            event,
            f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API_ID}/{STAGE}/{event['httpMethod']}{event['resource']}",
        )
        try:
            verdict = self._authorizer.invoke(auth_event)
        except Exception as exc:
            return gateway_answer("UNAUTHORIZED" if str(exc) == "Unauthorized" else "AUTHORIZER_FAILURE")
        statements = verdict.get("policyDocument", {}).get("Statement", [])
        if not any(s.get("Effect") == "Allow" for s in statements):
            return gateway_answer("ACCESS_DENIED")
        context = {**verdict.get("context", {}), "principalId": verdict.get("principalId")}
        self._auth_cache[key] = (time.monotonic(), context)
        event["requestContext"]["authorizer"] = dict(context)
        return None

    def _pool(self, function: str) -> FunctionPool:
        pool = self._pools.get(function)
        if pool is None:
            pool = self._pools.setdefault(
                function, FunctionPool(function, self._pool_size, container=self._container)
            )
        return pool

    @staticmethod
    def _event(
        route: Route,
        method: str,
        path: str,
        query: str,
        headers: dict[str, list[str]],
        body: bytes,
        path_params: dict[str, str],
        source_ip: str,
    ) -> dict[str, Any]:
        multi_query = parse_qs(query, keep_blank_values=True)
        try:
            text: str | None = body.decode() if body else None
            encoded = False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        return api_gateway_event(
            method,
            route.path,
            path,
            headers=headers,
            query=multi_query,
            path_params=path_params,
            body=text,
            base64_encoded=encoded,
            source_ip=source_ip,
        )

    @staticmethod
    def _response(result: dict[str, Any]) -> GatewayResponse:
        headers: dict[str, str] = {}
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers[key] = ", ".join(str(v) for v in values)
        headers.update({k: str(v) for k, v in (result.get("headers") or {}).items()})
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        return GatewayResponse(int(result.get("statusCode", 502)), headers, body)

    # ---- serving ------------------------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 3000) -> ThreadingHTTPServer:
        gateway = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # TCP_NODELAY: the headers and the body go out in two writes, and on a kept-alive
            # connection Nagle's algorithm held the body until the client's delayed ACK (~40 ms
            # added to every request; seen by `make load`).
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers: dict[str, list[str]] = {}
                for key, value in self.headers.items():
                    headers.setdefault(key, []).append(value)
                response = gateway.handle(self.command, self.path, headers, body, self.client_address[0])
                self.send_response(response.status)
                for key, value in response.headers.items():
                    if key.lower() not in ("content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def __getattr__(self, name: str) -> Any:
                # Any other method (HEAD, OPTIONS, TRACE ...) finds no route, as on API Gateway: a
                # 404 problem document rather than http.server's 501 HTML page.
                if name.startswith("do_"):
                    return self._handle
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the functions log structured JSON; access lines would only add noise

        server = GatewayServer((host, port), RequestHandler)
        self._server = server
        threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
        return server

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
