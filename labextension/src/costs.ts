import { Widget } from '@lumino/widgets';

import { lensRequest, service } from './api';
import { h, table } from './dom';
import { IStatusSummary, MICRO, usd, usdMicro } from './format';
import { IJob } from './jobs';

interface IDaskCluster {
  name: string;
  workers: number;
  microusd_per_hour: number;
  accrued_microusd: number;
}

interface IReport {
  account: string;
  budget_micro: number | null;
  spent_micro: number;
  held_micro: number;
  available_micro: number | null;
  by_category: Record<string, number>;
  thresholds: number[];
  blocked: boolean;
  period: { start: string; end: string };
  forecast: { burn_micro_per_day: number; exhausts_at: string | null; exhausts_before_period_end: boolean };
  daily: [string, number][];
}

/** Bars of spend per day, as SVG, with a text equivalent for screen readers. */
export function dailyChart(daily: [string, number][]): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const width = 300;
  const height = 80;
  const max = Math.max(1, ...daily.map(d => d[1]));
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'jp-lens-chart');
  svg.setAttribute('role', 'img');
  const total = daily.reduce((s, d) => s + d[1], 0);
  svg.setAttribute('aria-label', `Spend per day over ${daily.length} days, ${usdMicro(total, 2)} in all`);
  const bar = daily.length ? width / daily.length : width;
  daily.forEach(([day, micro], i) => {
    const r = document.createElementNS(ns, 'rect');
    const bh = Math.round((micro / max) * (height - 2));
    r.setAttribute('x', String(i * bar + 1));
    r.setAttribute('y', String(height - bh));
    r.setAttribute('width', String(Math.max(1, bar - 2)));
    r.setAttribute('height', String(bh));
    const title = document.createElementNS(ns, 'title');
    title.textContent = `${day}: ${usdMicro(micro)}`;
    r.append(title);
    svg.append(r);
  });
  return svg;
}

/** Costs: spend by category, daily chart, budget, thresholds, forecast, what runs now. */
export class CostsTab extends Widget {
  private body = h('div', { class: 'jp-lens-costs-body', 'aria-live': 'polite' });

  /** ``openDask`` shows dask-labextension's sidebar (scale, shut down, dashboards), when there. */
  constructor(private openDask: (() => boolean) | null = null) {
    super();
    this.id = 'jp-lens-costs';
    this.title.label = 'Costs';
    this.addClass('jp-lens-tab');
    const refresh = h('button', { type: 'button', class: 'jp-mod-styled', 'aria-label': 'Refresh costs' }, 'Refresh');
    refresh.addEventListener('click', () => void this.refresh());
    this.node.append(h('div', { class: 'jp-lens-toolbar' }, refresh), this.body);
  }

  async refresh(): Promise<void> {
    try {
      const [report, summary, jobs, dask] = await Promise.all([
        service<IReport>('costs'),
        lensRequest<IStatusSummary>('summary'),
        service<{ jobs: IJob[] }>('jobs').catch(() => ({ jobs: [] as IJob[] })),
        lensRequest<{ clusters: IDaskCluster[] }>('dask').catch(() => ({ clusters: [] as IDaskCluster[] }))
      ]);
      this.render(report, summary, jobs.jobs, dask.clusters);
    } catch (err) {
      this.body.replaceChildren(h('p', { class: 'jp-lens-error', role: 'alert' }, (err as Error).message));
    }
  }

  private render(r: IReport, s: IStatusSummary, jobs: IJob[], clusters: IDaskCluster[]): void {
    const cats: (string | Node)[][] = Object.entries(r.by_category).map(([c, m]) => [c, usdMicro(m)]);
    cats.push([h('strong', {}, 'total'), h('strong', {}, usdMicro(r.spent_micro))]);
    const budget = r.budget_micro
      ? [
          h('p', { class: 'jp-lens-budget', 'data-level': s.level },
            `Budget ${usdMicro(r.budget_micro, 2)}: ${s.used_pct}% used (spent ${usdMicro(r.spent_micro, 2)}, ` +
              `held ${usdMicro(r.held_micro, 2)}), ${usdMicro(r.available_micro, 2)} left.`),
          h('p', {}, `Thresholds: ${r.thresholds.map(t => `${t}%`).join(', ')}` +
            (s.passed !== null ? ` — passed ${s.passed}%` : '') + (r.blocked ? ' — blocked' : ''))
        ]
      : [h('p', { class: 'jp-lens-budget', 'data-level': 'none' }, 'No budget is set.')];
    const f = r.forecast;
    const forecast = h('p', { class: 'jp-lens-forecast' },
      `Burn rate ${usdMicro(f.burn_micro_per_day, 2)}/day` +
        (f.exhausts_at ? `; the budget runs out ${new Date(f.exhausts_at).toLocaleString()}` +
          (f.exhausts_before_period_end ? ', before the period ends' : '') : '') + '.');
    const running: (string | Node)[][] = [
      [`this server${s.profile ? ` (${s.profile})` : ''}`, `${usd(s.hourly_cost_usd, 4)}/h`]
    ];
    for (const c of clusters) {
      running.push([`Dask cluster ${c.name} (${c.workers} worker${c.workers === 1 ? "" : "s"}, ${usdMicro(c.accrued_microusd)} so far)`,
        `${usdMicro(c.microusd_per_hour)}/h`]);
    }
    for (const j of jobs.filter(j => j.state === 'RUNNING' || j.state === 'PENDING')) {
      running.push([`job ${j.name} (${j.id}, ${j.state})`, `${usdMicro(j.estimate?.hourly_rate_micro ?? null)}/h`]);
    }
    const daskLink: Node[] = [];
    if (clusters.length && this.openDask) {
      const open = h('button', { type: 'button', class: 'jp-mod-styled jp-lens-open-dask' }, 'Open the Dask sidebar');
      open.addEventListener('click', () => void this.openDask?.());
      daskLink.push(h('p', { class: 'jp-lens-note' }, 'Scale, shut down and see dashboards in the Dask sidebar: ', open));
    }
    this.body.replaceChildren(
      h('h3', {}, `This period (${r.period.start.slice(0, 10)} to ${r.period.end.slice(0, 10)})`),
      table('Spend by category', ['category', 'spent'], cats, 'jp-lens-categories'),
      h('h3', {}, 'Per day'), dailyChart(r.daily),
      h('h3', {}, 'Budget'), ...budget, forecast,
      table('Running now', ['what', 'rate'], running, 'jp-lens-running'),
      ...daskLink,
      h('p', { class: 'jp-lens-note' },
        `Dask clusters this period: ${usd((r.by_category.dask ?? 0) / MICRO, 4)} (the dask category).`)
    );
  }
}
