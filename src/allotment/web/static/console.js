// The console's own behaviour: the phone menu and copy buttons. Everything else is htmx or plain forms.
document.addEventListener("click", (event) => {
  const menu = event.target.closest("[data-menu-button]");
  if (menu) {
    const sidebar = menu.closest(".sidebar");
    const open = sidebar.classList.toggle("open");
    menu.setAttribute("aria-expanded", String(open));
    return;
  }
  const copy = event.target.closest("[data-copy-target]");
  if (copy) {
    const source = document.getElementById(copy.dataset.copyTarget);
    const text = source ? source.textContent.trim() : "";
    const done = () => { copy.textContent = "Copied"; setTimeout(() => { copy.textContent = "Copy"; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => selectText(source, copy));
    } else {
      selectText(source, copy);
    }
  }
});

// Without the clipboard API (plain http), select the text so Ctrl+C copies it.
function selectText(source, button) {
  const range = document.createRange();
  range.selectNodeContents(source);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  button.textContent = document.execCommand("copy") ? "Copied" : "Selected: press Ctrl+C";
}

// A card whose table is wider than the screen scrolls sideways; keyboard users reach it as a named region.
function markScrollingCards(root) {
  for (const card of root.querySelectorAll(".card")) {
    if (card.scrollWidth > card.clientWidth + 1) {
      card.tabIndex = 0;
      card.setAttribute("role", "region");
      if (!card.hasAttribute("aria-label")) {
        const heading = card.querySelector("h2, h3, caption");
        card.setAttribute("aria-label", heading ? heading.textContent.trim() : "Table");
      }
    }
  }
}
document.addEventListener("DOMContentLoaded", () => markScrollingCards(document));
document.addEventListener("htmx:afterSwap", () => markScrollingCards(document));
window.addEventListener("resize", () => markScrollingCards(document));

// Field errors of a form sent with htmx (see web/errors.py): each message under its input, in the server's words.
document.addEventListener("allot:field-errors", (event) => {
  const form = (event.target.closest && event.target.closest("form")) || event.target;
  for (const old of form.querySelectorAll(".field-errors[data-sent]")) old.remove();
  for (const input of form.querySelectorAll("[aria-invalid][data-sent-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("data-sent-invalid");
  }
  let first = null;
  const unplaced = [];
  for (const [name, messages] of Object.entries(event.detail.errors || {})) {
    const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (!input) { unplaced.push(...messages); continue; }
    const box = document.createElement("small");
    box.className = "field-errors";
    box.id = `${form.id || "form"}-${name.replace(/[^\w-]/g, "-")}-errors`;
    box.dataset.sent = "";
    box.dataset.testid = `errors-${name}`;
    for (const message of messages) {
      const line = document.createElement("span");
      line.textContent = message.charAt(0).toUpperCase() + message.slice(1);
      box.append(line);
    }
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("data-sent-invalid", "");
    input.setAttribute("aria-describedby", box.id);
    (input.closest("label") || input).insertAdjacentElement("afterend", box);
    first = first || input;
  }
  if (unplaced.length || !first) {
    const area = document.getElementById("notice-area");
    if (area) {
      const notice = document.createElement("div");
      notice.className = "notice error";
      notice.setAttribute("role", "alert");
      notice.textContent = unplaced.length ? unplaced.join(" ") : event.detail.detail;
      area.replaceChildren(notice);
    }
  }
  if (first) first.focus();
});
