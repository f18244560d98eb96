// The resource-policy dialog (Backend.AI's): ticking a cap's Unlimited box disables its input, as the dialog does;
// unticking it brings the input back, focused. The server decides either way (a value and a ticked box are refused).
(function () {
  function sync(box, focus) {
    var input = document.getElementById(box.dataset.unlimitedFor);
    if (!input) return;
    input.disabled = box.checked;
    if (box.checked) input.value = "";
    else if (focus) input.focus();
  }
  function setUp(root) {
    root.querySelectorAll("input[data-unlimited-for]").forEach(function (box) {
      if (box.dataset.bound) return;
      box.dataset.bound = "1";
      sync(box, false);
      box.addEventListener("change", function () { sync(box, true); });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  document.addEventListener("htmx:afterSwap", function (event) { setUp(event.target); });
})();
