"use strict";
// The viewer test page: ?model=<url> loads that file; the summary or the error lands in
// #result, whose data-state says which ("loaded" or "error"). ?unsized=1 leaves the canvas
// to its own size, as a page without the console's stylesheet would.
(async function () {
  const params = new URLSearchParams(window.location.search);
  const canvas = document.getElementById("viewer-canvas");
  const result = document.getElementById("result");
  if (params.get("unsized")) canvas.classList.add("unsized");
  window.viewer = window.VisgateViewer.create(canvas);
  const model = params.get("model");
  if (!model) return;
  try {
    const response = await fetch(model);
    const summary = window.viewer.load(await response.arrayBuffer());
    result.textContent = `${summary.meshes} meshes, ${summary.triangles} triangles, ${summary.vertices} vertices`;
    result.dataset.state = "loaded";
  } catch (error) {
    result.textContent = `${error.name}: ${error.message}`;
    result.dataset.state = "error";
  }
})();
