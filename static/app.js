// Autofactura's one small script: native <dialog> modals for htmx-loaded fragments.
// A fragment swapped into a <dialog> opens it as a modal (focus stays inside, Esc closes);
// [data-close-dialog] closes it; focus goes back to what opened it.
(function () {
  "use strict";
  var opener = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.detail.target;
    if (target instanceof HTMLDialogElement && !target.open) opener = document.activeElement;
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var dialog = event.detail.target;
    if (dialog instanceof HTMLDialogElement && !dialog.open) dialog.showModal();
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-close-dialog]");
    if (button && button.closest("dialog")) button.closest("dialog").close();
  });
  document.addEventListener("close", function (event) {
    if (!(event.target instanceof HTMLDialogElement) || event.target.hasAttribute("data-keep")) return;
    event.target.replaceChildren();
    if (opener && document.contains(opener)) opener.focus();
    opener = null;
  }, true);

  // The invoice filters' search box sends its query as it is typed (debounced); its "change"
  // on leaving the field would send the same query again and replace the rows that "Cargar
  // más" had just appended. The other filters still send on "change".
  document.addEventListener("change", function (event) {
    if (event.target.id === "q" && event.target.form && event.target.form.id === "filtros") event.stopPropagation();
  }, true);

  // A page or a swapped form that comes back with errors puts the focus on the first field to
  // fix (its message is tied to it by aria-describedby, so it is read out), unless the
  // customer is already somewhere else.
  function focusFirstError(root) {
    var field = root.querySelector && root.querySelector("[aria-invalid=true]");
    var active = document.activeElement;
    if (field && (!active || active === document.body)) field.focus();
  }
  focusFirstError(document);
  document.addEventListener("htmx:afterSettle", function (event) { focusFirstError(event.detail.elt); });

  // Inline validation re-renders a field's wrapper ("campo-…"). On a slow network its answer
  // may come after the customer typed or chose more: a swap (or out-of-band swap) of a field
  // whose value changed since the request left is dropped; the newer input sent its own.
  function valuesOf(wrapper) {
    var out = [];
    wrapper.querySelectorAll("input,select,textarea").forEach(function (f) { out.push(f.name + "=" + f.value); });
    return out.join("&");
  }
  var answering = null; // the field values the answer being swapped was asked with
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = event.detail.elt.closest("form");
    if (!form || event.detail.elt.id.indexOf("campo-") !== 0) return;
    var sent = event.detail.xhr.sentValues = {};
    form.querySelectorAll("[id^=campo-]").forEach(function (w) { sent[w.id] = valuesOf(w); });
  });
  function stale(event) {
    var target = event.detail.target;
    if (answering && target.id in answering && answering[target.id] !== valuesOf(target)) event.detail.shouldSwap = false;
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    answering = event.detail.xhr.sentValues || null; // out-of-band swaps of this answer follow
    stale(event);
  });
  document.addEventListener("htmx:oobBeforeSwap", stale);

  // Pressing a form's submit button blurs the field being typed in, which asks for its inline
  // check; that answer could move the button (a message appears or goes) before the press is
  // released, and the click would miss it. While a submit button is pressed, no check is asked:
  // the submit itself checks every field.
  var pressing = null;
  document.addEventListener("pointerdown", function (event) {
    var button = event.target.closest("button[type=submit],button:not([type]),input[type=submit]");
    pressing = button && button.form;
  }, true);
  document.addEventListener("pointerup", function () { setTimeout(function () { pressing = null; }, 0); }, true);
  document.addEventListener("pointercancel", function () { pressing = null; }, true);
  document.addEventListener("htmx:confirm", function (event) {
    var elt = event.detail.elt;
    if (pressing && elt.id.indexOf("campo-") === 0 && elt.closest("form") === pressing) event.preventDefault();
  });

  // Kiosk (body[data-kiosk-idle]): after that many seconds without input, the #kiosco-aviso
  // dialog counts down data-kiosk-countdown seconds, then posts its form (/kiosco/terminar),
  // which wipes the session. Closing it ("Continuar", Esc) starts over. While the customer is
  // active, the server hears of it (data-kiosk-ping), for it wipes idle sessions too.
  var body = document.body;
  var idle = Number(body.dataset.kioskIdle);
  var warning = document.getElementById("kiosco-aviso");
  if (idle > 0 && warning) {
    var count = Number(body.dataset.kioskCountdown) || 15;
    var shown = warning.querySelector("[data-countdown]");
    var token = JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRFToken"];
    var timer = 0, ticker = 0, pinged = Date.now();
    var ping = function () {
      pinged = Date.now();
      fetch(body.dataset.kioskPing, {method: "POST", headers: {"X-CSRFToken": token}})
        .catch(function () {});
    };
    var warn = function () {
      var left = count;
      shown.textContent = left;
      warning.showModal();
      ticker = setInterval(function () {
        left -= 1;
        shown.textContent = Math.max(left, 0);
        if (left <= 0) {
          clearInterval(ticker);
          warning.querySelector("form").submit();
        }
      }, 1000);
    };
    var arm = function () {
      clearTimeout(timer);
      clearInterval(ticker);
      timer = setTimeout(warn, idle * 1000);
    };
    ["pointerdown", "keydown", "input", "wheel"].forEach(function (type) {
      document.addEventListener(type, function () {
        if (warning.open) return;
        arm();
        if (Date.now() - pinged > idle * 500) ping();
      }, {capture: true, passive: true});
    });
    warning.addEventListener("close", function () { arm(); ping(); });
    // A page brought back by the back button from memory is asked for again (and is gone).
    window.addEventListener("pageshow", function (event) { if (event.persisted) location.reload(); });
    arm();
  }

  // Kiosk "Imprimir" (a[data-print]): the PDF is printed from a hidden frame; the page stays.
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-print]");
    if (!link) return;
    event.preventDefault();
    var frame = document.getElementById("impresion");
    if (frame) frame.remove();
    frame = document.createElement("iframe");
    frame.id = "impresion";
    frame.className = "print-frame";
    frame.setAttribute("aria-hidden", "true");
    frame.addEventListener("load", function () {
      try { frame.contentWindow.print(); } catch (e) { location.href = link.href; }
    });
    frame.src = link.href;
    body.appendChild(frame);
  });
})();
