// Leitstand console: live updates over server-sent events, the countdowns, and the announcement of
// unacknowledged critical alarms (a banner, a flashing title, a tone while any is open).
(function () {
  "use strict";
  var main = document.querySelector("main[data-page]");
  var live = document.getElementById("live");
  if (!main || !live) return;
  var page = main.getAttribute("data-page");
  var banner = document.getElementById("announce");
  var heldNote = document.getElementById("held") || document.createElement("p");
  var baseTitle = document.title;
  var critical = 0, flashTimer = null, toneTimer = null, audio = null, held = null;

  // An update that arrives while someone works in the list is held, not applied: re-rendering
  // under a note being typed throws the note away, and re-rendering between pressing and
  // releasing a button moves the release onto a new element, so no click happens at all (an
  // acknowledgement silently lost; tests/browser/test_console.py). A press counts for at most
  // PRESS_MS (a release outside the window is never seen); a held update waits SETTLE_MS after
  // the press or the focus ends, by which time the click's form has been submitted.
  var PRESS_MS = 3000, SETTLE_MS = 250, pressedAt = 0;
  function typing() {
    var el = document.activeElement;
    return el && live.contains(el) && (el.tagName === "INPUT" || el.tagName === "SELECT" || el.tagName === "TEXTAREA") && el.type !== "hidden";
  }
  function busy() {
    return (pressedAt !== 0 && Date.now() - pressedAt < PRESS_MS) || typing();
  }
  function fieldKey(el) {  // the same field in the re-rendered list: its form's action and its name
    var form = el.form || el.closest("form");
    return form ? form.getAttribute("action") + "|" + el.tagName + "|" + (el.name || el.textContent) : null;
  }
  function apply(html) {
    if (busy()) { held = html; if (typing()) heldNote.hidden = false; setTimeout(settle, PRESS_MS); return; }
    held = null;
    heldNote.hidden = true;
    // what was typed and where the focus was survive the re-render (a keyboard user on a button)
    var typed = {}, focused = document.activeElement && live.contains(document.activeElement) ? fieldKey(document.activeElement) : null;
    live.querySelectorAll("form input:not([type=hidden]), form textarea").forEach(function (el) {
      if (el.value) typed[fieldKey(el)] = el.value;
    });
    live.innerHTML = html;
    live.querySelectorAll("form input:not([type=hidden]), form textarea, form button, form select").forEach(function (el) {
      var k = fieldKey(el);
      if (typed[k] !== undefined && "value" in el && el.tagName !== "BUTTON" && el.tagName !== "SELECT") el.value = typed[k];
      if (focused !== null && k === focused) el.focus();
    });
    startCountdowns();
  }
  function settle() { setTimeout(function () { if (held !== null && !busy()) apply(held); }, SETTLE_MS); }
  live.addEventListener("pointerdown", function () { pressedAt = Date.now(); }, true);
  ["pointerup", "pointercancel"].forEach(function (t) {
    document.addEventListener(t, function () { if (pressedAt) { pressedAt = 0; settle(); } }, true);
  });
  live.addEventListener("focusout", settle);

  function tone() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = 880; g.gain.value = 0.2; o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + 0.4);
    } catch (e) { /* no audio (headless, or not yet allowed): banner and title still flash */ }
  }
  function announce(n) {
    critical = n;
    document.body.setAttribute("data-critical", String(n));
    if (n > 0) {
      banner.hidden = false;
      banner.textContent = n + (n === 1 ? " critical alarm" : " critical alarms") + " not acknowledged";
      if (!flashTimer) {
        var on = false;
        flashTimer = setInterval(function () {
          on = !on;
          document.title = on ? "(" + critical + ") CRITICAL ALARM" : baseTitle;
          banner.classList.toggle("flash-on", on);
        }, 700);
        toneTimer = setInterval(tone, 2500);
        tone();
      }
    } else {
      banner.hidden = true;
      if (flashTimer) { clearInterval(flashTimer); clearInterval(toneTimer); flashTimer = toneTimer = null; }
      document.title = baseTitle;
    }
  }

  var countdownTimer = null;
  function startCountdowns() {
    var started = Date.now();
    var items = Array.prototype.slice.call(live.querySelectorAll(".countdown[data-seconds]"))
      .filter(function (el) { return el.getAttribute("data-seconds") !== ""; })
      .map(function (el) { return [el, parseFloat(el.getAttribute("data-seconds"))]; });
    if (countdownTimer) clearInterval(countdownTimer);
    countdownTimer = setInterval(function () {
      var gone = (Date.now() - started) / 1000;
      items.forEach(function (it) { it[0].textContent = Math.max(0, Math.round(it[1] - gone)) + " s"; });
    }, 1000);
  }
  startCountdowns();

  function connect() {
    var source = new EventSource("/events?page=" + encodeURIComponent(page));
    source.onmessage = function (ev) {
      var data = JSON.parse(ev.data);
      apply(data.html);
      announce(data.critical);
      document.body.setAttribute("data-version", String(data.version));
    };
    source.addEventListener("expired", function () { source.close(); window.location.href = "/login?expired=1"; });
    source.onerror = function () { document.body.setAttribute("data-stream", "reconnecting"); };
    source.onopen = function () { document.body.setAttribute("data-stream", "open"); };
  }
  connect();
})();
