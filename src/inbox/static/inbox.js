// handoff inbox: the only script. Counts deadlines down and follows changes (server-sent
// events): the list is fetched again, a detail page says when its escalation is gone.
"use strict";
// A sign-in link's token leaves the address bar and the history once its page is shown.
if (document.querySelector("form[data-sign-in-link]")) history.replaceState(null, "", "/sign-in");
function left(ms) {
  const s = Math.round(Math.abs(ms) / 1000), h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60);
  const t = h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s % 60}s`;
  return ms < 0 ? `overdue ${t}` : t;
}
function tick() {
  for (const el of document.querySelectorAll("[data-deadline]")) {
    const ms = Number(el.dataset.deadline) - Date.now();
    el.textContent = left(ms);
    el.classList.toggle("overdue", ms < 0);
  }
}
async function refresh() {
  const list = document.querySelector("[data-live=list]");
  if (list) {
    const url = new URL(location.href); url.searchParams.set("fragment", "1");
    const r = await fetch(url, { credentials: "same-origin" });
    // Signed out meanwhile (the session ended): show the page itself, the sign-in form.
    if (r.redirected || !r.ok) { location.reload(); return; }
    list.innerHTML = await r.text(); tick();
    return;
  }
  const detail = document.querySelector("[data-live=detail]");
  if (detail) {
    const r = await fetch(`/e/${encodeURIComponent(detail.dataset.id)}/status`, { credentials: "same-origin" });
    if (r.redirected) { location.reload(); return; }
    const text = await r.text();
    if (r.ok && text !== "open") {
      const gone = document.getElementById("gone");
      gone.textContent = text; gone.hidden = false;
      for (const b of detail.querySelectorAll(".answer button")) b.disabled = true;
    }
  }
}
document.addEventListener("DOMContentLoaded", () => {
  tick(); setInterval(tick, 1000);
  if (window.EventSource) {
    let pending = false;
    new EventSource("/live").addEventListener("change", () => {
      if (pending) return; pending = true;
      setTimeout(() => { pending = false; refresh(); }, 300);
    });
  }
});
