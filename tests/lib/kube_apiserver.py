#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A Kubernetes API server for gammad's tests: the documented shapes of LIST,
WATCH, GET, POST, PUT (also /status: the status only, as a real server; a body
whose apiVersion, kind, name or namespace is not the URL's: 400), PATCH (merge
patch) and DELETE over
HTTP/1.1, every response chunked, watch events cut into chunks at random
places (several events per chunk, one event over several), so the client's
framing is tested on every run.

Two ports: --port is the API the agents talk to, which faults can take down;
--control-port serves the same API (for the test's own writes) plus /_test/*:

  POST /_test/fault     {"match": "substring of path", "method": "GET",
                         "status": 429, "retry_after": 1, "count": 2}
  POST /_test/watch     {"resource": "services", "action": "error410" |
                         "close" | "http410"}   (open streams; http410: the
                         next watches of it answer HTTP 410)
  POST /_test/canned    {"match": "path prefix", "status": 200, "body": "..."}
                        a recorded response, served verbatim (chunked at random)
  POST /_test/compact   forget the event history: older resourceVersions 410
  POST /_test/expire-continue {"count": 1}    the next continue tokens 410
  POST /_test/down      {"seconds": 30} the API port closes (connections
                         refused, open streams cut) for that long
  POST /_test/load      {"objects": [...]} or {"yaml": "multi-doc text"}
  POST /_test/synth     {"services": N, "endpoints": M, "routes": R, "ns": NS}
  GET  /_test/log       requests seen on the API port [[method, path, status]]
  GET  /_test/stats     counters

Options: --no-watch-list (a streaming list gets 400 Bad Request, as from a
server without the WatchList feature), --absent PLURAL,... (CRDs not
installed: 404), --bookmark-s N (BOOKMARK interval in watches), --host
(the API port's address, IPv6 too; control is on 127.0.0.1), --tls-cert/
--tls-key (HTTPS), --client-ca (client certificates required),
--token-file (the bearer token required, read per request: 401 otherwise).
"""
import argparse
import base64
import copy
import json
import random
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GAPI = "gateway.networking.k8s.io"
RESOURCES = {
    # plural: (group, versions, kind, namespaced)
    "namespaces": ("", ["v1"], "Namespace", False),
    "services": ("", ["v1"], "Service", True),
    "pods": ("", ["v1"], "Pod", True),
    "endpointslices": ("discovery.k8s.io", ["v1"], "EndpointSlice", True),
    "httproutes": (GAPI, ["v1", "v1beta1"], "HTTPRoute", True),
    "grpcroutes": (GAPI, ["v1"], "GRPCRoute", True),
    "tcproutes": (GAPI, ["v1", "v1alpha2"], "TCPRoute", True),
    "tlsroutes": (GAPI, ["v1alpha2"], "TLSRoute", True),
    "referencegrants": (GAPI, ["v1", "v1beta1"], "ReferenceGrant", True),
    "leases": ("coordination.k8s.io", ["v1"], "Lease", True),
    "deployments": ("apps", ["v1"], "Deployment", True),
    # what deploy/ holds, for kubectl apply --dry-run=client against this server
    "serviceaccounts": ("", ["v1"], "ServiceAccount", True),
    "daemonsets": ("apps", ["v1"], "DaemonSet", True),
    "clusterroles": ("rbac.authorization.k8s.io", ["v1"], "ClusterRole", False),
    "clusterrolebindings": ("rbac.authorization.k8s.io", ["v1"], "ClusterRoleBinding", False),
    "roles": ("rbac.authorization.k8s.io", ["v1"], "Role", True),
    "rolebindings": ("rbac.authorization.k8s.io", ["v1"], "RoleBinding", True),
    "customresourcedefinitions": ("apiextensions.k8s.io", ["v1"], "CustomResourceDefinition",
                                  False),
}
SUBRESOURCES = {"httproutes", "grpcroutes", "tcproutes", "tlsroutes", "services", "pods",
                "daemonsets", "deployments", "customresourcedefinitions"}
KIND_TO_PLURAL = {v[2]: k for k, v in RESOURCES.items()}


def status_obj(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class Store:
    def __init__(self, args):
        self.lock = threading.Condition()
        self.rv = 1000
        self.objs = {p: {} for p in RESOURCES}
        self.history = []          # (rv, plural, type, obj)
        self.compacted_rv = 0      # watches from before this get 410
        self.absent = set(args.absent.split(",")) if args.absent else set()
        self.watch_list = not args.no_watch_list
        self.faults = []
        self.canned = []            # recorded responses served verbatim
        self.expire_continue = 0
        self.http410 = {}
        self.watch_actions = {}     # plural -> list of (seq, action)
        self.action_seq = 0
        self.log = []
        # watches_of: watches accepted per resource; from that count on a
        # watch sees every later /_test/watch action
        self.stats = {"lists": 0, "pages": 0, "watches": 0, "stream_lists": 0,
                      "status_puts": 0, "conflicts": 0, "bookmarks": 0, "watches_of": {}}
        self.uid = 0

    def next_rv(self):
        self.rv += 1
        return self.rv

    def key(self, plural, ns, name):
        return f"{ns}/{name}" if RESOURCES[plural][3] else name

    def emit(self, plural, etype, obj):
        self.history.append((int(obj["metadata"]["resourceVersion"]), plural, etype,
                             copy.deepcopy(obj)))
        self.lock.notify_all()

    def put(self, plural, obj, etype=None):
        """Create or replace (no checks); called with the lock held."""
        group, versions, kind, namespaced = RESOURCES[plural]
        md = obj.setdefault("metadata", {})
        if namespaced:
            md.setdefault("namespace", "default")
        else:
            md.pop("namespace", None)
        obj["apiVersion"] = (group + "/" if group else "") + versions[0] \
            if "apiVersion" not in obj else obj["apiVersion"]
        obj["kind"] = kind
        k = self.key(plural, md.get("namespace"), md["name"])
        old = self.objs[plural].get(k)
        if old is None:
            self.uid += 1
            md.setdefault("uid", "00000000-0000-4000-8000-%012d" % self.uid)
            md.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            md["generation"] = 1
        else:
            md["uid"] = old["metadata"].get("uid")
            md["creationTimestamp"] = old["metadata"].get("creationTimestamp")
            gen = old["metadata"].get("generation", 1)
            if old.get("spec") != obj.get("spec"):
                gen += 1
            md["generation"] = gen
        md["resourceVersion"] = str(self.next_rv())
        self.objs[plural][k] = obj
        self.emit(plural, etype or ("MODIFIED" if old is not None else "ADDED"), obj)
        return obj

    def delete(self, plural, k):
        obj = self.objs[plural].pop(k, None)
        if obj is None:
            return None
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.next_rv())
        self.emit(plural, "DELETED", obj)
        return obj


def plural_of_doc(doc):
    return KIND_TO_PLURAL.get(doc.get("kind"))


def synth(store, n_svc, n_ep, n_routes, ns):
    """Services with one EndpointSlice each (n_ep endpoints spread over them)
    and HTTPRoutes on them, made in memory."""
    with store.lock:
        store.put("namespaces", {"metadata": {"name": ns}})
        per = max(1, n_ep // max(1, n_svc))
        for i in range(n_svc):
            name = "svc-%05d" % i
            ip = "10.%d.%d.%d" % (96 + (i >> 16), (i >> 8) & 255, i & 255)
            store.put("services", {"metadata": {"name": name, "namespace": ns},
                                   "spec": {"clusterIP": ip, "clusterIPs": [ip],
                                            "ports": [{"name": "http", "port": 80,
                                                       "protocol": "TCP",
                                                       "targetPort": 8080}],
                                            "selector": {"app": name}}})
            eps = []
            for j in range(per):
                e = i * per + j
                eps.append({"addresses": ["10.%d.%d.%d" % (128 + (e >> 16), (e >> 8) & 255,
                                                           e & 255)],
                            "conditions": {"ready": True}, "nodeName": "node-a"})
            store.put("endpointslices", {
                "metadata": {"name": name + "-abcde", "namespace": ns,
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4", "endpoints": eps,
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
        for i in range(n_routes):
            svc = "svc-%05d" % (i % max(1, n_svc))
            store.put("httproutes", {
                "apiVersion": GAPI + "/v1",
                "metadata": {"name": "route-%05d" % i, "namespace": ns},
                "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": svc,
                                         "port": 80}],
                         "rules": [{"matches": [{"path": {"type": "PathPrefix",
                                                          "value": "/r%d" % i}}],
                                    "backendRefs": [{"name": svc, "port": 80}]}]}})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-test-apiserver"

    def log_message(self, fmt, *args):
        pass

    @property
    def store(self):
        return self.server.store

    # ---- responses -----------------------------------------------------------
    def start_chunked(self, code, extra=None):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def reply(self, code, obj, extra=None):
        if self.server.api:
            with self.store.lock:
                self.store.log.append([self.command, self.path, code])
        body = json.dumps(obj).encode()
        self.start_chunked(code, extra)
        # Big bodies go in a few chunks, as the API server's do.
        for i in range(0, len(body), 65536):
            self.chunk(body[i:i + 65536])
        self.end_chunked()

    def fail(self, code, reason, message, extra=None):
        self.reply(code, status_obj(code, reason, message), extra)

    # ---- routing -------------------------------------------------------------
    def parse(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        parts = [p for p in u.path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest:
            return None
        plural, name, sub = rest[0], rest[1] if len(rest) > 1 else None, \
            rest[2] if len(rest) > 2 else None
        if plural not in RESOURCES:
            return None
        g, versions, kind, namespaced = RESOURCES[plural]
        if g != group or version not in versions or plural in self.store.absent:
            return None
        return plural, version, ns, name, sub, q

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"null") if n else None

    def check_fault(self):
        s = self.store
        with s.lock:
            for f in s.faults:
                if f["count"] > 0 and f.get("match", "") in self.path and \
                        f.get("method", self.command) == self.command:
                    f["count"] -= 1
                    return f
        return None

    def handle_any(self):
        if not self.server.api and self.path.startswith("/_test/"):
            return self.control()
        if self.server.api and self.server.owner.args.token_file:
            with open(self.server.owner.args.token_file) as tf:
                want = "Bearer " + tf.read().strip()
            if self.headers.get("Authorization") != want:
                self.read_body()
                with self.store.lock:
                    self.store.stats["unauthorized"] = self.store.stats.get("unauthorized", 0) + 1
                return self.fail(401, "Unauthorized", "Unauthorized")
        f = self.check_fault() if self.server.api else None
        if f:
            # The request's body is read first: left unread, it would be taken
            # for the next request on this connection.
            self.read_body()
            extra = {"Retry-After": str(f["retry_after"])} if f.get("retry_after") else None
            return self.fail(f["status"], f.get("reason", "TooManyRequests"),
                             "injected fault", extra)
        with self.store.lock:
            canned = next((c for c in self.store.canned
                           if self.path.startswith(c["match"])), None)
        if canned and self.server.api:
            with self.store.lock:
                self.store.log.append([self.command, self.path, canned["status"]])
            self.start_chunked(canned["status"])
            self.send_raw(canned["body"].encode())
            self.end_chunked()
            return
        if self.command == "GET" and self.discovery():
            return
        r = self.parse()
        if r is None:
            self.read_body()
            return self.fail(404, "NotFound", "the server could not find the requested "
                             "resource")
        plural, version, ns, name, sub, q = r
        if self.command == "GET" and name is None:
            if q.get("watch") in ("1", "true"):
                return self.watch(plural, ns, q)
            return self.list(plural, ns, q)
        if self.command == "GET":
            return self.get(plural, ns, name, sub)
        if self.command == "POST" and name is None:
            return self.create(plural, ns, self.read_body())
        if self.command == "PUT" and name:
            return self.update(plural, version, ns, name, sub, self.read_body())
        if self.command == "PATCH" and name:
            return self.patch(plural, ns, name, sub, self.read_body())
        if self.command == "DELETE" and name:
            return self.remove(plural, ns, name)
        self.read_body()
        return self.fail(405, "MethodNotAllowed", "method not allowed")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    # ---- discovery (legacy, unaggregated: what kubectl falls back to) ---------
    def served(self):
        for plural, (g, versions, kind, namespaced) in RESOURCES.items():
            if plural in self.store.absent:
                continue
            for v in versions:
                yield plural, g, v, kind, namespaced

    def discovery(self):
        path = urllib.parse.urlsplit(self.path).path.rstrip("/")
        if path == "/version":
            self.reply(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-test"})
            return True
        if path == "/api":
            self.reply(200, {"kind": "APIVersions", "versions": ["v1"],
                             "serverAddressByClientCIDRs": [
                                 {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
            return True
        if path == "/apis":
            groups = {}
            for _, g, v, _, _ in self.served():
                if g and v not in groups.setdefault(g, []):
                    groups[g].append(v)
            self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": g + "/" + v, "version": v}
                                         for v in vs],
                 "preferredVersion": {"groupVersion": g + "/" + vs[0], "version": vs[0]}}
                for g, vs in groups.items()]})
            return True
        parts = path.split("/")[1:]
        if parts[:1] == ["api"] and len(parts) == 2:
            gv, group, version = parts[1], "", parts[1]
        elif parts[:1] == ["apis"] and len(parts) == 3:
            gv, group, version = parts[1] + "/" + parts[2], parts[1], parts[2]
        else:
            return False
        res = []
        for plural, g, v, kind, namespaced in self.served():
            if g == group and v == version:
                verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
                res.append({"name": plural, "singularName": kind.lower(),
                            "namespaced": namespaced, "kind": kind, "verbs": verbs})
                if plural in SUBRESOURCES:
                    res.append({"name": plural + "/status", "singularName": "",
                                "namespaced": namespaced, "kind": kind,
                                "verbs": ["get", "patch", "update"]})
        if not res:
            return False
        self.reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                         "resources": res})
        return True

    # ---- verbs ---------------------------------------------------------------
    def select(self, plural, ns, q, objs):
        sel = q.get("fieldSelector", "")
        out = []
        for k in sorted(objs):
            o = objs[k]
            if ns is not None and o["metadata"].get("namespace") != ns:
                continue
            if sel.startswith("spec.nodeName="):
                if (o.get("spec") or {}).get("nodeName") != sel.split("=", 1)[1]:
                    continue
            out.append((k, o))
        return out

    def list(self, plural, ns, q):
        s = self.store
        limit = int(q.get("limit") or 0)
        cont = q.get("continue")
        with s.lock:
            start, list_rv = None, s.rv
            if cont:
                if s.expire_continue > 0:
                    s.expire_continue -= 1
                    tok = None
                else:
                    try:
                        tok = json.loads(base64.urlsafe_b64decode(cont))
                    except Exception:
                        tok = None
                if tok is None or tok["rv"] < s.compacted_rv:
                    code = 410
                    return self.fail(code, "Expired", "The provided continue parameter "
                                     "is too old to display a consistent list result. You "
                                     "can start a new list without the continue parameter.")
                start, list_rv = tok["start"], tok["rv"]
            items = self.select(plural, ns, q, s.objs[plural])
            if start is not None:
                items = [kv for kv in items if kv[0] > start]
            more = limit and len(items) > limit
            page = items[:limit] if limit else items
            s.stats["pages"] += 1
            if not cont:
                s.stats["lists"] += 1
            md = {"resourceVersion": str(list_rv)}
            if more:
                md["continue"] = base64.urlsafe_b64encode(json.dumps(
                    {"rv": list_rv, "start": page[-1][0]}).encode()).decode()
                md["remainingItemCount"] = len(items) - len(page)
            g, versions, kind, _ = RESOURCES[plural]
            # LIST items of built-in kinds carry no kind/apiVersion.
            out = []
            for _, o in page:
                o = dict(o)
                if not g or g in ("discovery.k8s.io", "coordination.k8s.io", "apps"):
                    o.pop("kind", None)
                    o.pop("apiVersion", None)
                out.append(o)
            body = {"kind": kind + "List", "apiVersion": (g + "/" if g else "") + versions[0],
                    "metadata": md, "items": out}
        self.reply(200, body)

    def get(self, plural, ns, name, sub):
        s = self.store
        with s.lock:
            o = s.objs[plural].get(s.key(plural, ns, name))
            o = copy.deepcopy(o)
        if o is None:
            return self.fail(404, "NotFound", f'{plural} "{name}" not found')
        self.reply(200, o)

    def create(self, plural, ns, obj):
        s = self.store
        if not isinstance(obj, dict) or not obj.get("metadata", {}).get("name"):
            return self.fail(422, "Invalid", "metadata.name: Required value")
        if ns:
            obj["metadata"]["namespace"] = ns
        with s.lock:
            if s.key(plural, ns, obj["metadata"]["name"]) in s.objs[plural]:
                return self.fail(409, "AlreadyExists",
                                 f'{plural} "{obj["metadata"]["name"]}" already exists')
            o = copy.deepcopy(s.put(plural, obj))
        self.reply(201, o)

    def bad_body(self, plural, version, ns, name, obj):
        """What a real API server refuses in a PUT's body (400): an apiVersion
        or kind not the URL's (absent is refused too for custom resources:
        "Object 'Kind' is missing"), another name or namespace."""
        group, versions, kind, namespaced = RESOURCES[plural]
        if not isinstance(obj, dict):
            return "the body is not an object"
        api = (group + "/" if group else "") + version
        crd = group == GAPI
        if obj.get("apiVersion", None if crd else api) != api:
            return f"the API version in the data ({obj.get('apiVersion')}) does not match " \
                   f"the expected API version ({api})"
        if obj.get("kind", None if crd else kind) != kind:
            return f"Object 'Kind' is missing or not {kind}"
        md = obj.get("metadata") or {}
        if md.get("name") != name:
            return f"the name of the object ({md.get('name')}) does not match the name on " \
                   f"the URL ({name})"
        if ns and md.get("namespace", ns) != ns:
            return "the namespace of the provided object does not match the namespace " \
                   "sent on the request"
        return None

    def update(self, plural, version, ns, name, sub, obj):
        s = self.store
        bad = self.bad_body(plural, version, ns, name, obj)
        if bad:
            return self.fail(400, "BadRequest", bad)
        with s.lock:
            k = s.key(plural, ns, name)
            cur = s.objs[plural].get(k)
            if cur is None:
                return self.fail(404, "NotFound", f'{plural} "{name}" not found')
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv and rv != cur["metadata"]["resourceVersion"]:
                s.stats["conflicts"] += 1
                return self.fail(409, "Conflict", f'Operation cannot be fulfilled on '
                                 f'{plural} "{name}": the object has been modified; please '
                                 f'apply your changes to the latest version and try again')
            new = copy.deepcopy(cur)
            if sub == "status":
                new["status"] = obj.get("status")
                s.stats["status_puts"] += 1
            else:
                new = obj
                new.setdefault("metadata", {})["name"] = name
                if ns:
                    new["metadata"]["namespace"] = ns
                if "status" in cur and plural not in ("leases",):
                    new["status"] = cur["status"]
            o = copy.deepcopy(s.put(plural, new, "MODIFIED"))
        self.reply(200, o)

    def patch(self, plural, ns, name, sub, patch):
        s = self.store
        with s.lock:
            cur = s.objs[plural].get(s.key(plural, ns, name))
            if cur is None:
                return self.fail(404, "NotFound", f'{plural} "{name}" not found')
            rv = ((patch or {}).get("metadata") or {}).get("resourceVersion")
            if rv and rv != cur["metadata"]["resourceVersion"]:
                s.stats["conflicts"] += 1
                return self.fail(409, "Conflict", "the object has been modified")
            if sub == "status":
                patch = {"status": (patch or {}).get("status")}
            new = merge_patch(copy.deepcopy(cur), patch)
            o = copy.deepcopy(s.put(plural, new, "MODIFIED"))
        self.reply(200, o)

    def remove(self, plural, ns, name):
        s = self.store
        with s.lock:
            o = s.delete(plural, s.key(plural, ns, name))
        if o is None:
            return self.fail(404, "NotFound", f'{plural} "{name}" not found')
        self.reply(200, o)

    # ---- watch -----------------------------------------------------------------
    def send_events(self, events):
        """Events as back-to-back JSON, cut into chunks at random places."""
        self.send_raw(b"".join(json.dumps(e).encode() + b"\n" for e in events))

    def send_raw(self, data):
        rnd = self.server.rnd
        i = 0
        while i < len(data):
            n = rnd.choice((1, 2, 7, 64, 300, 4096, 65536))
            self.chunk(data[i:i + n])
            i += n
        self.wfile.flush()

    def watch(self, plural, ns, q):
        s = self.store
        stream = q.get("sendInitialEvents") == "true"
        bookmarks = q.get("allowWatchBookmarks") == "true"
        timeout = int(q.get("timeoutSeconds") or 1800)
        if stream and not s.watch_list:
            return self.fail(400, "BadRequest", "sendInitialEvents is forbidden for "
                             "watch unless the WatchList feature gate is enabled")
        if stream and q.get("resourceVersionMatch") != "NotOlderThan":
            return self.fail(400, "BadRequest", "sendInitialEvents requires "
                             "resourceVersionMatch=NotOlderThan")
        with s.lock:
            if s.http410.get(plural, 0) > 0:
                s.http410[plural] -= 1
                return self.fail(410, "Expired", "too old resource version")
            rv = q.get("resourceVersion", "")
            s.stats["watches"] += 1
            s.stats["watches_of"][plural] = s.stats["watches_of"].get(plural, 0) + 1
            if stream:
                s.stats["stream_lists"] += 1
            initial = []
            if stream or rv in ("", "0"):
                # Synthetic ADDED of everything, as a watch from "" does.
                for _, o in self.select(plural, ns, q, s.objs[plural]):
                    initial.append({"type": "ADDED", "object": copy.deepcopy(o)})
                cursor = len(s.history)
                too_old = False
            else:
                rvn = int(rv)
                too_old = rvn < s.compacted_rv
                cursor = len(s.history)
                while cursor > 0 and s.history[cursor - 1][0] > rvn:
                    cursor -= 1
            seq = s.action_seq
            now_rv = s.rv
        self.start_chunked(200)
        if s.log is not None and self.server.api:
            with s.lock:
                s.log.append([self.command, self.path, 200])
        try:
            if too_old:
                self.send_events([{"type": "ERROR", "object": status_obj(
                    410, "Expired", "too old resource version: %s (%d)" % (
                        rv, s.compacted_rv))}])
                self.end_chunked()
                return
            if stream:
                initial.append({"type": "BOOKMARK", "object": {
                    "kind": RESOURCES[plural][2], "apiVersion": "v1", "metadata": {
                        "resourceVersion": str(now_rv),
                        "annotations": {"k8s.io/initial-events-end": "true"}}}})
            if initial:
                self.send_events(initial)
            deadline = time.monotonic() + timeout
            next_bm = time.monotonic() + self.server.bookmark_s
            while True:
                with s.lock:
                    while True:
                        acts = [a for (n, a) in s.watch_actions.get(plural, []) if n > seq]
                        if acts or cursor < len(s.history) or self.server.closing:
                            break
                        left = min(deadline, next_bm) - time.monotonic()
                        if left <= 0:
                            break
                        s.lock.wait(left)
                    if acts:
                        seq = max(n for (n, _) in s.watch_actions.get(plural, []))
                    evs = []
                    for (erv, p, et, o) in s.history[cursor:]:
                        if p == plural and (ns is None or o["metadata"].get("namespace") == ns):
                            sel = q.get("fieldSelector", "")
                            if sel.startswith("spec.nodeName=") and \
                                    (o.get("spec") or {}).get("nodeName") != sel.split("=", 1)[1]:
                                continue
                            evs.append({"type": et, "object": o})
                    cursor = len(s.history)
                    cur_rv = s.rv
                if self.server.closing:
                    return      # the socket is cut by /_test/down
                if evs:
                    self.send_events(evs)
                if acts:
                    a = acts[-1]
                    if a == "error410":
                        self.send_events([{"type": "ERROR", "object": status_obj(
                            410, "Expired", "too old resource version")}])
                    self.end_chunked()
                    return
                now = time.monotonic()
                if now >= deadline:
                    self.end_chunked()
                    return
                if bookmarks and now >= next_bm:
                    with s.lock:
                        s.stats["bookmarks"] += 1
                    self.send_events([{"type": "BOOKMARK", "object": {
                        "kind": RESOURCES[plural][2], "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(cur_rv)}}}])
                if now >= next_bm:
                    next_bm = now + self.server.bookmark_s
        except (BrokenPipeError, ConnectionResetError, OSError):
            return

    # ---- control ---------------------------------------------------------------
    def control(self):
        s = self.store
        body = self.read_body() if self.command in ("POST", "PUT") else None
        path = self.path.split("?")[0]
        if path == "/_test/log":
            with s.lock:
                log = list(s.log)
            return self.reply(200, log)
        if path == "/_test/stats":
            with s.lock:
                st = dict(s.stats, rv=s.rv, counts={p: len(o) for p, o in s.objs.items()})
            return self.reply(200, st)
        if path == "/_test/fault":
            with s.lock:
                s.faults.append(dict({"count": 1}, **body))
            return self.reply(200, {})
        if path == "/_test/canned":
            with s.lock:
                s.canned.append(body)
            return self.reply(200, {})
        if path == "/_test/compact":
            with s.lock:
                s.history = []
                s.compacted_rv = s.rv
            return self.reply(200, {"compacted": s.compacted_rv})
        if path == "/_test/expire-continue":
            with s.lock:
                s.expire_continue += body.get("count", 1)
            return self.reply(200, {})
        if path == "/_test/watch":
            with s.lock:
                if body["action"] == "http410":
                    s.http410[body["resource"]] = s.http410.get(body["resource"], 0) + \
                        body.get("count", 1)
                else:
                    s.action_seq += 1
                    s.watch_actions.setdefault(body["resource"], []).append(
                        (s.action_seq, body["action"]))
                    s.lock.notify_all()
            return self.reply(200, {})
        if path == "/_test/down":
            self.server.owner.down(float(body.get("seconds", 30)))
            return self.reply(200, {})
        if path == "/_test/load":
            docs = body.get("objects") or []
            if body.get("yaml"):
                import yaml
                docs = [d for d in yaml.safe_load_all(body["yaml"]) if d]
            n = 0
            with s.lock:
                for d in docs:
                    for item in (d.get("items") or []) if d.get("kind") == "List" else [d]:
                        p = plural_of_doc(item)
                        if p:
                            s.put(p, item)
                            n += 1
            return self.reply(200, {"loaded": n})
        if path == "/_test/synth":
            synth(s, body.get("services", 0), body.get("endpoints", 0),
                  body.get("routes", 0), body.get("ns", "bench"))
            return self.reply(200, {"rv": s.rv})
        return self.fail(404, "NotFound", "no such control")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Many agents and watches at once.
    request_queue_size = 128

    def __init__(self, addr, store, api, owner, bookmark_s, seed):
        self.store, self.api, self.owner = store, api, owner
        self.bookmark_s = bookmark_s
        self.closing = False
        self.rnd = random.Random(seed)
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, Handler)

    def process_request_thread(self, request, client_address):
        with self.conns_lock:
            self.conns.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.conns_lock:
                self.conns.discard(request)

    def cut_all(self):
        with self.conns_lock:
            for c in list(self.conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Owner:
    def __init__(self, args, store):
        self.args, self.store = args, store
        self.api = None
        self.lock = threading.Lock()
        self.start_api()

    def start_api(self):
        fam = socket.AF_INET6 if ":" in self.args.host else socket.AF_INET
        Server.address_family = fam
        self.api = Server((self.args.host, self.args.port), self.store, True, self,
                          self.args.bookmark_s, self.args.seed)
        if self.args.tls_cert:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.args.tls_cert, self.args.tls_key)
            if self.args.client_ca:
                ctx.load_verify_locations(self.args.client_ca)
                ctx.verify_mode = ssl.CERT_REQUIRED
            self.api.socket = ctx.wrap_socket(self.api.socket, server_side=True)
        threading.Thread(target=self.api.serve_forever, daemon=True).start()

    def down(self, seconds):
        with self.lock:
            api, self.api = self.api, None
        if api is None:
            return
        api.closing = True
        with self.store.lock:
            self.store.lock.notify_all()
        api.shutdown()
        api.server_close()
        api.cut_all()

        def back():
            time.sleep(seconds)
            with self.lock:
                self.start_api()
            print("kube_apiserver: API port back", flush=True)
        threading.Thread(target=back, daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--control-port", type=int, required=True)
    ap.add_argument("--no-watch-list", action="store_true")
    ap.add_argument("--absent", default="")
    ap.add_argument("--bookmark-s", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tls-cert", help="serve the API port over TLS with this cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--client-ca", help="require client certificates signed by this CA")
    ap.add_argument("--token-file", help="require this bearer token (read per request)")
    args = ap.parse_args()
    store = Store(args)
    owner = Owner(args, store)
    Server.address_family = socket.AF_INET
    ctl = Server(("127.0.0.1", args.control_port), store, False, owner, args.bookmark_s,
                 args.seed + 1)
    print("kube_apiserver: ready on %s:%d (control %d)" % (args.host, args.port,
                                                         args.control_port), flush=True)
    try:
        ctl.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
