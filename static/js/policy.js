/*
 * The what-if page. htmx fetches the figures as a slider moves (hx-trigger on the input);
 * this script only keeps the number beside each slider, and the matching field of the
 * new-version form, in step with it, so what the owner saves is what they looked at.
 */
(function () {
  "use strict";

  function sync(slider) {
    var output = document.getElementById(slider.dataset.output || "");
    if (output) { output.value = Number(slider.value).toFixed(3); }
    var field = document.getElementById(slider.dataset.sync || "");
    if (field) { field.value = Number(slider.value).toFixed(3); }
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target instanceof HTMLInputElement && target.type === "range" && target.dataset.output) {
      sync(target);
    }
  });
})();
