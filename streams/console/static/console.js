// Leitstand console: live updates over server-sent events, the countdowns, and the announcement of
// unacknowledged critical alarms (a banner, a flashing title, a tone while any is open).
(function () {
  "use strict";
  var main = document.querySelector("main[data-page]");
  var live = document.getElementById("live");
  if (!main || !live) return;
  var page = main.getAttribute("data-page");
  var banner = document.getElementById("announce");
  var baseTitle = document.title;
  var critical = 0, flashTimer = null, toneTimer = null, audio = null, held = null;

  function typing() {
    var el = document.activeElement;
    return el && live.contains(el) && (el.tagName === "INPUT" || el.tagName === "SELECT") && el.type !== "hidden";
  }
  function apply(html) {
    if (typing()) { held = html; return; }  // do not throw away a note being typed
    held = null;
    live.innerHTML = html;
    startCountdowns();
  }
  live.addEventListener("focusout", function () { setTimeout(function () { if (held !== null && !typing()) apply(held); }, 0); });

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
