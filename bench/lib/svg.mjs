/** Minimal SVG line charts: no dependencies, readable in any browser or on GitHub. */
const COLORS = { edge: "#f38020", memory: "#2b7bb9", redis: "#d82c20" };
const W = 640;
const H = 360;
const M = { left: 64, right: 130, top: 36, bottom: 48 };

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;");
const fmt = (v) => (v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(v < 10 ? 1 : 0)}`);

function ticksLinear(min, max, count = 5) {
  const step = (max - min) / count || 1;
  return Array.from({ length: count + 1 }, (_, i) => min + i * step);
}

function ticksLog(min, max) {
  const out = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e);
  return out;
}

/**
 * series: [{ name, points: [[x, y], ...] }]; options: title, xLabel, yLabel, logX, logY.
 */
export function lineChart(series, { title, xLabel, yLabel, logX = false, logY = false }) {
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [logY ? Math.max(Math.min(...ys), 0.1) : 0, Math.max(...ys) * 1.05];
  if (logX) [x0, x1] = [10 ** Math.floor(Math.log10(Math.max(x0, 0.1))), 10 ** Math.ceil(Math.log10(x1))];
  if (logY) [y0, y1] = [10 ** Math.floor(Math.log10(y0)), 10 ** Math.ceil(Math.log10(y1))];
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) y1 = y0 + 1;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const sx = (x) => M.left + (logX ? (Math.log10(Math.max(x, x0)) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0)) : (x - x0) / (x1 - x0)) * pw;
  const sy = (y) => M.top + ph - (logY ? (Math.log10(Math.max(y, y0)) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0)) : (y - y0) / (y1 - y0)) * ph;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (const t of logX ? ticksLog(x0, x1) : ticksLinear(x0, x1)) {
    out.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${M.top}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${sx(t)}" y="${M.top + ph + 16}" text-anchor="middle">${fmt(t)}</text>`);
  }
  for (const t of logY ? ticksLog(y0, y1) : ticksLinear(y0, y1)) {
    out.push(`<line x1="${M.left}" x2="${M.left + pw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`);
    out.push(`<text x="${M.left - 6}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
  }
  out.push(`<rect x="${M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  out.push(`<text x="${M.left + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${M.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  series.forEach((s, k) => {
    const color = COLORS[s.name] ?? ["#555", "#090", "#909"][k % 3];
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length) {
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")}"/>`);
      if (pts.length < 20) for (const [x, y] of pts) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color}"/>`);
    }
    out.push(`<line x1="${W - M.right + 12}" x2="${W - M.right + 32}" y1="${M.top + 12 + k * 18}" y2="${M.top + 12 + k * 18}" stroke="${color}" stroke-width="3"/>`);
    out.push(`<text x="${W - M.right + 38}" y="${M.top + 16 + k * 18}">${esc(s.label ?? s.name)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n");
}

/** Empirical CDF points of a sample (at most ~200 points). */
export function cdfPoints(values) {
  if (!values.length) return [];
  const sorted = Float64Array.from(values).sort();
  const step = Math.max(1, Math.floor(sorted.length / 200));
  const pts = [];
  for (let i = 0; i < sorted.length; i += step) pts.push([Math.max(sorted[i], 0.1), ((i + 1) / sorted.length) * 100]);
  pts.push([sorted[sorted.length - 1], 100]);
  return pts;
}
