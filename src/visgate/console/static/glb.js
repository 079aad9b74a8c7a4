/* Visgate console: a reader for binary glTF 2.0 (GLB) files, used by viewer.js.
 *
 * It turns a GLB into flat world-space triangle lists (three vertices per triangle, each with
 * a position and a normal) and one colour per primitive. The renderer then needs no index
 * buffers, no extension for 32-bit indices and no scene graph of its own.
 */
(function () {
  "use strict";

  const MAGIC = 0x46546c67; // "glTF", little-endian
  const CHUNK_JSON = 0x4e4f534a;
  const CHUNK_BIN = 0x004e4942;
  const TRIANGLES = 4;
  const MAX_DEPTH = 64; // deeper node trees are taken for cycles
  const WIDTH = { SCALAR: 1, VEC2: 2, VEC3: 3, VEC4: 4, MAT2: 4, MAT3: 9, MAT4: 16 };
  // componentType → [bytes, DataView getter, divisor for normalized integers]
  const COMPONENT = {
    5120: [1, "getInt8", 127],
    5121: [1, "getUint8", 255],
    5122: [2, "getInt16", 32767],
    5123: [2, "getUint16", 65535],
    5125: [4, "getUint32", 4294967295],
    5126: [4, "getFloat32", 1],
  };
  // Tableau 10: distinct at a glance, so the parts of a model without materials are told apart.
  const PALETTE = [
    [0.306, 0.475, 0.655], [0.949, 0.557, 0.169], [0.882, 0.341, 0.349],
    [0.463, 0.718, 0.698], [0.349, 0.631, 0.310], [0.929, 0.788, 0.282],
    [0.690, 0.478, 0.631], [1.0, 0.616, 0.655], [0.612, 0.459, 0.373], [0.729, 0.690, 0.675],
  ];
  // Faces meeting at less than 60° share a smooth normal; sharper edges (a box) stay sharp.
  const SMOOTH_COS = Math.cos(Math.PI / 3);

  class GlbError extends Error {
    constructor(message) {
      super(message);
      this.name = "GlbError";
    }
  }

  function readChunks(buffer) {
    if (!(buffer instanceof ArrayBuffer)) throw new GlbError("Expected the GLB file as an ArrayBuffer");
    if (buffer.byteLength < 20) {
      throw new GlbError(`Not a GLB file: it is only ${buffer.byteLength} bytes long`);
    }
    const view = new DataView(buffer);
    if (view.getUint32(0, true) !== MAGIC) {
      throw new GlbError("Not a GLB file: it does not start with the bytes 'glTF'");
    }
    const version = view.getUint32(4, true);
    if (version !== 2) throw new GlbError(`Unsupported glTF version ${version}: only 2 is read`);
    const length = view.getUint32(8, true);
    if (length > buffer.byteLength) {
      throw new GlbError(`Truncated GLB file: ${buffer.byteLength} of ${length} bytes`);
    }
    let json = null;
    let bin = null;
    for (let offset = 12; offset + 8 <= length; ) {
      const size = view.getUint32(offset, true);
      const type = view.getUint32(offset + 4, true);
      const start = offset + 8;
      if (start + size > length) throw new GlbError("Truncated GLB file: a chunk runs past its end");
      if (json === null && type !== CHUNK_JSON) {
        throw new GlbError("Invalid GLB file: its first chunk is not the JSON chunk");
      }
      if (type === CHUNK_JSON && json === null) json = parseJson(new Uint8Array(buffer, start, size));
      else if (type === CHUNK_BIN && bin === null) bin = new DataView(buffer, start, size);
      offset = start + size;
    }
    if (json === null) throw new GlbError("Invalid GLB file: the JSON chunk is missing");
    return { gltf: json, bin };
  }

  function parseJson(bytes) {
    let value;
    try {
      value = JSON.parse(new TextDecoder("utf-8").decode(bytes));
    } catch (error) {
      throw new GlbError(`Invalid GLB file: its JSON chunk does not parse (${error.message})`);
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      throw new GlbError("Invalid GLB file: its JSON chunk is not an object");
    }
    return value;
  }

  /** One accessor's values as a flat typed array (stride, offsets and normalization applied). */
  function readAccessor(gltf, bin, index, what, ArrayType) {
    const accessor = (gltf.accessors || [])[index];
    if (!accessor) throw new GlbError(`Invalid GLB file: ${what} uses accessor ${index}, which is missing`);
    const width = WIDTH[accessor.type];
    const component = COMPONENT[accessor.componentType];
    const count = accessor.count;
    if (!width || !component || !Number.isInteger(count) || count < 0) {
      throw new GlbError(`Unsupported accessor ${index} (${accessor.type}, ${accessor.componentType})`);
    }
    if (accessor.sparse) throw new GlbError(`Unsupported accessor ${index}: sparse accessors`);
    const out = new ArrayType(count * width);
    if (accessor.bufferView === undefined) return out; // all zeros, as the specification says
    const view = (gltf.bufferViews || [])[accessor.bufferView];
    if (!view) throw new GlbError(`Invalid GLB file: accessor ${index} has no buffer view`);
    const buffer = (gltf.buffers || [])[view.buffer];
    if (view.buffer !== 0 || !buffer || buffer.uri !== undefined) {
      throw new GlbError("Unsupported GLB file: it refers to data outside the file");
    }
    if (!bin) throw new GlbError("Invalid GLB file: the BIN chunk its accessors read is missing");
    const [bytes, getter, divisor] = component;
    const stride = view.byteStride || width * bytes;
    const viewStart = view.byteOffset || 0;
    const start = viewStart + (accessor.byteOffset || 0);
    const end = count ? start + (count - 1) * stride + width * bytes : start;
    if (end > viewStart + view.byteLength || viewStart + view.byteLength > bin.byteLength) {
      throw new GlbError(`Invalid GLB file: accessor ${index} reads past the end of the file`);
    }
    const scale = accessor.normalized ? 1 / divisor : 1;
    for (let i = 0; i < count; i += 1) {
      for (let c = 0; c < width; c += 1) {
        out[i * width + c] = bin[getter](start + i * stride + c * bytes, true) * scale;
      }
    }
    return out;
  }

  function multiply(a, b) {
    const out = new Array(16);
    for (let col = 0; col < 4; col += 1) {
      for (let row = 0; row < 4; row += 1) {
        let sum = 0;
        for (let k = 0; k < 4; k += 1) sum += a[k * 4 + row] * b[col * 4 + k];
        out[col * 4 + row] = sum;
      }
    }
    return out;
  }

  /** A node's local matrix (column-major): its `matrix`, else translation · rotation · scale. */
  function localMatrix(node) {
    if (Array.isArray(node.matrix) && node.matrix.length === 16) return node.matrix.map(Number);
    const [tx, ty, tz] = node.translation || [0, 0, 0];
    const [x, y, z, w] = node.rotation || [0, 0, 0, 1];
    const [sx, sy, sz] = node.scale || [1, 1, 1];
    return [
      (1 - 2 * (y * y + z * z)) * sx, 2 * (x * y + z * w) * sx, 2 * (x * z - y * w) * sx, 0,
      2 * (x * y - z * w) * sy, (1 - 2 * (x * x + z * z)) * sy, 2 * (y * z + x * w) * sy, 0,
      2 * (x * z + y * w) * sz, 2 * (y * z - x * w) * sz, (1 - 2 * (x * x + y * y)) * sz, 0,
      tx, ty, tz, 1,
    ];
  }

  /** Inverse transpose of the upper 3×3 (up to scale): it keeps normals normal to the surface. */
  function normalMatrix(m) {
    const [a, b, c, d, e, f, g, h, i] = [m[0], m[1], m[2], m[4], m[5], m[6], m[8], m[9], m[10]];
    return [e * i - f * h, f * g - d * i, d * h - e * g,
            c * h - b * i, a * i - c * g, b * g - a * h,
            b * f - c * e, c * d - a * f, a * e - b * d];
  }

  /** Every mesh the default scene draws, with its world matrix. */
  function meshInstances(gltf) {
    const nodes = gltf.nodes || [];
    const identity = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    if (!nodes.length) return (gltf.meshes || []).map((_, mesh) => ({ mesh, matrix: identity, name: "" }));
    let roots;
    if (Array.isArray(gltf.scenes) && gltf.scenes.length) {
      const scene = gltf.scenes[gltf.scene || 0];
      if (!scene) throw new GlbError(`Invalid GLB file: scene ${gltf.scene} is missing`);
      roots = scene.nodes || [];
    } else {
      const children = new Set(nodes.flatMap((node) => node.children || []));
      roots = nodes.map((_, index) => index).filter((index) => !children.has(index));
    }
    const found = [];
    const visit = (index, parent, depth) => {
      const node = nodes[index];
      if (!node) throw new GlbError(`Invalid GLB file: node ${index} is missing`);
      if (depth > MAX_DEPTH) throw new GlbError("Invalid GLB file: its node tree has a cycle");
      const matrix = multiply(parent, localMatrix(node));
      if (node.mesh !== undefined) found.push({ mesh: node.mesh, matrix, name: node.name || "" });
      for (const child of node.children || []) visit(child, matrix, depth + 1);
    };
    for (const root of roots) visit(root, identity, 0);
    return found;
  }

  function baseColor(gltf, primitive, instanceIndex) {
    const material = primitive.material === undefined ? null : (gltf.materials || [])[primitive.material];
    const factor = material && material.pbrMetallicRoughness && material.pbrMetallicRoughness.baseColorFactor;
    if (Array.isArray(factor) && factor.length >= 3 && factor.slice(0, 3).every(Number.isFinite)) {
      return factor.slice(0, 3);
    }
    return PALETTE[instanceIndex % PALETTE.length];
  }

  /** World-space triangles of one primitive: positions and normals, three vertices each. */
  function bakePrimitive(gltf, bin, primitive, matrix, label) {
    const attributes = primitive.attributes || {};
    const accessors = gltf.accessors || [];
    if (attributes.POSITION === undefined) throw new GlbError(`Invalid GLB file: ${label} has no POSITION`);
    if ((accessors[attributes.POSITION] || {}).type !== "VEC3") {
      throw new GlbError(`Invalid GLB file: ${label} POSITION is not a VEC3 accessor`);
    }
    const local = readAccessor(gltf, bin, attributes.POSITION, `${label} POSITION`, Float32Array);
    const vertexCount = local.length / 3;
    const indices = primitive.indices === undefined
      ? Uint32Array.from({ length: vertexCount }, (_, i) => i)
      : readAccessor(gltf, bin, primitive.indices, `${label} indices`, Uint32Array);
    const triangles = Math.floor(indices.length / 3);
    for (let i = 0; i < triangles * 3; i += 1) {
      if (indices[i] >= vertexCount) throw new GlbError(`Invalid GLB file: ${label} has an index out of range`);
    }
    const world = transform(local, matrix, true);
    const positions = new Float32Array(triangles * 9);
    for (let i = 0; i < triangles * 3; i += 1) {
      const v = indices[i] * 3;
      positions[i * 3] = world[v];
      positions[i * 3 + 1] = world[v + 1];
      positions[i * 3 + 2] = world[v + 2];
    }
    let normals = null;
    if (attributes.NORMAL !== undefined && (accessors[attributes.NORMAL] || {}).type === "VEC3") {
      const given = readAccessor(gltf, bin, attributes.NORMAL, `${label} NORMAL`, Float32Array);
      if (given.length === local.length) normals = cornerNormals(transform(given, normalMatrix(matrix), false), indices, triangles);
    }
    if (!normals) normals = creaseNormals(world, indices, triangles, vertexCount);
    return { positions, normals, triangles, vertices: vertexCount };
  }

  /** Applies a 4×4 matrix to points, or (as a 3×3 stored in nine numbers) to directions. */
  function transform(values, m, isPoint) {
    const out = new Float32Array(values.length);
    for (let i = 0; i < values.length; i += 3) {
      const [x, y, z] = [values[i], values[i + 1], values[i + 2]];
      if (isPoint) {
        out[i] = m[0] * x + m[4] * y + m[8] * z + m[12];
        out[i + 1] = m[1] * x + m[5] * y + m[9] * z + m[13];
        out[i + 2] = m[2] * x + m[6] * y + m[10] * z + m[14];
      } else {
        out[i] = m[0] * x + m[3] * y + m[6] * z;
        out[i + 1] = m[1] * x + m[4] * y + m[7] * z;
        out[i + 2] = m[2] * x + m[5] * y + m[8] * z;
      }
    }
    return out;
  }

  /** The file's own normals per triangle corner, of unit length (a zero normal faces the viewer). */
  function cornerNormals(given, indices, triangles) {
    const out = new Float32Array(triangles * 9);
    for (let i = 0; i < triangles * 3; i += 1) {
      const v = indices[i] * 3;
      setUnit(out, i * 3, given[v], given[v + 1], given[v + 2]);
    }
    return out;
  }

  function setUnit(out, at, x, y, z) {
    const length = Math.hypot(x, y, z);
    const ok = length > 1e-12;
    out[at] = ok ? x / length : 0;
    out[at + 1] = ok ? y / length : 0;
    out[at + 2] = ok ? z / length : 1;
  }

  /** Normals for a file without any: per corner, the area-weighted mean of the faces around its
   * vertex that meet the corner's face at under 60°, so curved surfaces look smooth and creases
   * stay sharp. */
  function creaseNormals(world, indices, triangles, vertexCount) {
    const face = new Float32Array(triangles * 3); // cross products: length is twice the area
    const unit = new Float32Array(triangles * 3);
    for (let t = 0; t < triangles; t += 1) {
      const [a, b, c] = [indices[t * 3] * 3, indices[t * 3 + 1] * 3, indices[t * 3 + 2] * 3];
      const u = [world[b] - world[a], world[b + 1] - world[a + 1], world[b + 2] - world[a + 2]];
      const v = [world[c] - world[a], world[c + 1] - world[a + 1], world[c + 2] - world[a + 2]];
      const n = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
      face.set(n, t * 3);
      const length = Math.hypot(n[0], n[1], n[2]);
      if (length > 0) unit.set([n[0] / length, n[1] / length, n[2] / length], t * 3);
    }
    // the faces around each vertex, as one flat list with offsets (compressed sparse rows)
    const starts = new Uint32Array(vertexCount + 1);
    for (let i = 0; i < triangles * 3; i += 1) starts[indices[i] + 1] += 1;
    for (let v = 0; v < vertexCount; v += 1) starts[v + 1] += starts[v];
    const fill = starts.slice(0, vertexCount);
    const around = new Uint32Array(triangles * 3);
    for (let i = 0; i < triangles * 3; i += 1) around[fill[indices[i]]++] = Math.floor(i / 3);
    const out = new Float32Array(triangles * 9);
    for (let i = 0; i < triangles * 3; i += 1) {
      const t = Math.floor(i / 3);
      const v = indices[i];
      let [x, y, z] = [0, 0, 0];
      for (let k = starts[v]; k < starts[v + 1]; k += 1) {
        const f = around[k] * 3;
        const cos = unit[f] * unit[t * 3] + unit[f + 1] * unit[t * 3 + 1] + unit[f + 2] * unit[t * 3 + 2];
        if (cos >= SMOOTH_COS) [x, y, z] = [x + face[f], y + face[f + 1], z + face[f + 2]];
      }
      setUnit(out, i * 3, x, y, z);
    }
    return out;
  }

  /**
   * Parses a GLB file. Returns {meshes, triangles, vertices, bounds: {min, max}, draws}, where
   * each draw is {name, color: [r, g, b], positions, normals, triangles} in world space.
   * Throws a GlbError that says what is wrong with a malformed file.
   */
  function parseGlb(buffer) {
    const { gltf, bin } = readChunks(buffer);
    const draws = [];
    const summary = { meshes: 0, triangles: 0, vertices: 0 };
    const min = [Infinity, Infinity, Infinity];
    const max = [-Infinity, -Infinity, -Infinity];
    meshInstances(gltf).forEach((instance, instanceIndex) => {
      const mesh = (gltf.meshes || [])[instance.mesh];
      if (!mesh) throw new GlbError(`Invalid GLB file: mesh ${instance.mesh} is missing`);
      let drawn = false;
      (mesh.primitives || []).forEach((primitive, p) => {
        if ((primitive.mode === undefined ? TRIANGLES : primitive.mode) !== TRIANGLES) return;
        const baked = bakePrimitive(gltf, bin, primitive, instance.matrix, `mesh ${instance.mesh} primitive ${p}`);
        if (!baked.triangles) return;
        for (let i = 0; i < baked.positions.length; i += 1) {
          min[i % 3] = Math.min(min[i % 3], baked.positions[i]);
          max[i % 3] = Math.max(max[i % 3], baked.positions[i]);
        }
        const name = mesh.name || instance.name || `mesh ${instance.mesh}`;
        draws.push({ name, color: baseColor(gltf, primitive, instanceIndex), ...baked });
        summary.triangles += baked.triangles;
        summary.vertices += baked.vertices;
        drawn = true;
      });
      if (drawn) summary.meshes += 1;
    });
    if (min.some((value) => !Number.isFinite(value)) && draws.length) {
      throw new GlbError("Invalid GLB file: its positions are not finite numbers");
    }
    return { ...summary, bounds: { min, max }, draws };
  }

  // `multiply` too: the viewer composes its camera with the same column-major product.
  window.VisgateGlb = Object.freeze({ parseGlb, GlbError, multiply });
})();
