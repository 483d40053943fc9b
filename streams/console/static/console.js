// Leitstand console: live updates over server-sent events, the countdowns, and the announcement of
// unacknowledged critical alarms (a status bar naming the newest, a flashing title, a tone while
// any is open).
(function () {
  "use strict";
  var main = document.querySelector("main[data-page]");
  var live = document.getElementById("live");
  if (!main || !live) return;
  var page = main.getAttribute("data-page");
  var banner = document.getElementById("announce");
  var heldNote = document.getElementById("held") || document.createElement("p");
  var staleNote = document.getElementById("stale") || document.createElement("p");
  var baseTitle = document.title;
  var critical = 0, flashTimer = null, toneTimer = null, audio = null, held = null, settleTimer = null;

  // An update that arrives while someone works in the list waits, because re-rendering the list
  // under them loses or misdirects what they do (docs/operators.md, "Live pages and your clicks"):
  // * between pressing and releasing a button (pointer, or Space / Enter) the release lands on a
  //   new element and no click happens: an acknowledgement silently lost;
  // * while the pointer rests on an alarm's form, a card removed above it moves the list, and the
  //   press meant for this alarm acknowledges the one below (at most HOVER_MS, then it is applied
  //   with the hovered card kept where it was on screen, as far as the page can scroll);
  // * while a field is being typed in (a key or focus within TYPING_MS), so the text is not
  //   disturbed; after that the update is applied with the text, the caret and the focus kept.
  // A held update is applied SETTLE_MS after the last of these ends, by which time a click has
  // submitted its form. A press counts for at most PRESS_MS (a release outside the window is
  // never seen). The status bar, the title and the tone are never held.
  var PRESS_MS = 3000, HOVER_MS = 5000, TYPING_MS = 5000, SETTLE_MS = 250;
  var pressedAt = 0, hoverForm = null, hoverAt = 0, typedAt = 0;

  function isField(el) {
    return !!el && live.contains(el) && (el.tagName === "INPUT" || el.tagName === "SELECT" || el.tagName === "TEXTAREA") && el.type !== "hidden";
  }
  function typing() { return isField(document.activeElement) && Date.now() - typedAt < TYPING_MS; }
  function pressing() { return pressedAt !== 0 && Date.now() - pressedAt < PRESS_MS; }
  function aiming() { return hoverForm !== null && Date.now() - hoverAt < HOVER_MS; }
  function busy() { return pressing() || aiming() || typing(); }

  function cardOf(el) { return el.closest("[data-alarm-id],[data-plan-id]"); }
  function cardId(card) { return card ? card.getAttribute("data-alarm-id") || card.getAttribute("data-plan-id") : ""; }
  function elementKey(el) {  // the same control in the re-rendered list: its alarm / form, kind and name
    var form = el.form || el.closest("form");
    return cardId(cardOf(el)) + "|" + (form ? form.getAttribute("action") : "") + "|" + el.tagName + "|" +
      (el.name || el.textContent.trim().slice(0, 60));
  }
  var FOCUSABLE = "input:not([type=hidden]), textarea, select, button, summary, a[href]";
  // The control with ``key`` in the re-rendered list, searched for inside its own card only: a
  // search of every control of a long list on each update made each render slower than the last
  // (0.15 s more per update with ~600 open alarms; stop 55).
  function findCard(id) {
    return Array.prototype.find.call(live.querySelectorAll("[data-alarm-id],[data-plan-id]"), function (c) { return cardId(c) === id; }) || null;
  }
  function findAgain(key) {
    var id = key.split("|")[0];
    var scope = id ? findCard(id) : live;
    if (!scope) return null;
    return Array.prototype.find.call(scope.querySelectorAll(FOCUSABLE), function (el) { return elementKey(el) === key; }) || null;
  }
  var typedIn = [];  // the fields someone typed into since the last render (their text survives it)

  function apply(html) {
    if (busy()) { held = html; heldNote.hidden = false; settle(); return; }
    held = null;
    heldNote.hidden = true;
    var active = live.contains(document.activeElement) ? document.activeElement : null;
    var focused = active ? elementKey(active) : null;
    var caret = active && isField(active) && "selectionStart" in active ? [active.selectionStart, active.selectionEnd] : null;
    var typed = typedIn.filter(function (el) { return live.contains(el) && el.value; }).map(function (el) { return [elementKey(el), el.value]; });
    var anchor = hoverForm || active, anchorKey = null, anchorTop = 0;
    if (anchor && live.contains(anchor)) {
      var card = cardOf(anchor);
      if (card) { anchorKey = cardId(card); anchorTop = card.getBoundingClientRect().top; }
    }
    live.innerHTML = html;
    typedIn = [];
    typed.forEach(function (kv) {
      var el = findAgain(kv[0]);
      if (el) { el.value = kv[1]; typedIn.push(el); }
    });
    if (focused !== null) {
      var again = findAgain(focused);
      if (again) {
        again.focus({ preventScroll: true });
        if (caret && "setSelectionRange" in again) { try { again.setSelectionRange(caret[0], caret[1]); } catch (e) { /* not a text field */ } }
      }
    }
    if (anchorKey !== null) {  // keep the card being aimed at or worked in where it was on screen
      var same = findCard(anchorKey);
      if (same) window.scrollBy(0, same.getBoundingClientRect().top - anchorTop);
    }
    hoverForm = null;  // the form the pointer rested on is gone; the next move over a form counts anew
    startCountdowns();
  }
  function settle() {  // apply a held update once nobody works in the list (checked again until then)
    if (settleTimer !== null) return;
    settleTimer = setTimeout(function () {
      settleTimer = null;
      if (held === null) return;
      if (busy()) settle(); else apply(held);
    }, SETTLE_MS);
  }
  live.addEventListener("pointerdown", function () { pressedAt = Date.now(); }, true);
  ["pointerup", "pointercancel"].forEach(function (t) {
    document.addEventListener(t, function () { if (pressedAt) { pressedAt = 0; settle(); } }, true);
  });
  live.addEventListener("keydown", function (ev) {
    if (ev.key === " " || ev.key === "Enter") pressedAt = Date.now();
    if (isField(ev.target)) typedAt = Date.now();
  }, true);
  document.addEventListener("keyup", function (ev) {
    if ((ev.key === " " || ev.key === "Enter") && pressedAt) { pressedAt = 0; settle(); }
  }, true);
  live.addEventListener("input", function (ev) {
    typedAt = Date.now();
    if (isField(ev.target) && typedIn.indexOf(ev.target) < 0) typedIn.push(ev.target);
  }, true);
  live.addEventListener("focusin", function (ev) { if (isField(ev.target)) typedAt = Date.now(); });
  live.addEventListener("pointerover", function (ev) {
    var form = ev.target.closest && ev.target.closest("form");
    if (form && live.contains(form) && form !== hoverForm) { hoverForm = form; hoverAt = Date.now(); }
  });
  live.addEventListener("pointerout", function (ev) {
    if (hoverForm && !(ev.relatedTarget && hoverForm.contains(ev.relatedTarget))) { hoverForm = null; settle(); }
  });
  live.addEventListener("focusout", settle);

  function tone() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = 880; g.gain.value = 0.2; o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + 0.4);
    } catch (e) { /* no audio (headless, or not yet allowed): status bar and title still flash */ }
  }
  function announce(n, newest) {
    critical = n;
    document.body.setAttribute("data-critical", String(n));
    banner.textContent = "";
    if (n > 0) {
      banner.classList.add("critical");
      banner.appendChild(document.createTextNode(n + (n === 1 ? " critical alarm" : " critical alarms") + " not acknowledged"));
      if (newest && newest.text) {  // which one is new: its card may be far down the list
        banner.appendChild(document.createTextNode(" · newest: "));
        var link = document.createElement("a");
        link.href = "#" + newest.anchor;
        link.textContent = newest.text;
        banner.appendChild(link);
      }
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
      banner.classList.remove("critical", "flash-on");
      banner.textContent = "No critical alarm waits for acknowledgement.";
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
    // Only the newest message is rendered: with hundreds of open alarms a message is most of a
    // megabyte, rendering one takes longer than the next takes to arrive, and rendering each in
    // turn left the page a minute behind the alarms (a probe of stop 55). Each message is the
    // whole live part, so skipping older ones loses nothing.
    var latest = null;
    source.onmessage = function (ev) {
      var first = latest === null;
      latest = ev.data;
      if (!first) return;  // a render is already scheduled; it will take this one
      setTimeout(function () {
        var data = JSON.parse(latest);
        latest = null;
        apply(data.html);
        announce(data.critical, data.newest);
        document.body.setAttribute("data-version", String(data.version));
      }, 0);
    };
    // the announcement comes on its own, small, before each list (and while a large list waits):
    // the banner, title and tone are never behind the list
    source.addEventListener("status", function (ev) {
      var st = JSON.parse(ev.data);
      announce(st.critical, st.newest);
    });
    source.addEventListener("expired", function () { source.close(); window.location.href = "/login?expired=1"; });
    source.onerror = function () {  // the browser reconnects by itself; until then the list may be old
      document.body.setAttribute("data-stream", "reconnecting");
      staleNote.hidden = false;
    };
    source.onopen = function () {
      document.body.setAttribute("data-stream", "open");
      staleNote.hidden = true;
    };
  }
  connect();
})();
