import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { lensRequest, postJSON } from './api';
import { bytes, field, h, table } from './dom';
import { usdMicro } from './format';

export interface IArchive {
  id: string;
  name: string;
  created: string;
  files: number;
  size: number;
  storage_class: string;
  tags: Record<string, string>;
}

interface IPlan {
  archive: string;
  name: string;
  files: number;
  raw_bytes: number;
  packs: number;
  cold_packs: number;
  thaw_bytes: number;
  estimates: { tier: string; objects: number; bytes: number; cost_micro: number; hours: number[] }[];
}

interface ITask {
  id: string;
  kind: string;
  status: string;
  progress: Record<string, any> | null;
  error: string | null;
  created: number;
}

export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

export function hours(range: number[]): string {
  const [lo, hi] = range;
  if (!hi) {
    return 'at once';
  }
  return lo === hi ? `${lo} h` : `${lo}–${hi} h`;
}

export function progressText(t: ITask): string {
  const p = t.progress || {};
  const done = p.bytes_done ?? p.done ?? p.files_done;
  const total = p.bytes_total ?? p.total ?? p.files_total;
  if (done !== undefined && total) {
    return `${Math.floor((100 * done) / total)}%`;
  }
  return t.status;
}

/** Archives: list and search, details, the restore dialog with its plan, running tasks. */
export class ArchivesTab extends Widget {
  private search = h('input', { type: 'search', placeholder: 'name, path or text' });
  private listBox = h('div', { class: 'jp-lens-archives-list', 'aria-live': 'polite' });
  private detailBox = h('section', { class: 'jp-lens-archive-detail', 'aria-label': 'Archive details' });
  private taskBox = h('section', { class: 'jp-lens-tasks', 'aria-label': 'Archive tasks', 'aria-live': 'polite' });
  archives: IArchive[] = [];
  private taskTimer: number | null = null;

  constructor() {
    super();
    this.id = 'jp-lens-archives';
    this.title.label = 'Archives';
    this.addClass('jp-lens-tab');
    const go = h('button', { type: 'submit', class: 'jp-mod-styled' }, 'Search');
    const form = h('form', { class: 'jp-lens-toolbar', role: 'search', 'aria-label': 'Search archives' },
      field('Search', this.search, 'jp-lens-archive-search'), go);
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      void this.refresh();
    });
    this.node.append(form, this.taskBox, this.listBox, this.detailBox);
  }

  async refresh(): Promise<void> {
    const text = this.search.value.trim();
    try {
      const data = await lensRequest<{ archives: IArchive[] }>(
        'archives' + (text ? `?text=${encodeURIComponent(text)}` : ''));
      this.archives = data.archives;
      this.renderList();
    } catch (err) {
      this.listBox.replaceChildren(h('p', { class: 'jp-lens-error', role: 'alert' }, (err as Error).message));
    }
    await this.refreshTasks();
  }

  private renderList(): void {
    if (!this.archives.length) {
      this.listBox.replaceChildren(h('p', {}, 'No archives found.'));
      return;
    }
    const rows = this.archives.map(a => {
      const details = h('button', { type: 'button', class: 'jp-mod-styled', 'aria-label': `Details of ${a.name}` }, 'Details');
      details.addEventListener('click', () => this.showDetails(a));
      const restore = h('button', { type: 'button', class: 'jp-mod-styled', 'aria-label': `Restore ${a.name}` }, 'Restore…');
      restore.addEventListener('click', () => void this.restore(a));
      return [a.name, a.created.slice(0, 16).replace('T', ' '), String(a.files), bytes(a.size), a.storage_class,
        h('span', { class: 'jp-lens-actions' }, details, restore)];
    });
    this.listBox.replaceChildren(table('Your archives', ['name', 'created', 'files', 'size', 'class', 'actions'], rows, 'jp-lens-archives'));
  }

  private showDetails(a: IArchive): void {
    const tags = Object.entries(a.tags || {}).map(([k, v]) => `${k}=${v}`).join(', ') || 'none';
    this.detailBox.replaceChildren(h('h3', {}, a.name),
      h('dl', {}, h('dt', {}, 'id'), h('dd', {}, a.id), h('dt', {}, 'files'), h('dd', {}, String(a.files)),
        h('dt', {}, 'size'), h('dd', {}, bytes(a.size)), h('dt', {}, 'storage class'), h('dd', {}, a.storage_class),
        h('dt', {}, 'tags'), h('dd', {}, tags)));
  }

  /** Plan first (packs to thaw, cost and time per tier); restore only on confirmation. */
  async restore(a: IArchive): Promise<void> {
    let plan: IPlan;
    try {
      plan = await postJSON<IPlan>(`archives/${encodeURIComponent(a.id)}/plan`, {});
    } catch (err) {
      await showDialog({ title: 'Restore', body: (err as Error).message, buttons: [Dialog.okButton()] });
      return;
    }
    const body = new Widget();
    const tier = h('select', {}, ...plan.estimates.map(e => h('option', { value: e.tier }, e.tier)));
    const target = h('input', { type: 'text', value: `restored/${a.name}` });
    body.node.append(
      h('p', {}, `${plural(plan.files, 'file')}, ${bytes(plan.raw_bytes)} from ${plural(plan.packs, 'pack')}; ` +
        `${plural(plan.cold_packs, 'pack')} to thaw (${bytes(plan.thaw_bytes)}).`),
      table('Cost and time per tier', ['tier', 'cost', 'time until readable'],
        plan.estimates.map(e => [e.tier, usdMicro(e.cost_micro), hours(e.hours)]), 'jp-lens-plan'),
      field('Tier', tier, 'jp-lens-restore-tier'),
      field('Restore into (a folder under your home)', target, 'jp-lens-restore-to'));
    body.addClass('jp-lens-dialog');
    const result = await showDialog({
      title: `Restore ${a.name}`, body,
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Restore', ariaLabel: `Restore ${a.name}` })]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      await postJSON(`archives/${encodeURIComponent(a.id)}/restore`, { tier: tier.value, to: target.value });
    } catch (err) {
      await showDialog({ title: 'Restore', body: (err as Error).message, buttons: [Dialog.okButton()] });
    }
    await this.refreshTasks();
  }

  async refreshTasks(): Promise<void> {
    if (this.taskTimer !== null) {
      window.clearTimeout(this.taskTimer);
      this.taskTimer = null;
    }
    let tasks: ITask[] = [];
    try {
      tasks = (await lensRequest<{ tasks: ITask[] }>('archives/tasks')).tasks;
    } catch {
      return;
    }
    if (!tasks.length) {
      this.taskBox.replaceChildren();
      return;
    }
    tasks.sort((x, y) => y.created - x.created);
    this.taskBox.replaceChildren(table('Archive and restore tasks', ['task', 'kind', 'status', 'progress'],
      tasks.map(t => [h('code', {}, t.id), t.kind, h('span', { 'data-status': t.status }, t.status),
        t.error ? t.error : progressText(t)]), 'jp-lens-tasks-table'));
    if (tasks.some(t => t.status === 'running' || t.status === 'pending')) {
      this.taskTimer = window.setTimeout(() => void this.refresh(), 2000);
    }
  }

  dispose(): void {
    if (this.taskTimer !== null) {
      window.clearTimeout(this.taskTimer);
    }
    super.dispose();
  }
}
