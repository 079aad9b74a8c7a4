/* Visgate console: a WebGL viewer for GLB models, without any library.
 *
 * window.VisgateViewer.create(canvas) → {load(arrayBuffer), clear(), dispose(), reset()}.
 * glb.js (window.VisgateGlb) reads the file; this script draws it and turns it on drag, the
 * wheel, a pinch or the keyboard. It draws only when something changed, never in a loop.
 * Load glb.js before this script.
 */
(function () {
  "use strict";

  const BACKGROUND = [0.925, 0.933, 0.945];
  const FOV_Y = (40 * Math.PI) / 180;
  const START = Object.freeze({ yaw: -Math.PI / 6, pitch: Math.PI / 9, zoom: 1 });
  const MAX_PITCH = (85 * Math.PI) / 180; // short of the poles, where "up" would flip
  const ZOOM_RANGE = [0.25, 8];
  const DRAG_TURN = 0.01; // radians per CSS pixel
  const KEY_TURN = Math.PI / 12;
  const KEY_ZOOM = 1.2;
  const MAX_BACKING = 4096; // pixels per side: a huge window must not exhaust GPU memory
  const LIGHT = [-0.352, 0.553, 0.755]; // unit length, in view space: from the upper left, in front
  const STRIDE = 24; // bytes per vertex: position then normal, three float32 each
  const NO_WEBGL = "This browser cannot show the 3D model here because WebGL is unavailable. " +
    "Download the GLB file to open it in another viewer.";
  const LOST = "The 3D view stopped because the graphics driver reset; it comes back when the " +
    "browser restores it.";

  const VERTEX_SHADER = `
    attribute vec3 aPosition;
    attribute vec3 aNormal;
    uniform mat4 uModelView;
    uniform mat4 uProjection;
    uniform mat3 uNormalMatrix;
    varying vec3 vNormal;
    void main() {
      vNormal = uNormalMatrix * aNormal;
      gl_Position = uProjection * uModelView * vec4(aPosition, 1.0);
    }`;
  // Both sides are lit alike: generated meshes often have inconsistent winding.
  const FRAGMENT_SHADER = `
    precision mediump float;
    uniform vec3 uColor;
    uniform vec3 uLight;
    varying vec3 vNormal;
    void main() {
      vec3 n = normalize(vNormal);
      float diffuse = abs(dot(n, uLight));
      float sky = 0.5 + 0.5 * abs(n.y);
      gl_FragColor = vec4(uColor * (0.34 + 0.12 * sky + 0.6 * diffuse), 1.0);
    }`;

  // 4×4 matrices, column-major as WebGL wants them; the product is glb.js's.
  function multiply(a, b) {
    return Float32Array.from(glb().multiply(a, b));
  }

  function translation(x, y, z) {
    return [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, x, y, z, 1];
  }

  function rotationX(a) {
    const [c, s] = [Math.cos(a), Math.sin(a)];
    return [1, 0, 0, 0, 0, c, s, 0, 0, -s, c, 0, 0, 0, 0, 1];
  }

  function rotationY(a) {
    const [c, s] = [Math.cos(a), Math.sin(a)];
    return [c, 0, -s, 0, 0, 1, 0, 0, s, 0, c, 0, 0, 0, 0, 1];
  }

  function perspective(fovY, aspect, near, far) {
    const f = 1 / Math.tan(fovY / 2);
    const range = 1 / (near - far);
    return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * range, -1, 0, 0, 2 * far * near * range, 0];
  }

  function glb() {
    if (!window.VisgateGlb) throw new Error("glb.js must be loaded before viewer.js");
    return window.VisgateGlb;
  }

  function createContext(canvas) {
    const options = { preserveDrawingBuffer: true, antialias: true, alpha: false };
    for (const kind of ["webgl2", "webgl"]) {
      try {
        const gl = canvas.getContext(kind, options);
        if (gl) return gl;
      } catch (_error) {
        // some browsers throw instead of answering null: try the next kind
      }
    }
    return null;
  }

  function compile(gl, type, source) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS) && !gl.isContextLost()) {
      throw new Error(`The viewer's shader does not compile: ${gl.getShaderInfoLog(shader)}`);
    }
    return shader;
  }

  function createProgram(gl) {
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX_SHADER));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS) && !gl.isContextLost()) {
      throw new Error(`The viewer's shaders do not link: ${gl.getProgramInfoLog(program)}`);
    }
    const gpu = { program, buffer: null, draws: [] };
    for (const name of ["aPosition", "aNormal"]) gpu[name] = gl.getAttribLocation(program, name);
    for (const name of ["uModelView", "uProjection", "uNormalMatrix", "uColor", "uLight"]) {
      gpu[name] = gl.getUniformLocation(program, name);
    }
    return gpu;
  }

  /** One interleaved vertex buffer for the whole model; each primitive is a range of it. */
  function upload(gl, gpu, model) {
    const corners = model.draws.reduce((sum, draw) => sum + draw.triangles * 3, 0);
    const data = new Float32Array(corners * 6);
    gpu.draws = [];
    let first = 0;
    for (const draw of model.draws) {
      for (let i = 0; i < draw.triangles * 3; i += 1) {
        const at = (first + i) * 6;
        for (let c = 0; c < 3; c += 1) {
          data[at + c] = draw.positions[i * 3 + c];
          data[at + 3 + c] = draw.normals[i * 3 + c];
        }
      }
      gpu.draws.push({ first, count: draw.triangles * 3, color: draw.color });
      first += draw.triangles * 3;
    }
    if (gpu.buffer) gl.deleteBuffer(gpu.buffer);
    gpu.buffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, gpu.buffer);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
  }

  /** True when no stylesheet sizes the canvas's width, so that its layout width follows its
   * backing store: sizing that store at devicePixelRatio would then widen it on every resize. */
  function widthFollowsBackingStore(canvas) {
    const [saved, before] = [canvas.width, canvas.clientWidth];
    canvas.width = saved + 64;
    const follows = canvas.clientWidth !== before;
    canvas.width = saved;
    return follows;
  }

  class Viewer {
    constructor(canvas) {
      this.canvas = canvas;
      this.model = null;
      this.view = { ...START };
      this.pointers = new Map();
      this.pending = 0;
      this.frames = 0;
      this.sized = false;
      this.message = null;
      this.events = new AbortController();
      this.prepareCanvas();
      this.gl = createContext(canvas);
      this.gpu = this.gl ? createProgram(this.gl) : null;
      this.setState("empty");
      if (!this.gl) this.showMessage(NO_WEBGL);
      this.listen();
    }

    prepareCanvas() {
      const canvas = this.canvas;
      if (!canvas.hasAttribute("tabindex")) canvas.tabIndex = 0;
      if (!canvas.hasAttribute("role")) canvas.setAttribute("role", "img");
      canvas.style.touchAction = "none"; // the page must not scroll or zoom under a drag or pinch
    }

    listen() {
      const on = (target, type, handler, options = {}) =>
        target.addEventListener(type, handler.bind(this), { ...options, signal: this.events.signal });
      const canvas = this.canvas;
      on(canvas, "pointerdown", this.onPointerDown);
      on(canvas, "pointermove", this.onPointerMove);
      on(canvas, "pointerup", this.onPointerUp);
      on(canvas, "pointercancel", this.onPointerUp);
      on(canvas, "wheel", this.onWheel, { passive: false });
      on(canvas, "keydown", this.onKey);
      on(canvas, "webglcontextlost", this.onContextLost);
      on(canvas, "webglcontextrestored", this.onContextRestored);
      this.observer = new ResizeObserver(() => this.resize());
      this.observer.observe(canvas);
      this.resize();
    }

    setState(state) {
      this.canvas.dataset.viewerState = state;
    }

    showMessage(text) {
      if (!this.message) {
        this.message = document.createElement("p");
        this.message.className = "viewer-message";
        this.message.setAttribute("role", "status");
        this.canvas.insertAdjacentElement("afterend", this.message);
      }
      this.message.textContent = text;
      this.canvas.style.display = "none"; // not `hidden`: a stylesheet's display would win
    }

    hideMessage() {
      if (this.message) this.message.remove();
      this.message = null;
      this.canvas.style.display = "";
    }

    load(buffer) {
      const model = glb().parseGlb(buffer); // throws a GlbError that says what is wrong
      if (!model.triangles) throw new (glb().GlbError)("The GLB file holds no triangles to show");
      this.model = model;
      this.view = { ...START };
      if (this.gpu) upload(this.gl, this.gpu, model);
      this.setState("loaded");
      this.requestDraw();
      return { meshes: model.meshes, triangles: model.triangles, vertices: model.vertices };
    }

    clear() {
      this.model = null;
      if (this.gpu && this.gpu.buffer) this.gl.deleteBuffer(this.gpu.buffer);
      if (this.gpu) Object.assign(this.gpu, { buffer: null, draws: [] });
      this.setState("empty");
      this.requestDraw();
    }

    dispose() {
      this.clear();
      this.events.abort();
      this.observer.disconnect();
      if (this.pending) cancelAnimationFrame(this.pending);
      if (this.gpu) this.gl.deleteProgram(this.gpu.program);
      this.hideMessage();
      this.gl = null;
      this.gpu = null;
      delete this.canvas.dataset.viewerState;
    }

    reset() {
      this.view = { ...START };
      this.requestDraw();
    }

    turn(yaw, pitch) {
      this.view.yaw += yaw;
      this.view.pitch = Math.max(-MAX_PITCH, Math.min(MAX_PITCH, this.view.pitch + pitch));
      this.requestDraw();
    }

    zoomBy(factor) {
      this.view.zoom = Math.max(ZOOM_RANGE[0], Math.min(ZOOM_RANGE[1], this.view.zoom * factor));
      this.requestDraw();
    }

    resize() {
      const canvas = this.canvas;
      if (canvas.clientWidth < 1 || canvas.clientHeight < 1) return; // hidden: size it once shown
      if (!this.sized) {
        this.sized = true;
        if (widthFollowsBackingStore(canvas)) canvas.style.width = "100%";
      }
      const ratio = window.devicePixelRatio || 1;
      const width = Math.min(MAX_BACKING, Math.round(canvas.clientWidth * ratio));
      const height = Math.min(MAX_BACKING, Math.round(canvas.clientHeight * ratio));
      if (canvas.width !== width || canvas.height !== height) {
        canvas.width = width;
        canvas.height = height;
      }
      this.draw(); // now, not at the next frame: resizing cleared the canvas
    }

    requestDraw() {
      if (!this.pending) this.pending = requestAnimationFrame(() => this.draw());
    }

    camera(aspect) {
      const { min, max } = this.model.bounds;
      const center = [0, 1, 2].map((i) => (min[i] + max[i]) / 2);
      const radius = Math.max(Math.hypot(max[0] - min[0], max[1] - min[1], max[2] - min[2]) / 2, 1e-6);
      const fovX = 2 * Math.atan(Math.tan(FOV_Y / 2) * aspect);
      const distance = radius / Math.sin(Math.min(FOV_Y, fovX) / 2) / this.view.zoom;
      const near = Math.max(distance - radius * 1.5, distance * 0.01);
      const rotation = multiply(rotationX(this.view.pitch), rotationY(this.view.yaw));
      const modelView = multiply(
        translation(0, 0, -distance),
        multiply(rotation, translation(-center[0], -center[1], -center[2])),
      );
      const normalMatrix = [0, 1, 2, 4, 5, 6, 8, 9, 10].map((i) => rotation[i]);
      return { modelView, normalMatrix, projection: perspective(FOV_Y, aspect, near, distance + radius * 1.5) };
    }

    draw() {
      this.pending = 0;
      const { gl, gpu, canvas } = this;
      if (!gl || !gpu || gl.isContextLost() || !canvas.width || !canvas.height) return;
      gl.viewport(0, 0, canvas.width, canvas.height);
      gl.clearColor(BACKGROUND[0], BACKGROUND[1], BACKGROUND[2], 1);
      gl.enable(gl.DEPTH_TEST);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      if (this.model && gpu.buffer) {
        const view = this.camera(canvas.width / canvas.height);
        gl.useProgram(gpu.program);
        gl.uniformMatrix4fv(gpu.uModelView, false, view.modelView);
        gl.uniformMatrix4fv(gpu.uProjection, false, new Float32Array(view.projection));
        gl.uniformMatrix3fv(gpu.uNormalMatrix, false, new Float32Array(view.normalMatrix));
        gl.uniform3fv(gpu.uLight, LIGHT);
        gl.bindBuffer(gl.ARRAY_BUFFER, gpu.buffer);
        gl.enableVertexAttribArray(gpu.aPosition);
        gl.vertexAttribPointer(gpu.aPosition, 3, gl.FLOAT, false, STRIDE, 0);
        gl.enableVertexAttribArray(gpu.aNormal);
        gl.vertexAttribPointer(gpu.aNormal, 3, gl.FLOAT, false, STRIDE, 12);
        for (const part of gpu.draws) {
          gl.uniform3fv(gpu.uColor, part.color);
          gl.drawArrays(gl.TRIANGLES, part.first, part.count);
        }
      }
      this.frames += 1;
    }

    onPointerDown(event) {
      if (event.pointerType === "mouse" && event.button !== 0) return;
      try {
        this.canvas.setPointerCapture(event.pointerId); // keep turning when the drag leaves the canvas
      } catch (_error) {
        // a pointer the browser no longer tracks: the drag still works inside the canvas
      }
      this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    }

    onPointerMove(event) {
      const last = this.pointers.get(event.pointerId);
      if (!last) return;
      const spread = this.pinchSpread();
      this.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
      if (this.pointers.size === 1) {
        this.turn((event.clientX - last.x) * DRAG_TURN, (event.clientY - last.y) * DRAG_TURN);
      } else if (spread > 0) {
        this.zoomBy(this.pinchSpread() / spread); // fingers apart: closer
      }
    }

    onPointerUp(event) {
      this.pointers.delete(event.pointerId);
    }

    /** Distance between the first two pointers down (a pinch), or 0 with fewer. */
    pinchSpread() {
      const [a, b] = this.pointers.values();
      return a && b ? Math.hypot(a.x - b.x, a.y - b.y) : 0;
    }

    onWheel(event) {
      event.preventDefault(); // the wheel zooms the model, not the page
      const scale = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
      this.zoomBy(Math.exp(-event.deltaY * scale * 0.0015));
    }

    onKey(event) {
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      const action = {
        ArrowLeft: () => this.turn(-KEY_TURN, 0),
        ArrowRight: () => this.turn(KEY_TURN, 0),
        ArrowUp: () => this.turn(0, -KEY_TURN),
        ArrowDown: () => this.turn(0, KEY_TURN),
        "+": () => this.zoomBy(KEY_ZOOM),
        "=": () => this.zoomBy(KEY_ZOOM),
        "-": () => this.zoomBy(1 / KEY_ZOOM),
        _: () => this.zoomBy(1 / KEY_ZOOM),
        0: () => this.reset(),
      }[event.key];
      if (!action) return;
      event.preventDefault(); // arrows would scroll the page
      action();
    }

    onContextLost(event) {
      event.preventDefault(); // asks the browser to restore the context
      this.gpu = null;
      this.showMessage(LOST);
    }

    onContextRestored() {
      this.gpu = createProgram(this.gl);
      if (this.model) upload(this.gl, this.gpu, this.model);
      this.hideMessage();
      this.requestDraw();
    }
  }

  /** The narrow surface pages use; the rest of the viewer stays private. */
  function create(canvas) {
    if (!(canvas instanceof HTMLCanvasElement)) throw new TypeError("VisgateViewer.create needs a <canvas>");
    const viewer = new Viewer(canvas);
    return Object.freeze({
      load: (buffer) => viewer.load(buffer),
      clear: () => viewer.clear(),
      dispose: () => viewer.dispose(),
      reset: () => viewer.reset(),
      get supported() {
        return viewer.gl !== null;
      },
      get frames() {
        return viewer.frames;
      },
    });
  }

  window.VisgateViewer = Object.freeze({
    create,
    parseGlb: (buffer) => glb().parseGlb(buffer),
  });
})();
