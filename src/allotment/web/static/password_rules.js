// Each password rule under its field, checked as one types: the rules and their words come from the server
// (web/password_rules.py), which checks the password again when the form is sent and has the last word.
function checkPasswordRules(list) {
  const field = document.getElementById(list.dataset.passwordRules);
  if (!field) return;
  const value = field.value;
  const length = [...value].length;
  for (const item of list.querySelectorAll("li[data-rule]")) {
    const data = item.dataset;
    let met = true;
    if (data.minLength) met = length >= Number(data.minLength);
    if (data.maxLength) met = length <= Number(data.maxLength);
    if (data.pattern) met = new RegExp(data.pattern, "u").test(value);
    const state = value === "" ? "" : (met ? "met" : "unmet");
    item.dataset.state = state;
    const mark = item.querySelector(".rule-state");
    if (mark) mark.textContent = state === "met" ? "✓ " : state === "unmet" ? "✗ " : "• ";
    const said = item.querySelector(".visually-hidden");
    if (said) said.textContent = state === "met" ? " (met)" : state === "unmet" ? " (not met)" : "";
  }
}
document.addEventListener("input", (event) => {
  if (!event.target.id) return;
  for (const list of document.querySelectorAll(`[data-password-rules="${event.target.id}"]`)) checkPasswordRules(list);
});
