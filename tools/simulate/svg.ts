/** Hand-written SVG charts: small, dependency-free and readable on GitHub's light theme. */

/** A line on a {@link LinePanel}: one y value per x step. */
export interface LineSeries {
  readonly label: string;
  readonly color: string;
  readonly values: readonly number[];
  readonly dashed?: boolean;
}

/** One plot area of a line chart. */
export interface LinePanel {
  readonly title: string;
  readonly series: readonly LineSeries[];
  /** A horizontal reference line, e.g. the server's capacity. */
  readonly reference?: { readonly label: string; readonly value: number };
  /** A shaded x interval, e.g. the outage. */
  readonly shade?: { readonly label: string; readonly from: number; readonly to: number };
  /** More shaded x intervals in their own colours, e.g. injected faults; labels join the legend. */
  readonly shades?: readonly {
    readonly label: string;
    readonly color: string;
    readonly from: number;
    readonly to: number;
  }[];
}

/** Line charts sharing one x axis, stacked vertically (small multiples). */
export interface LineChart {
  readonly title: string;
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly yLabel: string;
  /** The x value of `values[i]` is `i · xStep`. */
  readonly xStep: number;
  /** Right end of the x axis. */
  readonly xMax: number;
  readonly panels: readonly LinePanel[];
  /** Height of one panel's plot area in pixels. @default 150 */
  readonly panelHeight?: number;
}

/** Bars grouped by category (e.g. client count), one bar per series. */
export interface BarChart {
  readonly title: string;
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly categories: readonly string[];
  readonly series: readonly {
    readonly label: string;
    readonly color: string;
    /** One value per category. */
    readonly values: readonly number[];
  }[];
}

const WIDTH = 900;
const LEFT = 80;
const RIGHT = 24;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';

function escapeXml(text: string): string {
  return text.replace(/[&<>"]/g, (c) =>
    c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : '&quot;',
  );
}

function text(x: number, y: number, content: string, attrs = '', size = 12, fill = '#333'): string {
  return `<text x="${r(x)}" y="${r(y)}" font-size="${size}" fill="${fill}" ${attrs}>${escapeXml(content)}</text>`;
}

function r(n: number): string {
  return String(Math.round(n * 10) / 10);
}

/** Tick values 0, step, 2·step… covering `max` with a 1/2/5·10^k step. */
export function ticks(max: number, target = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / target;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  // Whole steps up to the first at or past `max` (a hair's tolerance for `max` itself being a
  // step computed in floating point).
  const count = Math.ceil(max / step - 1e-12);
  return Array.from({ length: count + 1 }, (_, i) => Math.round(i * step * 1e6) / 1e6);
}

/** `12345` → `"12,345"`; small fractions keep one decimal. */
export function formatNumber(n: number): string {
  if (Math.abs(n) >= 100 || Number.isInteger(n)) {
    return Math.round(n).toLocaleString('en-US');
  }
  return n.toFixed(1);
}

/** Draws legend entries left to right, wrapping; returns the markup and the rows used. */
function legend(
  items: readonly { label: string; color: string; dashed?: boolean; band?: boolean }[],
  y: number,
): { markup: string; rows: number } {
  let x = LEFT;
  let row = 0;
  const parts: string[] = [];
  for (const item of items) {
    const width = 40 + item.label.length * 6.6;
    if (x + width > WIDTH - RIGHT - 160 && x > LEFT) {
      x = LEFT;
      row++;
    }
    const ly = y + row * 20;
    const dash = item.dashed === true ? ' stroke-dasharray="6 4"' : '';
    parts.push(
      item.band === true
        ? `<rect x="${r(x)}" y="${ly - 11}" width="22" height="12" fill="${item.color}" fill-opacity="0.3"/>`
        : `<line x1="${r(x)}" y1="${ly - 4}" x2="${r(x + 22)}" y2="${ly - 4}" stroke="${item.color}" stroke-width="3"${dash}/>`,
    );
    parts.push(text(x + 28, ly, item.label));
    x += width;
  }
  return { markup: parts.join(''), rows: row + 1 };
}

/** Title and subtitle (wrapped at about 125 characters); returns the markup and its bottom. */
function header(title: string, subtitle: string | undefined): { markup: string; bottom: number } {
  const lines: string[] = [];
  for (const word of subtitle?.split(' ') ?? []) {
    const last = lines[lines.length - 1];
    if (last !== undefined && last.length + word.length < 125)
      lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  const markup =
    text(LEFT, 26, title, 'font-weight="600"', 17, '#111') +
    lines.map((line, i) => text(LEFT, 46 + i * 16, line, '', 12, '#555')).join('');
  return { markup, bottom: 30 + lines.length * 16 };
}

function wrap(height: number, body: string, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT} role="img" aria-label="${escapeXml(title)}">
<rect width="100%" height="100%" fill="#fff"/>
${body}
</svg>
`;
}

/** Renders a {@link LineChart} as an SVG document. */
export function lineChartSvg(chart: LineChart): string {
  const panelHeight = chart.panelHeight ?? 150;
  const plotWidth = WIDTH - LEFT - RIGHT;
  const head = header(chart.title, chart.subtitle);
  const top = head.bottom + 14;
  const gap = 44;
  const legendItems: { label: string; color: string; dashed?: boolean; band?: boolean }[] = [];
  const seen = new Set<string>();
  for (const panel of chart.panels) {
    for (const s of panel.series) {
      const item = legendItems.find((i) => i.label === s.label);
      // One label drawn in several colours (one per panel): show it in neutral grey.
      if (item !== undefined && item.color !== s.color) item.color = '#555';
      if (!seen.has(s.label)) {
        seen.add(s.label);
        legendItems.push({ label: s.label, color: s.color, ...(s.dashed ? { dashed: true } : {}) });
      }
    }
    for (const band of panel.shades ?? []) {
      if (seen.has(band.label)) continue;
      seen.add(band.label);
      legendItems.push({ label: band.label, color: band.color, band: true });
    }
    if (panel.reference !== undefined && !seen.has(panel.reference.label)) {
      seen.add(panel.reference.label);
      legendItems.push({ label: panel.reference.label, color: '#111', dashed: true });
    }
  }
  const parts: string[] = [head.markup];
  const legendY = top + 4;
  const drawn = legend(legendItems, legendY);
  parts.push(drawn.markup);
  const shadeLabel = chart.panels.find((p) => p.shade !== undefined)?.shade?.label;
  if (shadeLabel !== undefined) {
    const x = WIDTH - RIGHT - 150;
    parts.push(`<rect x="${x}" y="${legendY - 11}" width="22" height="12" fill="#e8e8e8"/>`);
    parts.push(text(x + 28, legendY, shadeLabel));
  }
  const xScale = (x: number): number => LEFT + (x / chart.xMax) * plotWidth;
  const xTicks = ticks(chart.xMax, 10).filter((t) => t <= chart.xMax + 1e-9);
  const plotTop = legendY + 10 + drawn.rows * 20;
  let y0 = plotTop;
  chart.panels.forEach((panel, index) => {
    const last = index === chart.panels.length - 1;
    const bottom = y0 + panelHeight;
    let yMax = 0;
    for (const s of panel.series) {
      const shown = Math.floor(chart.xMax / chart.xStep) + 1;
      for (let i = 0; i < Math.min(shown, s.values.length); i++)
        yMax = Math.max(yMax, s.values[i]!);
    }
    if (panel.reference !== undefined) yMax = Math.max(yMax, panel.reference.value * 1.2);
    const yTicks = ticks(yMax, 4);
    const yTop = yTicks[yTicks.length - 1]!;
    const yScale = (v: number): number => bottom - (v / yTop) * panelHeight;
    parts.push(text(LEFT, y0 - 8, panel.title, 'font-weight="600"', 13, '#111'));
    if (panel.shade !== undefined) {
      const x1 = xScale(panel.shade.from);
      const x2 = xScale(Math.min(panel.shade.to, chart.xMax));
      parts.push(
        `<rect x="${r(x1)}" y="${r(y0)}" width="${r(x2 - x1)}" height="${panelHeight}" fill="#e8e8e8"/>`,
      );
    }
    for (const band of panel.shades ?? []) {
      const x1 = xScale(Math.min(band.from, chart.xMax));
      const x2 = xScale(Math.min(band.to, chart.xMax));
      parts.push(
        `<rect x="${r(x1)}" y="${r(y0)}" width="${r(Math.max(x2 - x1, 2))}" height="${panelHeight}" fill="${band.color}" fill-opacity="0.3"/>`,
      );
    }
    for (const t of yTicks) {
      const y = yScale(t);
      parts.push(
        `<line x1="${LEFT}" y1="${r(y)}" x2="${WIDTH - RIGHT}" y2="${r(y)}" stroke="#ddd" stroke-width="1"/>`,
      );
      parts.push(text(LEFT - 8, y + 4, formatNumber(t), 'text-anchor="end"', 11, '#555'));
    }
    for (const t of xTicks) {
      const x = xScale(t);
      parts.push(
        `<line x1="${r(x)}" y1="${bottom}" x2="${r(x)}" y2="${bottom + 4}" stroke="#555" stroke-width="1"/>`,
      );
      if (last)
        parts.push(text(x, bottom + 18, formatNumber(t), 'text-anchor="middle"', 11, '#555'));
    }
    parts.push(
      `<line x1="${LEFT}" y1="${bottom}" x2="${WIDTH - RIGHT}" y2="${bottom}" stroke="#555" stroke-width="1"/>`,
    );
    parts.push(
      `<line x1="${LEFT}" y1="${y0}" x2="${LEFT}" y2="${bottom}" stroke="#555" stroke-width="1"/>`,
    );
    for (const s of panel.series) {
      const points: string[] = [];
      const shown = Math.min(s.values.length, Math.floor(chart.xMax / chart.xStep) + 1);
      for (let i = 0; i < shown; i++) {
        points.push(`${r(xScale(i * chart.xStep))},${r(yScale(s.values[i]!))}`);
      }
      if (points.length === 0) continue;
      const dash = s.dashed === true ? ' stroke-dasharray="6 4"' : '';
      parts.push(
        `<polyline points="${points.join(' ')}" fill="none" stroke="${s.color}" stroke-width="1.6" stroke-linejoin="round"${dash}/>`,
      );
    }
    if (panel.reference !== undefined) {
      const y = yScale(panel.reference.value);
      parts.push(
        `<line x1="${LEFT}" y1="${r(y)}" x2="${WIDTH - RIGHT}" y2="${r(y)}" stroke="#111" stroke-width="1.2" stroke-dasharray="6 4"/>`,
      );
    }
    y0 = bottom + gap;
  });
  const axisBottom = y0 - gap;
  parts.push(text(LEFT + plotWidth / 2, axisBottom + 38, chart.xLabel, 'text-anchor="middle"'));
  const midY = (plotTop + axisBottom) / 2;
  parts.push(
    text(18, midY, chart.yLabel, `text-anchor="middle" transform="rotate(-90 18 ${r(midY)})"`),
  );
  return wrap(axisBottom + 54, parts.join('\n'), chart.title);
}

/** Renders a {@link BarChart} as an SVG document. */
export function barChartSvg(chart: BarChart): string {
  const plotWidth = WIDTH - LEFT - RIGHT;
  const head = header(chart.title, chart.subtitle);
  const legendY = head.bottom + 18;
  const drawn = legend(chart.series, legendY);
  const plotTop = legendY + 6 + drawn.rows * 20;
  const plotHeight = 300;
  const bottom = plotTop + plotHeight;
  const parts: string[] = [head.markup, drawn.markup];
  let yMax = 0;
  for (const s of chart.series) for (const v of s.values) yMax = Math.max(yMax, v);
  const yTicks = ticks(yMax, 5);
  const yTop = yTicks[yTicks.length - 1]!;
  const yScale = (v: number): number => bottom - (v / yTop) * plotHeight;
  for (const t of yTicks) {
    const y = yScale(t);
    parts.push(
      `<line x1="${LEFT}" y1="${r(y)}" x2="${WIDTH - RIGHT}" y2="${r(y)}" stroke="#ddd" stroke-width="1"/>`,
    );
    parts.push(text(LEFT - 8, y + 4, formatNumber(t), 'text-anchor="end"', 11, '#555'));
  }
  const groupWidth = plotWidth / chart.categories.length;
  const barWidth = (groupWidth * 0.8) / chart.series.length;
  chart.categories.forEach((category, c) => {
    const gx = LEFT + c * groupWidth + groupWidth * 0.1;
    chart.series.forEach((s, i) => {
      const v = s.values[c] ?? 0;
      const y = yScale(v);
      parts.push(
        `<rect x="${r(gx + i * barWidth)}" y="${r(y)}" width="${r(barWidth - 1)}" height="${r(bottom - y)}" fill="${s.color}"><title>${escapeXml(`${s.label}, ${category}: ${formatNumber(v)}`)}</title></rect>`,
      );
    });
    parts.push(text(gx + groupWidth * 0.4, bottom + 18, category, 'text-anchor="middle"', 12));
  });
  parts.push(
    `<line x1="${LEFT}" y1="${bottom}" x2="${WIDTH - RIGHT}" y2="${bottom}" stroke="#555" stroke-width="1"/>`,
  );
  parts.push(
    `<line x1="${LEFT}" y1="${plotTop}" x2="${LEFT}" y2="${bottom}" stroke="#555" stroke-width="1"/>`,
  );
  parts.push(text(LEFT + plotWidth / 2, bottom + 40, chart.xLabel, 'text-anchor="middle"'));
  const midY = (plotTop + bottom) / 2;
  parts.push(
    text(18, midY, chart.yLabel, `text-anchor="middle" transform="rotate(-90 18 ${r(midY)})"`),
  );
  return wrap(bottom + 56, parts.join('\n'), chart.title);
}
