"""A small accessibility audit run inside the page: names for controls and images, and text contrast
(WCAG 2 relative luminance; 4.5:1 for normal text, 3:1 for large or bold text of 18.66 px and more)."""

from __future__ import annotations

AUDIT_JS = r"""
() => {
  const problems = [];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const st = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && st.visibility !== "hidden" && st.display !== "none";
  };
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : "");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (!visible(el) || el.type === "hidden") continue;
    if (!(el.labels && el.labels.length) && !el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby")) problems.push("no label: " + describe(el));
  }
  for (const el of document.querySelectorAll("button, a[href]")) {
    if (visible(el) && !(el.textContent.trim() || el.getAttribute("aria-label"))) problems.push("no name: " + describe(el));
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.getAttribute("alt")) problems.push("no alt: " + describe(img));
  }
  const parse = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(",").map(Number); return { rgb: p.slice(0, 3), a: p.length > 3 ? p[3] : 1 }; };
  const lum = (rgb) => { const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const background = (el) => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const st = getComputedStyle(node);
      if (st.backgroundImage !== "none") return null; // over a picture: not measurable here
      const c = parse(st.backgroundColor);
      if (c && c.a > 0.9) return c.rgb;
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll("body *")) {
    if (!visible(el) || el.closest("svg, figure, video")) continue;
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).join("");
    if (!text) continue;
    const st = getComputedStyle(el);
    const fg = parse(st.color);
    const bg = background(el);
    if (!fg || !bg) continue;
    const [hi, lo] = [lum(fg.rgb), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)} for "${text.slice(0, 30)}" in ${describe(el)}`);
  }
  return problems;
}
"""


def audit(page) -> list[str]:
    return page.evaluate(AUDIT_JS)
