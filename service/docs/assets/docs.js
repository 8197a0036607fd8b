// Starts Swagger UI on /docs. A file of its own, not an inline script, so the page's CSP can forbid inline code.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
    deepLinking: true,
    docExpansion: "list",
    // The default would send the contract to a public validator: closed networks, and none of its business.
    validatorUrl: null,
  });
});
