const $ = (id) => document.getElementById(id);
async function call(path, body) {
  const headers = {"Content-Type": "application/json"};
  if ($("key").value) headers["Authorization"] = "Bearer " + $("key").value;  // (with API keys on)
  const r = await fetch(path, {method: "POST", headers, body: JSON.stringify(body)});
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
function bars(probs) {
  const box = $("bars"); box.replaceChildren();
  for (const [label, p] of Object.entries(probs)) {
    const row = document.createElement("div"); row.className = "row";
    const name = document.createElement("span"); name.textContent = label;
    const track = document.createElement("div"); const bar = document.createElement("div");
    bar.className = "bar"; bar.style.width = (100 * p).toFixed(1) + "%"; track.appendChild(bar);
    const val = document.createElement("span"); val.textContent = (100 * p).toFixed(1) + " %";
    row.append(name, track, val); box.appendChild(row);
  }
}
$("form").addEventListener("submit", async (e) => {
  e.preventDefault(); $("error").textContent = "";
  try {
    const d = await call("/predict", {text: $("text").value});
    $("label").textContent = d.label; $("confidence").textContent = (100 * d.confidence).toFixed(1) + " %";
    bars(d.probabilities); $("result").hidden = false;
  } catch (err) { $("result").hidden = true; $("error").textContent = err.message; }
});
$("batch").addEventListener("click", async () => {
  $("error").textContent = "";
  try {
    const texts = JSON.parse($("examples").textContent);
    const d = await call("/predict/batch", {texts});
    const body = $("batch-rows"); body.replaceChildren();
    d.predictions.forEach((p, i) => {
      const tr = document.createElement("tr");
      for (const v of [texts[i], p.label, (100 * p.confidence).toFixed(1) + " %"]) {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      }
      body.appendChild(tr);
    });
    $("batch-table").hidden = false;
  } catch (err) { $("error").textContent = err.message; }
});
fetch("/model").then(r => r.ok ? r.json() : null).then(m => {
  $("model").textContent = m ? `${m.name} version ${m.version} (${m.alias || "pinned"})` : "no model loaded yet";
});
