// Starts Swagger UI on the document this server generates. Kept out of the
// page so the Content-Security-Policy can forbid inline scripts.
(function () {
  var url = document.currentScript.getAttribute("data-openapi-url");
  window.addEventListener("load", function () {
    window.ui = SwaggerUIBundle({
      url: url,
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    });
  });
})();
