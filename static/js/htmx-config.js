/*
 * htmx settings, kept in a static file so pages need no inline script (ready for a strict
 * Content-Security-Policy). Loaded with `defer` after htmx and before DOMContentLoaded,
 * which is when htmx reads its configuration.
 */
(function () {
  "use strict";
  if (!window.htmx) { return; }
  var config = window.htmx.config;
  // A 422 carries the same item re-rendered with the error next to the bad field, so it is
  // swapped like a success. We keep the real status (rather than answering 200 with errors)
  // so tests, logs and scripts can tell a rejected decision from a saved one. Other 4xx and
  // 5xx are not swapped; review.js shows a message for them instead.
  config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "422", swap: true, error: false },
    { code: "[45]..", swap: false, error: true }
  ];
  // No inline styles or eval: the indicator style lives in app.css, and we use no hx-on.
  config.includeIndicatorStyles = false;
  config.allowEval = false;
  config.allowScriptTags = false;
})();
