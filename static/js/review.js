/*
 * Keyboard shortcuts and focus handling for the review screen (queue/review.html).
 *
 *   a          approve the AI's label
 *   o          override: focus the label choices
 *   1..9       choose the nth label (switches to override)
 *   Enter      in override mode, submit the override
 *   Ctrl+Enter submit from anywhere, even while typing a comment
 *   s          skip: open the skip panel on its reason list; Enter sends it
 *   e          escalate: open the escalation panel on its note; Enter sends it
 *   u          undo the decision just made (while its Undo button is shown)
 *   ?          show or hide the shortcut list;  Escape closes it (or leaves a text field)
 *
 * While an item is shown the page sends a heartbeat that keeps its lease, and gives the
 * item back to the queue when the page is closed (sendBeacon on pagehide). The same goes
 * for the prefetched next item (<template id="prefetched-item">, leased to this reviewer):
 * the moment a decision is sent, it is put on screen read-only, and the server's answer
 * then brings it with its forms (or whatever else the server decided to show). The request
 * names the item previewed (X-Review-Preview); if the server shows that same item, its
 * answer leaves out the item's card and recommendation, and they are taken from the preview.
 *
 * Letter and digit keys are ignored while the focus is in a text field or a select, so
 * typing a comment or picking a reason code by its first letter never decides an item.
 */
(function () {
  "use strict";

  var TYPING_FIELDS =
    "textarea, select, input:not([type=radio]):not([type=checkbox]):not([type=button]):not([type=submit])";
  var lastShownItem = null;

  function byId(id) { return document.getElementById(id); }
  function decisionForm() { return byId("decision-form"); }

  function isTyping(target) {
    return target instanceof Element && (target.matches(TYPING_FIELDS) || target.isContentEditable);
  }

  function busy() {
    // htmx marks a form while its request is in flight: ignore keys so one press = one action.
    var section = byId("review-item");
    return Boolean(section && section.querySelector("form.htmx-request"));
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function openPanel(id, focusId) {
    var panel = byId(id);
    if (!panel) { return false; }
    panel.open = true;
    var field = byId(focusId);
    if (field) { field.focus(); }
    return true;
  }

  function closePanels() {
    ["skip-panel", "escalate-panel"].forEach(function (id) {
      var panel = byId(id);
      if (panel) { panel.open = false; }
    });
  }

  function clickIfPresent(id) {
    var button = byId(id);
    if (button && !button.disabled) { button.click(); return true; }
    return false;
  }

  // Enter in these fields sends their own form (Shift+Enter makes a new line in a note).
  var ENTER_SUBMITS = { skip_reason: "skip-button", skip_comment: "skip-button", escalate_comment: "escalate-button" };

  function setMode(mode) {
    var form = decisionForm();
    if (form) { form.dataset.mode = mode; }
  }

  function mode() {
    var form = decisionForm();
    return form ? form.dataset.mode : null;
  }

  function approve() {
    var button = byId("approve-button");
    if (button && !button.disabled) { button.click(); }
  }

  function submitOverride() {
    var button = byId("override-button");
    if (button) {
      setMode("override");
      button.click();
    }
  }

  function focusOverride() {
    var form = decisionForm();
    if (!form) { return; }
    setMode("override");
    var radio = form.querySelector("input[name=label]:checked") || form.querySelector("input[name=label]");
    if (radio) { radio.focus(); }
  }

  function chooseLabel(digit) {
    var form = decisionForm();
    var radio = form && form.querySelector('input[name=label][data-key="' + digit + '"]');
    if (!radio) { return; }
    radio.checked = true;
    setMode("override");
    radio.focus();
  }

  function toggleHelp(show) {
    var dialog = byId("shortcut-help");
    if (!dialog) { return; }
    var open = typeof show === "boolean" ? show : !dialog.open;
    if (open && !dialog.open) {
      dialog.showModal();
    } else if (!open && dialog.open) {
      dialog.close();
    }
  }

  function focusDecisionArea() {
    var area = byId("decision");
    if (area) { area.focus({ preventScroll: true }); }
  }

  function onKeydown(event) {
    if (event.defaultPrevented || event.altKey || event.metaKey || event.repeat) { return; }
    var dialog = byId("shortcut-help");
    var helpOpen = Boolean(dialog && dialog.open);
    var typing = isTyping(event.target);

    if (event.key === "Escape") {
      if (helpOpen) {
        toggleHelp(false);
        event.preventDefault();
      } else if (event.target instanceof Element && event.target.closest(".side-action")) {
        closePanels();
        focusDecisionArea();
        event.preventDefault();
      } else if (typing) {
        focusDecisionArea();  // leave the field so the shortcuts work again
        event.preventDefault();
      }
      return;
    }
    if (helpOpen && event.key !== "?") { return; }
    if (!decisionForm() && event.key !== "?" && event.key !== "u") { return; }
    if (busy()) { event.preventDefault(); return; }

    var submitter = event.target instanceof Element ? ENTER_SUBMITS[event.target.id] : null;
    if (event.key === "Enter" && submitter && !event.shiftKey) {
      event.preventDefault();
      clickIfPresent(submitter);
      return;
    }
    if (event.key === "Enter" && event.ctrlKey) {
      event.preventDefault();
      if (mode() === "override") { submitOverride(); } else { approve(); }
      return;
    }
    if (event.ctrlKey) { return; }
    if (typing) {
      // Enter on the reason-code select submits the override instead of opening the list.
      if (event.key === "Enter" && event.target.tagName === "SELECT" && mode() === "override") {
        event.preventDefault();
        submitOverride();
      }
      return;
    }
    if (event.key === "Enter") {
      var onControl = event.target instanceof Element && event.target.matches("button, a, summary");
      if (mode() === "override" && !onControl) {
        event.preventDefault();
        submitOverride();
      }
      return;
    }

    var handled = true;
    if (event.key === "?") {
      toggleHelp();
    } else if (event.key === "a") {
      approve();
    } else if (event.key === "o") {
      focusOverride();
    } else if (/^[1-9]$/.test(event.key)) {
      chooseLabel(event.key);
    } else if (event.key === "s") {
      openPanel("skip-panel", "skip_reason");
    } else if (event.key === "e") {
      if (!openPanel("escalate-panel", "escalate_comment")) {
        // Say so: a reviewer who expected the note field would type into the page, and
        // its letters are shortcuts ("a" approves).
        showError("This queue has no second-level queue to escalate to.");
      }
    } else if (event.key === "u") {
      handled = clickIfPresent("undo-button");
    } else {
      handled = false;
    }
    if (handled) { event.preventDefault(); }
  }

  function announce(text) {
    var region = byId("review-status");
    if (region) { region.textContent = text; }
  }

  function showError(text) {
    var box = byId("review-error");
    if (!box) { return; }
    box.textContent = text;
    box.hidden = !text;
  }

  // The leases the page holds: the shown item's and the prefetched one's. A heartbeat keeps
  // them while the page is open, a release gives them back when it goes.
  var lease = { timer: null, releaseUrls: [] };

  function stopHeartbeat() {
    if (lease.timer) { window.clearInterval(lease.timer); }
    lease.timer = null;
    lease.releaseUrls = [];
  }

  function prefetched() {
    return document.querySelector("#review-item template#prefetched-item");
  }

  function beat(url, onLost) {
    fetch(url, { method: "POST", headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" })
      .then(function (response) { if (response.status === 409) { onLost(); } })
      .catch(function () { /* offline for a moment: the next beat tries again */ });
  }

  function startHeartbeat(section) {
    stopHeartbeat();
    var url = section.dataset.heartbeatUrl;
    var seconds = Number(section.dataset.heartbeatSeconds || "0");
    if (!url || !seconds) { return; }
    var next = prefetched();
    lease.releaseUrls = [section.dataset.releaseUrl].concat(next ? [next.dataset.releaseUrl] : []);
    lease.timer = window.setInterval(function () {
      beat(url, function () {
        stopHeartbeat();
        showError("Your hold on this item lapsed and it went back to the queue. " +
                  "Reload the page to get the next item.");
      });
      var upcoming = prefetched();
      if (upcoming) {
        // Lost (it lapsed): drop it, and the next decision's answer brings another item.
        beat(upcoming.dataset.heartbeatUrl, function () { upcoming.remove(); });
      }
    }, seconds * 1000);
  }

  // A decision is on its way: show the prefetched item at once, read-only, in place of the
  // decided one (kept in the page, hidden, so its form's request and its answer carry on).
  // Returns the id of the item put on screen, or null.
  function showPrefetched(section) {
    var next = section.querySelector("template#prefetched-item");
    var grid = section.querySelector(".review-grid:not(.review-preview)");
    if (!next || !grid || section.querySelector(".review-preview")) { return null; }
    grid.hidden = true;
    Array.prototype.forEach.call(section.querySelectorAll(".flash"), function (note) { note.hidden = true; });
    section.insertBefore(next.content.cloneNode(true), grid);
    return next.dataset.itemId;
  }

  // Names the prefetched item a decision's request has put on screen (rendering.py reads it).
  var PREVIEW_HEADER = "X-Review-Preview";
  // The preview's part that stands in for each placeholder of a short answer.
  var PREVIEW_PARTS = { "item-card": ".item-card", "ai-rec": ".ai-rec" };
  var PREVIEW_PREFIX = "next-";
  var ID_ATTRIBUTES = ["id", "for", "aria-labelledby", "aria-describedby"];

  // The preview's ids carry a prefix (so they never clash with the decided item's): drop it
  // in a copy that becomes the item under review, so labels and aria references hold.
  function withoutPreviewPrefix(part) {
    var copy = part.cloneNode(true);
    [copy].concat(Array.prototype.slice.call(copy.querySelectorAll("*"))).forEach(function (element) {
      ID_ATTRIBUTES.forEach(function (name) {
        var value = element.getAttribute(name);
        if (!value || value.indexOf(PREVIEW_PREFIX) < 0) { return; }
        element.setAttribute(name, value.split(" ").map(function (ref) {
          return ref.indexOf(PREVIEW_PREFIX) === 0 ? ref.slice(PREVIEW_PREFIX.length) : ref;
        }).join(" "));
      });
    });
    return copy;
  }

  // The server's answer shows the item previewed and left out what the preview holds (see
  // rendering.render_lineup): fill its placeholders from the preview. False if the preview
  // is not that item (it cannot be, short of a bug): the caller then asks for it in full.
  function fillFromPreview(answerSection) {
    var preview = document.querySelector("#review-item .review-preview");
    if (!preview || preview.dataset.itemId !== answerSection.dataset.itemId) { return false; }
    var slots = answerSection.querySelectorAll("[data-from-preview]");
    for (var i = 0; i < slots.length; i++) {
      var selector = PREVIEW_PARTS[slots[i].dataset.fromPreview];
      var part = selector && preview.querySelector(selector);
      if (!part) { return false; }
      var copy = withoutPreviewPrefix(part);
      while (slots[i].firstChild) { copy.appendChild(slots[i].firstChild); }  // the history
      slots[i].replaceWith(copy);
    }
    return true;
  }

  function completeShortAnswer(event) {
    var html = event.detail.serverResponse;
    if (typeof html !== "string" || html.indexOf("data-from-preview") < 0) { return; }
    var answer = document.createElement("template");
    answer.innerHTML = html;
    var section = answer.content.querySelector("#review-item");
    if (!section || !section.querySelector("[data-from-preview]")) { return; }
    if (fillFromPreview(section)) {
      event.detail.serverResponse = answer.innerHTML;
      return;
    }
    // The decision was saved, but this answer cannot be drawn: ask for the item in full.
    event.detail.shouldSwap = false;
    window.htmx.ajax("GET", window.location.pathname, { target: "#review-item", swap: "outerHTML settle:0ms" });
  }

  // The decision was not accepted (network or server error): back to the decided item.
  function hidePrefetched() {
    var section = byId("review-item");
    var preview = section && section.querySelector(".review-preview");
    if (!preview) { return; }
    preview.remove();
    Array.prototype.forEach.call(section.querySelectorAll("[hidden]"), function (hidden) {
      if (hidden.matches(".review-grid, .flash")) { hidden.hidden = false; }
    });
    focusDecisionArea();
  }

  // Only a decision the server will surely take moves on: approve, or an override with a
  // label and a reason. Anything else comes back with the error shown next to the field.
  function decisionComplete(formData) {
    var action = formData.get("action");
    if (action === "approve") { return true; }
    return action === "override" && Boolean(formData.get("label")) && Boolean(formData.get("reason_code"));
  }

  function expireUndo(section) {
    var form = section.querySelector("#undo-form");
    var deadline = form && Date.parse(form.dataset.deadline);
    if (!deadline) { return; }
    window.setTimeout(function () {
      if (form.isConnected) { form.remove(); }
    }, Math.max(0, deadline - Date.now()));
  }

  window.addEventListener("pagehide", function () {
    if (!navigator.sendBeacon) { return; }
    // The release names this load of the page: on a reload the new page may already have
    // taken the leases over, and the server then leaves them to it.
    var page = document.querySelector("[data-review-page]");
    lease.releaseUrls.forEach(function (url) {
      var data = new FormData();
      data.append("csrf_token", csrfToken());
      if (page) { data.append("page", page.dataset.reviewPage); }
      navigator.sendBeacon(url, data);
    });
    stopHeartbeat();
  });

  // Back (or forward) to this page from the browser's back-forward cache: as it went, it
  // released its items (pagehide above), so what it shows may be another reviewer's by
  // now, and the first key pressed would be refused. Load it anew instead: the server
  // resumes the reviewer's leases or hands out the next items.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { window.location.reload(); }
  });

  // Called for the item element on page load and after every swap of it.
  function itemShown(section) {
    showError("");
    startHeartbeat(section);
    expireUndo(section);
    var externalId = section.dataset.externalId || "";
    var invalid = section.querySelector("[aria-invalid=true], .field-error");
    var panel = section.dataset.openPanel;
    if (panel && invalid) {
      var panelField = section.querySelector("#" + panel + "-panel [aria-invalid=true]");
      (panelField || byId(panel + "-panel")).focus();
    } else if (invalid) {
      var field = invalid.matches("input, select, textarea")
        ? invalid
        : section.querySelector("#override-section input[name=label]");
      (field || byId("decision") || section).focus();
    } else if (externalId && externalId !== lastShownItem) {
      window.scrollTo(0, 0);
      focusDecisionArea();
    }
    if (externalId !== lastShownItem) {
      announce(externalId ? "Item " + externalId + " loaded" : "Nothing to review right now");
    }
    lastShownItem = externalId;
  }

  document.addEventListener("keydown", onKeydown, true);

  document.addEventListener("click", function (event) {
    var target = event.target instanceof Element ? event.target : null;
    if (target && target.closest("[data-help-toggle]")) { toggleHelp(true); }
    if (target && target.closest("[data-help-close]")) { toggleHelp(false); }
  });

  // Choosing a label with the mouse also means "override".
  document.addEventListener("change", function (event) {
    if (event.target instanceof Element && event.target.matches("#decision-form input[name=label]")) {
      setMode("override");
    }
  });

  document.addEventListener("htmx:load", function (event) {
    var elt = event.detail && event.detail.elt;
    if (elt && elt.id === "review-item") { itemShown(elt); }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    // A lapsed login answers with the login page (after a redirect): go there for real.
    var url = event.detail.xhr && event.detail.xhr.responseURL;
    if (url && new URL(url).pathname === "/login") {
      event.detail.shouldSwap = false;
      window.location.assign(url);
      return;
    }
    if (event.detail.shouldSwap && event.detail.target && event.detail.target.id === "review-item") {
      completeShortAnswer(event);
    }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt;
    var config = event.detail.requestConfig;
    if (form && form.id === "decision-form" && config && config.formData &&
        decisionComplete(config.formData)) {
      var previewed = showPrefetched(form.closest("#review-item"));
      // The request is open but not sent yet: a header can still be added.
      if (previewed) { event.detail.xhr.setRequestHeader(PREVIEW_HEADER, previewed); }
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    hidePrefetched();
    var status = event.detail.xhr ? event.detail.xhr.status : "";
    showError("The decision could not be sent (HTTP " + status + "). Reload the page and try again.");
  });

  document.addEventListener("htmx:sendError", function () {
    hidePrefetched();
    showError("The server could not be reached. Check your connection and try again.");
  });

  document.addEventListener("DOMContentLoaded", function () {
    var section = byId("review-item");
    if (section) { itemShown(section); }
  });
})();
