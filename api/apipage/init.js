// Starts Swagger UI on the gateway's own document. It lives in a file of
// its own because the page's Content-Security-Policy allows no inline script.
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // The route list puts each route's required roles and minimum level
    // into x-required-roles and x-minimum-level: show them.
    showExtensions: true,
    // No badge from the public validator: the page makes no request
    // outside the gateway.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
};
