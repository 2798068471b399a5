// Chart.js, registered once for every screen that draws (reports, the campaign report).
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Tooltip,
} from "chart.js";
import { useEffect, useRef } from "preact/hooks";
import { html } from "./ui.js";

Chart.register(BarController, BarElement, CategoryScale, Legend, LineController, LineElement, LinearScale, PointElement, Tooltip);
Chart.defaults.animation = false; // a report is read, not watched: draw it at once
Chart.defaults.font.family = "system-ui, sans-serif";

// Colour-blind-safe (Okabe–Ito), in order.
export const COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];

export function ChartBox({ label, config, small }) {
  const canvas = useRef(null);
  useEffect(() => {
    const chart = new Chart(canvas.current, { ...config, options: { responsive: true, maintainAspectRatio: false, ...config.options } });
    return () => chart.destroy();
  }, [JSON.stringify(config.data)]);
  return html`<div class=${small ? "chart small" : "chart"}><canvas ref=${canvas} role="img" aria-label=${label}></canvas></div>`;
}
