(function () {
  function mark(a) {
    var d = a.duration;
    if (isFinite(d) && d > 0) {
      a.setAttribute("data-duration", d.toFixed(4));
      a.setAttribute("data-ready", "1");
    }
  }
  document.querySelectorAll("audio").forEach(function (a) {
    a.addEventListener("loadedmetadata", function () { mark(a); });
    a.addEventListener("error", function () {
      a.setAttribute("data-error", String(a.error ? a.error.code : "unknown"));
    });
    if (a.readyState >= 1) { mark(a); }
  });
})();
