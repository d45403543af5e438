/* Search results: the page text Sphinx quotes under each hit holds the maths as TeX source
   ("\(\mathcal{N}(0, I)\)"). Shown as plain text instead: "N(0, I)". */
"use strict";

const TEX_SYMBOLS = {
  alpha: "α", beta: "β", gamma: "γ", delta: "δ", varepsilon: "ε", epsilon: "ε", eta: "η",
  theta: "θ", vartheta: "ϑ", kappa: "κ", lambda: "λ", mu: "μ", xi: "ξ", pi: "π", rho: "ρ",
  sigma: "σ", tau: "τ", phi: "φ", psi: "ψ", omega: "ω", Sigma: "Σ", Lambda: "Λ", Delta: "Δ",
  nabla: "∇", partial: "∂", sum: "∑", prod: "∏", int: "∫", infty: "∞", odot: "⊙", cdot: "·",
  times: "×", le: "≤", ge: "≥", leq: "≤", geq: "≥", ne: "≠", approx: "≈", sim: "∼", in: "∈",
  to: "→", leftarrow: "←", mid: "|", Vert: "‖", top: "⊤", ldots: "…", dots: "…",
};

function plainMaths(text) {
  const detex = (tex) => tex
    .replace(/\\(?:begin|end)\{[^}]*\}/g, " ")
    .replace(/\\tag\{([^}]*)\}/g, " ($1)")
    .replace(/\\(?:frac)\{([^{}]*)\}\{([^{}]*)\}/g, "($1)/($2)")
    .replace(/\\(?:mathcal|mathrm|mathbb|mathbf|operatorname|text|textstyle|displaystyle|big|Big|bigl|bigr|left|right)\b\s*/g, "")
    .replace(/\\([A-Za-z]+)/g, (all, name) => TEX_SYMBOLS[name] || name)
    .replace(/\\[,;:! ]|\\\\|&/g, " ")
    .replace(/[{}]/g, "")
    .replace(/\s+/g, " ")
    .trim();
  return text
    .replace(/\\\(([\s\S]*?)\\\)/g, (all, tex) => detex(tex))
    .replace(/\\\[([\s\S]*?)\\\]/g, (all, tex) => detex(tex))
    .replace(/\\begin\{equation\}([\s\S]*?)\\end\{equation\}/g, (all, tex) => detex(tex));
}

document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined") return;  // only the search page loads Sphinx's search
  const pageText = Search.htmlToText;
  Search.htmlToText = (html, anchor) => plainMaths(pageText(html, anchor));
});
