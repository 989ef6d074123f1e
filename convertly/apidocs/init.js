// Renders the API reference from the server's own /openapi.json (a URL relative to this
// page, so a --root-path prefix is kept). No validator badge: it would call
// validator.swagger.io.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: document.body.dataset.spec,
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
  });
});
