"""viewer.js and glb.js in chromium, under the console's Content-Security-Policy: the model is
drawn, turns and zooms by mouse, touch and keyboard, and a bad file or a browser without WebGL
gets a readable message instead of an exception."""

from __future__ import annotations

import base64
import io
import struct
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import open_page
from tests.browser.support import (
    BACKGROUND,
    CANVAS,
    PICTURE_JS,
    Site,
    glb,
    picture,
    two_part_glb,
    wait_for_change,
)


def open_model(page: Page, site: Site, query: str = "") -> dict[str, Any]:
    """Opens the viewer page on the two-part model and waits until it is drawn."""
    path = site.add_glb("/models/two-parts.glb", two_part_glb())
    page.goto(f"{site.url}/pages/viewer.html?model={path}{query}")
    expect(page.locator("#result")).to_have_text("2 meshes, 332 triangles, 170 vertices")
    page.wait_for_function(
        f"(s) => ({PICTURE_JS})(document.querySelector(s)).drawn > 1000", arg=CANVAS, polling=100
    )
    return picture(page)


def next_frames(page: Page) -> None:
    """Returns after two animation frames: a draw the page asked for has happened."""
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")


def test_model_is_drawn_in_its_palette_and_only_when_something_changes(
    page: Page, site: Site, artefacts: Path
) -> None:
    shown = open_model(page, site)
    assert shown["drawn"] > 0.05 * shown["pixels"]
    assert shown["colours"] > 20  # shaded, not flat silhouettes
    assert shown["blue"] > 1000 and shown["orange"] > 1000  # the two meshes told apart
    canvas = page.locator(CANVAS)
    expect(canvas).to_have_attribute("tabindex", "0")
    expect(canvas).to_have_attribute("role", "img")
    expect(canvas).to_have_attribute(
        "aria-label", "3D model: drag or use the arrow keys to turn, the wheel or +/- to zoom"
    )
    expect(canvas).to_have_attribute("data-viewer-state", "loaded")
    frames = page.evaluate("() => viewer.frames")
    next_frames(page)
    assert page.evaluate("() => viewer.frames") == frames  # idle: no render loop
    # what reached the screen, not only the drawing buffer
    shot = Image.open(io.BytesIO(canvas.screenshot(path=artefacts / "viewer-loaded.png")))
    pixels = list(shot.convert("RGB").get_flattened_data())
    off_background = sum(1 for p in pixels if sum(abs(a - b) for a, b in zip(p, BACKGROUND)) > 24)
    assert off_background > 0.05 * len(pixels)


def test_drag_turns_the_model(page: Page, site: Site, artefacts: Path) -> None:
    before = open_model(page, site)
    box = page.locator(CANVAS).bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 40, steps=6)
    page.mouse.up()
    after = wait_for_change(page, before)
    assert after["drawn"] > 1000
    page.locator(CANVAS).screenshot(path=artefacts / "viewer-dragged.png")


def test_wheel_zooms_in_and_out(page: Page, site: Site) -> None:
    before = open_model(page, site)
    page.locator(CANVAS).hover()
    page.mouse.wheel(0, -400)
    closer = wait_for_change(page, before)
    assert closer["drawn"] > before["drawn"] * 1.3
    page.mouse.wheel(0, 800)
    farther = wait_for_change(page, closer)
    assert farther["drawn"] < before["drawn"]
    assert page.evaluate("() => window.scrollY") == 0  # the page itself did not scroll


def test_keys_turn_zoom_and_reset_on_the_focused_canvas(
    page: Page, site: Site, artefacts: Path
) -> None:
    start = open_model(page, site)
    page.keyboard.press("Tab")  # the viewer gave the canvas its tabindex: it is reachable
    expect(page.locator(CANVAS)).to_be_focused()
    page.keyboard.press("ArrowLeft")
    turned = wait_for_change(page, start)
    page.keyboard.press("ArrowUp")
    tilted = wait_for_change(page, turned)
    page.keyboard.press("+")
    closer = wait_for_change(page, tilted)
    assert closer["drawn"] > tilted["drawn"]
    page.locator(CANVAS).screenshot(path=artefacts / "viewer-keys.png")
    page.keyboard.press("-")
    wait_for_change(page, closer)
    page.keyboard.press("0")
    page.wait_for_function(
        f"([s, h]) => ({PICTURE_JS})(document.querySelector(s)).hash === h",
        arg=[CANVAS, start["hash"]],
        polling=100,
    )


def test_pinch_zooms(page: Page, site: Site) -> None:
    before = open_model(page, site)
    page.evaluate(
        """(s) => {
          const canvas = document.querySelector(s);
          const r = canvas.getBoundingClientRect();
          const [cx, cy] = [r.left + r.width / 2, r.top + r.height / 2];
          const send = (type, id, x) => canvas.dispatchEvent(new PointerEvent(type, {
            pointerId: id, pointerType: "touch", isPrimary: id === 11, bubbles: true,
            clientX: x, clientY: cy }));
          send("pointerdown", 11, cx - 20);
          send("pointerdown", 12, cx + 20);
          for (let step = 1; step <= 5; step += 1) {
            send("pointermove", 11, cx - 20 - step * 12);
            send("pointermove", 12, cx + 20 + step * 12);
          }
          send("pointerup", 11, cx - 80);
          send("pointerup", 12, cx + 80);
        }""",
        CANVAS,
    )
    closer = wait_for_change(page, before)
    assert closer["drawn"] > before["drawn"] * 1.3


def test_malformed_file_gets_a_readable_error(page: Page, site: Site, artefacts: Path) -> None:
    path = site.add_glb("/models/not-a-model.glb", b"<html>this is no model</html>")
    page.goto(f"{site.url}/pages/viewer.html?model={path}")
    result = page.locator("#result")
    expect(result).to_have_attribute("data-state", "error")
    expect(result).to_have_text("GlbError: Not a GLB file: it does not start with the bytes 'glTF'")
    expect(page.locator(CANVAS)).to_have_attribute("data-viewer-state", "empty")
    page.screenshot(path=artefacts / "viewer-malformed.png")


def _header(version: int, length: int) -> bytes:
    return struct.pack("<4sII", b"glTF", version, length)


def _malformed() -> list[tuple[str, bytes, str]]:
    good = two_part_glb()
    triangle = {"asset": {"version": "2.0"}, "buffers": [{"byteLength": 36}], "bufferViews": [{"buffer": 0, "byteLength": 36}], "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"}], "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}]}  # fmt: skip
    bin_first = _header(2, 20) + struct.pack("<II", 0, 0x004E4942)
    bad_index = dict(triangle, accessors=[*triangle["accessors"], {"bufferView": 1, "componentType": 5121, "count": 3, "type": "SCALAR"}], bufferViews=[*triangle["bufferViews"], {"buffer": 0, "byteOffset": 36, "byteLength": 3}], meshes=[{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}])  # fmt: skip
    return [
        ("short", b"glTF", "Not a GLB file: it is only 4 bytes long"),
        ("magic", b"PK\x03\x04" + good[4:], "does not start with the bytes 'glTF'"),
        ("version", _header(1, len(good)) + good[12:], "Unsupported glTF version 1"),
        ("truncated", good[: len(good) // 2], "Truncated GLB file"),
        ("no JSON chunk", _header(2, 12) + bytes(8), "the JSON chunk is missing"),
        ("BIN first", bin_first, "its first chunk is not the JSON chunk"),
        ("bad JSON", glb({}, b"")[:20] + b"{not", "JSON chunk does not parse"),
        ("no BIN chunk", glb(triangle, b""), "the BIN chunk its accessors read is missing"),
        ("short BIN", glb(triangle, b"\0" * 12), "reads past the end of the file"),
        ("index", glb(bad_index, struct.pack("<9f", *[0.0] * 9) + bytes([0, 1, 7])), "index out of range"),
    ]  # fmt: skip


def test_parse_glb_says_what_is_wrong_with_a_malformed_file(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/pages/viewer.html")
    cases = _malformed()
    messages = page.evaluate(
        """(files) => files.map((b64) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          try { VisgateViewer.parseGlb(bytes.buffer); return "no error"; }
          catch (error) { return `${error.name}: ${error.message}`; }
        })""",
        [base64.b64encode(data).decode() for _, data, _ in cases],
    )
    for (name, _, expected), message in zip(cases, messages, strict=True):
        assert message.startswith("GlbError: ") and expected in message, (name, message)


def _interleaved_model() -> bytes:
    """Two triangles in one buffer view with byteStride (position + normal + 4 bytes of padding),
    drawn by two nodes: a parent translated by +10 in x with a child scaled by 2 and rotated 90°
    about z. One primitive has a material, the other none; no `scenes` at all."""
    rows = [(0, 0, 0), (1, 0, 0), (0, 1, 0)]
    data = b"".join(struct.pack("<3f3f4x", *p, 0.0, 0.0, 5.0) for p in rows)
    document = {
        "asset": {"version": "2.0"},
        "buffers": [{"byteLength": len(data) + 6}],
        "bufferViews": [
            {"buffer": 0, "byteLength": len(data), "byteStride": 28},
            {"buffer": 0, "byteOffset": len(data), "byteLength": 6},
        ],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3"},
            {"bufferView": 0, "byteOffset": 12, "componentType": 5126, "count": 3, "type": "VEC3"},
            {"bufferView": 1, "componentType": 5123, "count": 3, "type": "SCALAR"},
        ],
        "materials": [{"pbrMetallicRoughness": {"baseColorFactor": [0.1, 0.8, 0.2, 1.0]}}],
        "meshes": [
            {"name": "lit", "primitives": [{"attributes": {"POSITION": 0, "NORMAL": 1}, "indices": 2, "material": 0}]},
            {"name": "plain", "primitives": [{"attributes": {"POSITION": 0}}]},
        ],
        "nodes": [
            {"translation": [10, 0, 0], "children": [1], "mesh": 0},
            {"scale": [2, 2, 2], "rotation": [0, 0, 0.7071068, 0.7071068], "mesh": 1},
        ],
    }  # fmt: skip
    return glb(document, data + struct.pack("<3H", 0, 1, 2))


def test_parse_glb_applies_strides_node_transforms_normals_and_materials(
    page: Page, site: Site
) -> None:
    page.goto(f"{site.url}/pages/viewer.html")
    model = page.evaluate(
        """(b64) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const m = VisgateViewer.parseGlb(bytes.buffer);
          const round = (xs) => Array.from(xs, (x) => Math.round(x * 1000) / 1000);
          return { meshes: m.meshes, triangles: m.triangles, vertices: m.vertices,
            min: round(m.bounds.min), max: round(m.bounds.max),
            draws: m.draws.map((d) => ({ name: d.name, color: round(d.color),
              positions: round(d.positions), normals: round(d.normals) })) };
        }""",
        base64.b64encode(_interleaved_model()).decode(),
    )
    assert (model["meshes"], model["triangles"], model["vertices"]) == (2, 2, 6)
    lit, plain = model["draws"]
    assert lit["name"] == "lit" and lit["color"] == [0.1, 0.8, 0.2]
    assert lit["positions"] == [10, 0, 0, 11, 0, 0, 10, 1, 0]  # the parent's translation
    assert lit["normals"] == [0, 0, 1] * 3  # the file's normals, made unit length
    assert plain["color"] == [0.949, 0.557, 0.169]  # no material: the second mesh's palette colour
    # the child: scaled by 2, turned 90° about z, then moved by its parent
    assert plain["positions"] == [10, 0, 0, 10, 2, 0, 8, 0, 0]
    assert [abs(n) for n in plain["normals"]] == [0, 0, 1] * 3  # computed: the face's normal
    assert model["min"] == [8, 0, 0] and model["max"] == [11, 2, 0]


def test_computed_normals_are_smooth_on_curves_and_sharp_at_creases(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/pages/viewer.html")
    box_axis_aligned, ball_radial = page.evaluate(
        """(b64) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const [box, ball] = VisgateViewer.parseGlb(bytes.buffer).draws;
          let aligned = 0, radial = 1;
          for (let i = 0; i < box.normals.length; i += 3) {
            const n = box.normals.subarray(i, i + 3);
            if (Math.max(...n.map(Math.abs)) > 0.9999) aligned += 1;
          }
          for (let i = 0; i < ball.normals.length; i += 3) {
            const [x, y, z] = [ball.positions[i] - 1.2, ball.positions[i + 1], ball.positions[i + 2]];
            const length = Math.hypot(x, y, z);
            const n = ball.normals;
            radial = Math.min(radial, Math.abs(n[i] * x + n[i + 1] * y + n[i + 2] * z) / length);
          }
          return [aligned / (box.normals.length / 3), radial];
        }""",
        base64.b64encode(two_part_glb()).decode(),
    )
    assert box_axis_aligned == 1  # a box's 90° edges are not smoothed over
    assert ball_radial > 0.995  # a sphere's corners share their neighbours' normals


@pytest.mark.allow_browser_errors("Content Security Policy")
def test_no_csp_violation_and_the_watch_would_see_one(page: Page, site: Site) -> None:
    before = open_model(page, site)
    page.locator(CANVAS).hover()
    page.mouse.wheel(0, -200)
    wait_for_change(page, before)
    assert page.evaluate("() => window.cspViolations") == []
    # the watch works: an inline style attribute is refused and seen
    page.evaluate("() => document.body.setAttribute('style', 'color: red')")
    page.wait_for_function("() => window.cspViolations.length === 1")


def test_without_webgl_a_message_replaces_the_canvas(
    page: Page, site: Site, artefacts: Path
) -> None:
    page.add_init_script(
        """(() => {
          const original = HTMLCanvasElement.prototype.getContext;
          HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {
            return String(kind).includes("webgl") ? null : original.call(this, kind, ...rest);
          };
        })()"""
    )
    path = site.add_glb("/models/two-parts.glb", two_part_glb())
    page.goto(f"{site.url}/pages/viewer.html?model={path}")
    message = page.locator(".viewer-message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("WebGL is unavailable")
    expect(page.locator(CANVAS)).to_be_hidden()
    # the file is still read, so a page can still summarise it
    expect(page.locator("#result")).to_have_text("2 meshes, 332 triangles, 170 vertices")
    page.screenshot(path=artefacts / "viewer-no-webgl.png")


def test_canvas_without_a_stylesheet_size_keeps_its_width_at_pixel_ratio_two(
    browser: Browser, browser_errors: list[str], site: Site
) -> None:
    page = open_page(browser, browser_errors, device_scale_factor=2)
    try:
        open_model(page, site, query="&unsized=1")
        for _ in range(3):
            next_frames(page)
        size = page.evaluate(
            "(s) => { const c = document.querySelector(s); return [c.clientWidth, c.width,"
            " c.parentElement.clientWidth]; }",
            CANVAS,
        )
        css_width, backing_width, container = size
        assert css_width <= container and backing_width == 2 * css_width, size
    finally:
        page.context.close()
