/**
 * A small uPlot line chart. uPlot draws on a canvas, which screen readers
 * cannot read, so every chart is paired with the same numbers as text (the
 * table on the operations page) and carries an aria-label saying so.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

/** Counts: whole-number ticks only. */
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000];

export interface ChartSeries {
  label: string;
  color: string;
  values: number[];
}

export function Chart({ title, times, series }: { title: string; times: number[]; series: ChartSeries[] }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => s.label).join('|');

  useEffect(() => {
    if (!host.current) return;
    const opts: uPlot.Options = {
      width: 320,
      height: 140,
      // A static legend (names and colours); the values are in the table.
      legend: { show: true, live: false },
      cursor: { show: true, drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [
        { stroke: '#333', grid: { stroke: '#e4e4e4' } },
        { stroke: '#333', grid: { stroke: '#e4e4e4' }, size: 40, incrs: COUNT_STEPS },
      ],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { show: false } }))],
    };
    plot.current = new uPlot(opts, [times, ...series.map((s) => s.values)], host.current);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // The chart is rebuilt only when its series change; new numbers go through setData below.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData([times, ...series.map((s) => s.values)]);
  }, [times, series]);

  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={host} role="img" aria-label={`${title}: chart; the same numbers are in the table above`} />
    </figure>
  );
}
