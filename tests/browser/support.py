"""A loopback site for the console's scripts: the real static folder, test pages sent with the
console's Content-Security-Policy, GLB files, and a fake of the control plane's job routes whose
answers a test sets while the page polls."""

from __future__ import annotations

import html
import io
import json
import struct
import threading
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page

REPO_ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = REPO_ROOT / "src" / "visgate" / "console" / "static"
PAGES_DIR = Path(__file__).resolve().parent / "pages"

# The console's policy, word for word: the scripts must work under exactly this.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
CSRF_TOKEN = "csrf-token-for-the-test"
DEPLOYMENT = "dep_0123456789abcdef"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".glb": "model/gltf-binary",
}
# The scripts the console's pages load, in this order (glb.js defines what viewer.js reads).
SCRIPTS = ("glb.js", "viewer.js")

_FIELDS = {
    "3d": """
    <label for="pg-text">What to make</label>
    <input id="pg-text" name="text" aria-describedby="pg-text-error">
    <p class="field-error" id="pg-text-error" hidden></p>
    <label for="pg-quality">Quality</label>
    <select id="pg-quality" name="quality" aria-describedby="pg-quality-error">
      <option value="fast">fast</option><option value="standard" selected>standard</option>
      <option value="high">high</option>
    </select>
    <p class="field-error" id="pg-quality-error" hidden></p>
    <label for="pg-num_parts">Parts</label>
    <input id="pg-num_parts" name="num_parts" type="number" aria-describedby="pg-num_parts-error">
    <p class="field-error" id="pg-num_parts-error" hidden></p>
    <label for="pg-seed">Seed</label>
    <input id="pg-seed" name="seed" type="number" value="0" aria-describedby="pg-seed-error">
    <p class="field-error" id="pg-seed-error" hidden></p>""",
    "image": """
    <label for="pg-prompt">Prompt</label>
    <textarea id="pg-prompt" name="prompt" aria-describedby="pg-prompt-error"></textarea>
    <p class="field-error" id="pg-prompt-error" hidden></p>
    <label for="pg-seed">Seed</label>
    <input id="pg-seed" name="seed" type="number" value="0" aria-describedby="pg-seed-error">
    <p class="field-error" id="pg-seed-error" hidden></p>""",
}


def playground_html(kind: str, poll_ms: int) -> str:
    """The playground's DOM as the console renders it (the contract playground.js relies on)."""
    scripts = "".join(
        f'<script src="/console/static/{name}" defer></script>'
        for name in (*SCRIPTS, "playground.js")
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Playground</title>
<meta name="csrf-token" content="{html.escape(CSRF_TOKEN)}">
<link rel="icon" href="data:,"><link rel="stylesheet" href="/pages/page.css">
<script src="/pages/csp-watch.js"></script>{scripts}</head>
<body><main>
<form id="playground-form" data-deployment="{DEPLOYMENT}" data-kind="{kind}"
      data-poll-ms="{poll_ms}" novalidate>{_FIELDS[kind]}
  <button type="submit" id="pg-run">Run</button>
</form>
<p id="job-status" role="status" aria-live="polite"></p>
<div id="job-error" class="error" role="alert" hidden></div>
<figure id="job-image" hidden><img alt="The generated image">
  <figcaption>The generated image</figcaption></figure>
<section id="job-model" hidden>
  <canvas id="viewer-canvas" tabindex="0"
    aria-label="3D model: drag or use the arrow keys to turn, the wheel or +/- to zoom"></canvas>
  <a id="glb-download" download="model.glb" href="#">Download GLB</a>
  <p id="job-model-summary"></p>
</section>
<dl id="job-timings"></dl>
</main></body></html>"""


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeJobs:
    """The job routes: POST answers `submit`; a GET answers the next of `queued`, or `current`
    once they are used up (set it to move the job along). Every request is recorded."""

    submit: tuple[int, Any] = (200, {"id": "job-1", "status": "IN_QUEUE"})
    current: tuple[int, Any] = (200, {"id": "job-1", "status": "IN_QUEUE"})
    queued: list[tuple[int, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(Recorded(method, path, headers, body))
            if method == "POST":
                return self.submit
            return self.queued.pop(0) if self.queued else self.current

    def set(self, status: str, code: int = 200, **extra: Any) -> None:
        with self.lock:
            self.current = (code, {"id": "job-1", "status": status, **extra})

    def posts(self) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST"]


@dataclass
class Site:
    url: str
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # path → (body, type)
    jobs: FakeJobs = field(default_factory=FakeJobs)

    def reset(self) -> None:
        self.files.clear()
        self.jobs = FakeJobs()

    def add_glb(self, path: str, data: bytes) -> str:
        self.files[path] = (data, CONTENT_TYPES[".glb"])
        return path


def _static(folder: Path, name: str) -> Path | None:
    path = (folder / name).resolve()
    return path if path.is_file() and path.parent == folder.resolve() else None


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.route("GET")

        def do_POST(self) -> None:
            self.route("POST")

        def route(self, method: str) -> None:
            path = urlsplit(self.path).path
            if path.startswith("/v1/deployments/"):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                code, answer = site.jobs.answer(method, path, headers, body)
                return self.send(code, json.dumps(answer).encode(), "application/json")
            if method != "GET":
                return self.send(405, b"", "text/plain")
            if path in site.files:
                return self.send(200, *site.files[path])
            for prefix, folder in (("/console/static/", STATIC_DIR), ("/pages/", PAGES_DIR)):
                if path.startswith(prefix) and (file := _static(folder, path[len(prefix) :])):
                    return self.send(200, file.read_bytes(), CONTENT_TYPES[file.suffix])
            if path.startswith("/playground/") and (kind := path.rsplit("/", 1)[1]) in _FIELDS:
                poll_ms = 100  # the page's own default is 1 s; the tests need not wait that long
                return self.send(
                    200, playground_html(kind, poll_ms).encode(), CONTENT_TYPES[".html"]
                )
            self.send(404, b"not found", "text/plain")

        def send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.send_header("cache-control", "no-store")
            self.send_header("x-content-type-options", "nosniff")
            if content_type.startswith("text/html"):
                self.send_header("content-security-policy", CSP)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    return Handler


class SiteServer:
    """The site on 127.0.0.1 (a free port), served from a thread."""

    def __init__(self) -> None:
        self.site = Site(url="")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.site))
        self.site.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Site:
        self.thread.start()
        return self.site

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def glb(document: dict[str, Any], binary: bytes) -> bytes:
    """A GLB container around a glTF document and its BIN chunk (both padded to 4 bytes)."""
    text = json.dumps(document).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text
    if binary:
        chunks += struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(chunks)) + chunks


@cache
def two_part_glb() -> bytes:
    """A box and, beside it, an icosphere: two meshes, no normals, no materials (as trimesh and
    so the worker write them)."""
    import trimesh

    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box(), geom_name="box")
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.6)
    scene.add_geometry(sphere, geom_name="ball", transform=_translation(1.2, 0.0, 0.0))
    return scene.export(file_type="glb")


def _translation(x: float, y: float, z: float) -> list[list[float]]:
    return [[1, 0, 0, x], [0, 1, 0, y], [0, 0, 1, z], [0, 0, 0, 1]]


@cache
def small_png() -> bytes:
    """A 64x64 picture with a red square on blue: easy to recognise in a screenshot."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), (40, 90, 200))
    ImageDraw.Draw(image).rectangle((16, 16, 47, 47), fill=(220, 40, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# Reads the canvas back (preserveDrawingBuffer keeps it readable): how many pixels differ from
# the background, how many distinct colours, how many bluish and orange ones (the palette's
# first two: the box and the ball), and a hash that changes whenever the picture does.
PICTURE_JS = """(canvas) => {
  const copy = document.createElement("canvas");
  copy.width = canvas.width;
  copy.height = canvas.height;
  const context = copy.getContext("2d");
  context.drawImage(canvas, 0, 0);
  const data = context.getImageData(0, 0, copy.width, copy.height).data;
  const colours = new Set();
  let drawn = 0, blue = 0, orange = 0, hash = 0;
  for (let i = 0; i < data.length; i += 4) {
    const r = data[i], g = data[i + 1], b = data[i + 2];
    if (Math.abs(r - 236) + Math.abs(g - 238) + Math.abs(b - 241) > 24) drawn += 1;
    if (b > r + 40) blue += 1;
    if (r > b + 60) orange += 1;
    colours.add(((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3));
    hash = (Math.imul(hash, 31) + r * 65536 + g * 256 + b) >>> 0;
  }
  return { drawn, blue, orange, hash, colours: colours.size, pixels: data.length / 4 };
}"""
CANVAS = "#viewer-canvas"
BACKGROUND = (236, 238, 241)


def picture(page: Page) -> dict[str, Any]:
    return page.evaluate(f"(s) => ({PICTURE_JS})(document.querySelector(s))", CANVAS)


def wait_for_change(page: Page, before: dict[str, Any]) -> dict[str, Any]:
    page.wait_for_function(
        f"([s, h]) => ({PICTURE_JS})(document.querySelector(s)).hash !== h",
        arg=[CANVAS, before["hash"]],
        polling=100,
    )
    return picture(page)
