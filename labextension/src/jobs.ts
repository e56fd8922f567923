import { Widget } from '@lumino/widgets';

import { service } from './api';
import { field, h, table } from './dom';
import { usdMicro } from './format';
import { buildSpec, IJobForm } from './spec';

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED', 'LOST', 'REJECTED']);
const FOLLOW_MS = 2000;

export interface IJob {
  id: string;
  name: string;
  state: string;
  backend: string;
  runtime_s?: number;
  cost_micro: number | null;
  cost_so_far_micro: number | null;
  estimate?: { est_cost_micro?: number; hourly_rate_micro?: number };
  spec?: { app?: string; version?: string };
  reason?: string;
}

interface IApp {
  name: string;
  display_name?: string;
  versions: string[];
  default_version: string;
}

export function heldMicro(job: IJob): number {
  return TERMINAL.has(job.state) ? 0 : job.estimate?.est_cost_micro ?? 0;
}

/** Jobs: the list, a log viewer that follows, cancel, and the submit form. */
export class JobsTab extends Widget {
  jobs: IJob[] = [];
  private listBox = h('div', { class: 'jp-lens-jobs-list', 'aria-live': 'polite' });
  private logBox = h('section', { class: 'jp-lens-logs', 'aria-label': 'Job logs' });
  private formBox = h('section', { class: 'jp-lens-submit', 'aria-label': 'Submit a job' });
  private following: string | null = null;
  private followTimer: number | null = null;
  private inputs = {} as Record<keyof IJobForm, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>;
  private estimateBox = h('div', { class: 'jp-lens-estimate', role: 'status' });
  private submitButton = h('button', { type: 'button', class: 'jp-mod-styled jp-mod-accept', disabled: true }, 'Submit');
  private apps: IApp[] = [];

  constructor() {
    super();
    this.id = 'jp-lens-jobs';
    this.title.label = 'Jobs';
    this.addClass('jp-lens-tab');
    this.node.append(
      h('div', { class: 'jp-lens-toolbar' },
        this.button('Refresh', () => void this.refresh(), 'Refresh the job list')),
      this.listBox, this.logBox, this.formBox
    );
    this.buildForm();
  }

  private button(label: string, onClick: () => void, aria?: string): HTMLButtonElement {
    const b = h('button', { type: 'button', class: 'jp-mod-styled', 'aria-label': aria }, label);
    b.addEventListener('click', onClick);
    return b;
  }

  async refresh(): Promise<void> {
    try {
      const data = await service<{ jobs: IJob[] }>('jobs');
      this.jobs = data.jobs;
      this.renderList();
    } catch (err) {
      this.listBox.replaceChildren(h('p', { class: 'jp-lens-error', role: 'alert' }, (err as Error).message));
    }
    if (!this.apps.length) {
      await this.loadApps();
    }
  }

  private renderList(): void {
    if (!this.jobs.length) {
      this.listBox.replaceChildren(h('p', {}, 'No jobs yet.'));
      return;
    }
    const rows = this.jobs.map(j => [
      h('code', {}, j.id),
      j.name,
      h('span', { class: 'jp-lens-state', 'data-state': j.state }, j.state),
      j.spec?.app ? `${j.spec.app}${j.spec.version ? ' ' + j.spec.version : ''}` : '—',
      j.backend,
      usdMicro(j.cost_micro ?? j.cost_so_far_micro),
      usdMicro(heldMicro(j)),
      h('span', { class: 'jp-lens-actions' },
        this.button('Logs', () => void this.follow(j.id), `Logs of ${j.name} (${j.id})`),
        TERMINAL.has(j.state) ? null
          : this.button('Cancel', () => void this.cancel(j.id), `Cancel ${j.name} (${j.id})`))
    ]);
    this.listBox.replaceChildren(table('Your jobs',
      ['id', 'name', 'state', 'app', 'backend', 'cost so far', 'held', 'actions'], rows, 'jp-lens-jobs'));
  }

  async cancel(id: string): Promise<void> {
    try {
      await service(`jobs/${encodeURIComponent(id)}`, { method: 'DELETE' });
    } catch (err) {
      this.listBox.prepend(h('p', { class: 'jp-lens-error', role: 'alert' }, (err as Error).message));
    }
    await this.refresh();
  }

  /** Show a job's logs and keep them current until it ends or another job is chosen. */
  async follow(id: string): Promise<void> {
    this.following = id;
    if (this.followTimer !== null) {
      window.clearTimeout(this.followTimer);
    }
    const pre = h('pre', { class: 'jp-lens-log', tabindex: '0', 'aria-label': `Logs of ${id}` });
    const state = h('p', { class: 'jp-lens-log-state', role: 'status' });
    this.logBox.replaceChildren(h('h3', {}, `Logs: ${id}`), state, pre);
    const tick = async () => {
      if (this.following !== id || this.isDisposed) {
        return;
      }
      try {
        const [job, logs] = await Promise.all([
          service<IJob>(`jobs/${encodeURIComponent(id)}`),
          service<{ logs: string }>(`jobs/${encodeURIComponent(id)}/logs`)
        ]);
        pre.textContent = logs.logs || '(no output yet)';
        pre.scrollTop = pre.scrollHeight;
        const done = TERMINAL.has(job.state);
        state.textContent = `${job.state} · cost ${usdMicro(job.cost_micro ?? job.cost_so_far_micro)}` +
          (done ? '' : ' · following…');
        state.dataset.state = job.state;
        if (done) {
          void this.refresh();
          return;
        }
      } catch (err) {
        state.textContent = (err as Error).message;
      }
      this.followTimer = window.setTimeout(() => void tick(), FOLLOW_MS);
    };
    await tick();
  }

  private async loadApps(): Promise<void> {
    try {
      this.apps = (await service<{ apps: IApp[] }>('jobs/apps')).apps;
    } catch {
      this.apps = [];
    }
    const app = this.inputs.app as HTMLSelectElement;
    app.replaceChildren(h('option', { value: '' }, '(none: a command or script)'),
      ...this.apps.map(a => h('option', { value: a.name }, a.display_name || a.name)));
    this.onAppChange();
  }

  private onAppChange(): void {
    const version = this.inputs.version as HTMLSelectElement;
    const app = this.apps.find(a => a.name === this.inputs.app.value);
    version.replaceChildren(h('option', { value: '' }, app ? `default (${app.default_version})` : '—'),
      ...(app?.versions ?? []).map(v => h('option', { value: v }, v)));
    version.disabled = !app;
    this.invalidate();
  }

  private buildForm(): void {
    const text = (placeholder = '') => h('input', { type: 'text', placeholder });
    const num = () => h('input', { type: 'number', min: '1', inputmode: 'numeric' });
    this.inputs = {
      name: text('job'), app: h('select', {}), version: h('select', {}),
      vcpus: num(), memory: text('4Gi'), gpus: h('input', { type: 'number', min: '0' }),
      nodes: num(), walltime: text('1h'), array: num(), after: text('afterok:j-…'),
      backend: h('select', {}, h('option', { value: '' }, 'default'),
        h('option', { value: 'local' }, 'local'), h('option', { value: 'slurm' }, 'slurm'),
        h('option', { value: 'batch' }, 'batch')),
      command: text('python fit.py --seed 3'),
      script: h('textarea', { rows: '4', placeholder: 'a bash script (instead of a command)' })
    };
    const labels: Record<keyof IJobForm, string> = {
      name: 'Name', app: 'App', version: 'Version', vcpus: 'vCPUs', memory: 'Memory per node',
      gpus: 'GPUs', nodes: 'Nodes', walltime: 'Walltime', array: 'Array size',
      after: 'Run after (job ids)', backend: 'Backend', command: 'Command', script: 'Script'
    };
    const fields = (Object.keys(labels) as (keyof IJobForm)[]).map(k => {
      this.inputs[k].addEventListener('input', () => this.invalidate());
      return field(labels[k], this.inputs[k], `jp-lens-job-${k}`);
    });
    this.inputs.app.addEventListener('change', () => this.onAppChange());
    const estimate = this.button('Estimate', () => void this.estimate(), 'Estimate the cost of this job');
    this.submitButton.addEventListener('click', () => void this.submit());
    const form = h('form', { class: 'jp-lens-form', 'aria-label': 'Submit a job' }, ...fields,
      h('div', { class: 'jp-lens-form-buttons' }, estimate, this.submitButton), this.estimateBox);
    form.addEventListener('submit', ev => ev.preventDefault());
    this.formBox.replaceChildren(h('h3', {}, 'Submit a job'), form);
  }

  /** Fill the form (the file browser's "Submit as job…"). */
  prefill(values: Partial<IJobForm>): void {
    for (const [k, v] of Object.entries(values)) {
      this.inputs[k as keyof IJobForm].value = v as string;
    }
    this.invalidate();
    this.inputs.name.focus();
  }

  private formValues(): IJobForm {
    const out = {} as IJobForm;
    for (const k of Object.keys(this.inputs) as (keyof IJobForm)[]) {
      out[k] = this.inputs[k].value;
    }
    return out;
  }

  /** Any change needs a fresh estimate before submitting. */
  private invalidate(): void {
    this.submitButton.disabled = true;
    this.estimateBox.textContent = '';
  }

  async estimate(): Promise<void> {
    this.invalidate();
    try {
      const spec = buildSpec(this.formValues());
      const est = await service<any>('jobs/estimate', {
        method: 'POST', body: JSON.stringify({ spec }), headers: { 'Content-Type': 'application/json' }
      });
      this.estimateBox.replaceChildren(h('p', { class: 'jp-lens-estimate-text' },
        `Estimate: ${usdMicro(est.expected_cost_micro)} expected, at most ${usdMicro(est.est_cost_micro)} ` +
        `(held until it ends) · ${est.instance_type} at ${usdMicro(est.hourly_rate_micro)}/h · ${est.backend}`));
      this.submitButton.disabled = false;
    } catch (err) {
      this.estimateBox.replaceChildren(h('p', { class: 'jp-lens-error', role: 'alert' }, (err as Error).message));
    }
  }

  async submit(): Promise<void> {
    this.submitButton.disabled = true;
    try {
      const spec = buildSpec(this.formValues());
      const job = await service<IJob>('jobs', {
        method: 'POST', body: JSON.stringify({ spec }), headers: { 'Content-Type': 'application/json' }
      });
      this.estimateBox.replaceChildren(h('p', { class: 'jp-lens-submitted' }, `Submitted ${job.id} (${job.state}).`));
      await this.refresh();
      await this.follow(job.id);
    } catch (err) {
      this.estimateBox.replaceChildren(h('p', { class: 'jp-lens-error', role: 'alert' }, (err as Error).message));
    }
  }

  dispose(): void {
    this.following = null;
    if (this.followTimer !== null) {
      window.clearTimeout(this.followTimer);
    }
    super.dispose();
  }
}
