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
const fmt = (v) => (v >= 0 ? "+" : "") + v.toFixed(3);
function why(e, label) {
  // an off-domain answer: the head's inputs are listed; the words shown are the tweet model's (one of those inputs)
  const words = e.head === "off-domain" ? e.tweet_model : e;
  $("why-label").textContent = label;
  $("why-note").textContent = e.head === "off-domain" ? e.note : `logit of ${label}: ${fmt(e.logits[label])} = intercept ${fmt(e.intercept[label])} + the words and features below`;
  const box = $("words"); box.replaceChildren();
  const peak = Math.max(1e-9, ...words.words.map(w => Math.abs(w.contributions[label])));
  let at = 0;
  for (const w of words.words) {
    box.append(words.text.slice(at, w.start));
    const span = document.createElement("span"), c = w.contributions[label], a = Math.min(1, Math.abs(c) / peak);
    span.textContent = w.text; span.className = "word";
    span.style.backgroundColor = c >= 0 ? `rgba(26,127,55,${0.6 * a})` : `rgba(207,34,46,${0.6 * a})`;
    span.title = Object.entries(w.contributions).map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
    box.append(span); at = w.end;
  }
  box.append(words.text.slice(at));
  const list = $("features"); list.replaceChildren();
  for (const f of [...e.features].sort((x, y) => Math.abs(y.contributions[label]) - Math.abs(x.contributions[label]))) {
    const li = document.createElement("li"); li.textContent = `${f.name}: ${fmt(f.contributions[label])}`; list.appendChild(li);
  }
}
$("form").addEventListener("submit", async (e) => {
  e.preventDefault(); $("error").textContent = "";
  try {
    const d = await call("/predict", {text: $("text").value, explain: true});
    $("label").textContent = d.label; $("confidence").textContent = (100 * d.confidence).toFixed(1) + " %";
    bars(d.probabilities); why(d.explanation, d.label); $("result").hidden = false;
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
