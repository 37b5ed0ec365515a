/* The recordings list's one player: a Play button loads its recording only when clicked, and playing
   another stops the first (the page has a single <audio>). */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.play-recording");
    var player = document.getElementById("recording-player");
    if (!button || !player) {
      return;
    }
    document.querySelectorAll("button.play-recording.active").forEach(function (other) {
      other.classList.remove("active");
      other.textContent = "Play";
      other.removeAttribute("aria-pressed");
    });
    player.pause();
    player.src = button.dataset.src;
    button.classList.add("active");
    button.textContent = "Playing";
    button.setAttribute("aria-pressed", "true");
    var row = button.closest("tr");
    var label = document.getElementById("recording-playing");
    if (label && row) {
      label.textContent = "Playing the recording of " + row.querySelector("td.col-started_at").textContent.trim();
    }
    player.play().catch(function () {
      /* A browser that refuses to start playing by itself leaves the controls to the person. */
    });
  });
})();
