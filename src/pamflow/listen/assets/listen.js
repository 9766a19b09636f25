// pamflow listen: players, and answer buttons that wait until every clip was heard once.
(function () {
  "use strict";
  var main = document.querySelector("main[data-phase]");
  if (!main) { return; }
  var started = Date.now();
  var plays = 0;
  var heard = {};
  var audios = Array.prototype.slice.call(document.querySelectorAll("audio[data-role]"));
  var gated = Array.prototype.slice.call(document.querySelectorAll("[data-needs-audio]"));
  var check = document.querySelector("input[data-needs-check]");

  function ready() {
    var all = audios.every(function (a) { return heard[a.dataset.role]; });
    return all && (!check || check.checked);
  }
  function update() {
    var ok = ready();
    gated.forEach(function (b) { b.disabled = !ok; });
    main.setAttribute("data-ready", ok ? "1" : "0");
  }
  audios.forEach(function (a) {
    a.addEventListener("ended", function () {
      heard[a.dataset.role] = true;
      var btn = document.querySelector('button.play[data-for="' + a.dataset.role + '"]');
      if (btn) { btn.classList.remove("playing"); btn.classList.add("heard"); }
      update();
    });
    a.addEventListener("error", function () {
      main.setAttribute("data-audio-error", a.dataset.role);
    });
  });
  Array.prototype.slice.call(document.querySelectorAll("button.play")).forEach(function (btn) {
    btn.addEventListener("click", function () {
      var target = document.querySelector('audio[data-role="' + btn.dataset.for + '"]');
      audios.forEach(function (a) { if (a !== target) { a.pause(); } });
      target.currentTime = 0;
      plays += 1;
      btn.classList.add("playing");
      var p = target.play();
      if (p && p.catch) { p.catch(function () { btn.classList.remove("playing"); }); }
    });
  });
  if (check) { check.addEventListener("change", update); }
  Array.prototype.slice.call(document.querySelectorAll("form")).forEach(function (f) {
    f.addEventListener("submit", function () {
      var p = f.querySelector('input[name="plays"]');
      var m = f.querySelector('input[name="ms"]');
      if (p) { p.value = String(plays); }
      if (m) { m.value = String(Date.now() - started); }
    });
  });
  var comment = document.querySelector("textarea[maxlength]");
  var left = document.getElementById("left");
  if (comment && left) {
    comment.addEventListener("input", function () {
      left.textContent = String(comment.maxLength - comment.value.length);
    });
  }
  update();
})();
