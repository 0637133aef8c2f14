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
    if (!(event.target instanceof HTMLDialogElement)) return;
    event.target.replaceChildren();
    if (opener && document.contains(opener)) opener.focus();
    opener = null;
  }, true);
})();
