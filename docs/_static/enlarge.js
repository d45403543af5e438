/* A figure in a lesson (a cell's output) or on a page opens full size when tapped, so that a
   multi-panel figure shrunk to a phone's width can still be read. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll(".bd-article img")) {
    if (img.closest("a")) continue;
    const link = document.createElement("a");
    link.href = img.currentSrc || img.src;
    link.className = "scratchvae-enlarge";
    link.title = "Open the figure full size";
    img.replaceWith(link);
    link.appendChild(img);
  }
});
