// The submit form's sliders: moving one writes its amount into the field it fills (memory with its unit); typing a
// plain number in the field moves the slider. The slider stops at what the user's policy leaves; the server checks.
document.addEventListener("input", (event) => {
  const slider = event.target.closest("input[type=range][data-fills]");
  if (slider) {
    const field = document.getElementById(slider.dataset.fills);
    if (field) field.value = slider.value + (slider.dataset.unit || "");
    return;
  }
  const field = event.target;
  if (!field.id) return;
  const linked = document.querySelector(`input[type=range][data-fills="${field.id}"]`);
  if (!linked) return;
  const unit = linked.dataset.unit || "";
  const text = field.value.trim();
  const number = Number(unit && text.endsWith(unit) ? text.slice(0, -unit.length) : text);
  if (text !== "" && Number.isFinite(number)) linked.value = String(Math.min(number, Number(linked.max)));
});
